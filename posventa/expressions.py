"""Conditions: Jinja2 expressions compiled in a sandbox, never ``eval``.

A condition like ``event.data.score >= 9 and customer.locale == 'es'`` is parsed once (validation reports
syntax errors and unknown fields with their position) and evaluated against a plain dict context.
Evaluation errors (a missing attribute compared with a number, say) make the condition false and are
reported in the engine's trace: a journey never crashes on one customer's odd data. The sandbox and its
limits live in :mod:`posventa.sandbox` (re-exported here for the callers that read them as conditions').
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator, Mapping
from functools import lru_cache
from typing import Any

from jinja2 import TemplateSyntaxError, nodes
from jinja2.environment import TemplateExpression
from jinja2.parser import Parser

from posventa.errors import ExpressionError
from posventa.sandbox import _ENV as _ENV
from posventa.sandbox import (
    CHECK_SECONDS,
    CONDITION_SECONDS,
    MAX_CONDITION_CHARS,
    MAX_INT_BITS,
    MAX_LOOP_OUTPUT,
    MAX_RANGE,
    MAX_SEQUENCE,
    MAX_STEPS,
    RENDER_SECONDS,
    ConditionEnvironment,
    DataFirst,
    Sandbox,
    budget,
    describe,
)
from posventa.sandbox import _binop as _binop

__all__ = [
    "CHECK_SECONDS",
    "CONDITION_SECONDS",
    "FIELDS",
    "MAX_CONDITION_CHARS",
    "MAX_INT_BITS",
    "MAX_LOOP_OUTPUT",
    "MAX_RANGE",
    "MAX_SEQUENCE",
    "MAX_STEPS",
    "RENDER_SECONDS",
    "Compiled",
    "ConditionEnvironment",
    "DataFirst",
    "Sandbox",
    "budget",
    "check_names",
    "compile_condition",
    "constant_problems",
    "describe",
    "forbidden",
    "read_names",
]


def forbidden(tree: nodes.Node) -> Iterator[tuple[int, str]]:
    """``(line, message)`` for each thing a condition or template may not do, found without running it:
    names, attributes and keys starting with ``_``, the ``attr`` filter (it reads any attribute by a
    computed name) and string constants starting with ``__``."""
    for node in (tree, *tree.find_all(nodes.Node)):
        line = getattr(node, "lineno", 1) or 1
        if isinstance(node, nodes.Name) and node.name.startswith("_"):
            yield line, f"the name '{node.name}' starts with '_' (not allowed)"
        elif isinstance(node, (nodes.Getattr, nodes.NSRef)) and node.attr.startswith("_"):
            yield line, f"the attribute '{node.attr}' starts with '_' (not allowed)"
        elif isinstance(node, nodes.Filter) and node.name == "attr":
            yield line, "the 'attr' filter is not allowed (read fields with '.name' or ['name'])"
        elif isinstance(node, nodes.Const) and isinstance(node.value, str) and node.value.startswith("__"):
            yield line, f"the text '{node.value[:40]}' starts with '__' (not allowed)"
        elif (
            isinstance(node, nodes.Getitem)
            and isinstance(node.arg, nodes.Const)
            and isinstance(node.arg.value, str)
            and node.arg.value.startswith("_")
        ):
            yield line, f"the key '{node.arg.value}' starts with '_' (not allowed)"
        elif isinstance(node, nodes.Macro) and node.name.startswith("_"):
            yield line, f"the macro name '{node.name}' starts with '_' (not allowed)"
        elif isinstance(node, nodes.Import) and node.target.startswith("_"):
            yield line, f"the name '{node.target}' starts with '_' (not allowed)"


_CONST_OPS: dict[type[nodes.Node], str] = {nodes.Mul: "*", nodes.Pow: "**", nodes.Add: "+", nodes.Mod: "%"}
_PLAIN_OPS: dict[type[nodes.Node], Callable[[Any, Any], Any]] = {
    nodes.Sub: operator.sub,
    nodes.Div: operator.truediv,
    nodes.FloorDiv: operator.floordiv,
}


def constant_problems(tree: nodes.Node) -> Iterator[tuple[int, str]]:
    """``(line, message)`` for each operation on constants that can only fail (``10 ** 100000000``,
    ``'x' * 10**9``, ``1 / 0``): computed under the sandbox's limits at validation, so that the mistake
    is reported by ``validate`` and not by every customer's evaluation."""

    def value(node: nodes.Node) -> Any:
        if isinstance(node, nodes.Const):
            return node.value
        if isinstance(node, nodes.Neg):
            return -value(node.node)
        if isinstance(node, nodes.BinExpr):
            left, right = value(node.left), value(node.right)
            op = _CONST_OPS.get(type(node))
            if op is not None:
                return _binop(op, left, right)
            return _PLAIN_OPS[type(node)](left, right)  # -, /, //: bounded by their operands
        raise nodes.Impossible()

    reported: set[int] = set()
    found: list[tuple[int, str]] = []
    for node in reversed((tree, *tree.find_all(nodes.BinExpr))):  # innermost first: report the cause
        if not isinstance(node, nodes.BinExpr) or any(
            id(n) in reported for n in node.find_all(nodes.BinExpr)
        ):
            continue
        try:
            value(node)
        except nodes.Impossible:
            continue
        except Exception as exc:
            reported.add(id(node))
            found.append((node.lineno or 1, f"a constant expression fails: {describe(exc)}"))
    yield from reversed(found)


#: The names a condition may start with, and the fields Posventa knows under each. ``None`` means
#: free-form (custom attributes, event payloads).
FIELDS: dict[str, dict[str, Any] | None] = {
    "customer": {
        "id": None,
        "email": None,
        "name": None,
        "locale": None,
        "timezone": None,
        "birthday": None,
        "consent_email": None,
        "attributes": None,
        "open_complaint": None,
        "orders_count": None,
    },
    "order": {
        "id": None,
        "status": None,
        "total": None,
        "currency": None,
        "channel": None,
        "placed_at": None,
        "promised_delivery_date": None,
        "shipped_at": None,
        "delivered_at": None,
        "items": None,
        "referral_code": None,
        "tracking_url": None,
        "attributes": None,
        "days_late": None,
        "delivered_late": None,
        "warranty_expires_on": None,
        "runs_out_on": None,
    },
    "event": {"id": None, "type": None, "occurred_at": None, "order_id": None, "data": None},
    # The event that enrolled the customer (``event`` is the latest one); its data fields are checked
    # against the journey's trigger by ``validate``.
    "trigger_event": {"id": None, "type": None, "occurred_at": None, "order_id": None, "data": None},
    # The order item a date trigger on ``item.*`` enrolled for (``validate`` allows it only there).
    "item": {
        "sku": None,
        "name": None,
        "quantity": None,
        "price": None,
        "category": None,
        "consumable": None,
        "runs_out_in_days": None,
        "warranty_months": None,
        "warranty_expires_on": None,
        "runs_out_on": None,
    },
    "feedback": {"score": None, "comment": None, "survey": None, "category": None},
    # ``visits``: step id → how many times the step has run (``validate`` checks the step ids).
    "journey": {"id": None, "entered_at": None, "variant": None, "days_in_journey": None, "visits": None},
}


def _event_data_fields() -> set[str]:
    from posventa.events import EVENT_TYPES

    return {name for model in EVENT_TYPES.values() for name in model.model_fields}


class Compiled:
    """A parsed condition: call it with a context mapping to get a bool."""

    __slots__ = ("_fn", "source")

    def __init__(self, source: str, fn: Callable[..., Any]) -> None:
        self.source = source
        self._fn = fn

    def __call__(self, context: Mapping[str, Any]) -> bool:
        try:
            with budget(CONDITION_SECONDS):
                return bool(self._fn(**context))
        except Exception as exc:  # customer data must not crash a journey
            raise ExpressionError(self.source, f"could not be evaluated: {describe(exc)}") from exc


@lru_cache(maxsize=4096)
def compile_condition(source: str) -> Compiled:
    """Parse and check a condition (see :func:`forbidden`, :func:`constant_problems`); raises
    :class:`ExpressionError` with a message for people, never anything else."""
    if len(source) > MAX_CONDITION_CHARS:
        raise ExpressionError(source[:60] + "…", f"is longer than {MAX_CONDITION_CHARS:,} characters")
    try:
        parser = Parser(_ENV, source, state="variable")
        expr = parser.parse_expression()
        if not parser.stream.eos:
            raise TemplateSyntaxError("chunk after expression", parser.stream.current.lineno, None, None)
        problems = [*forbidden(expr), *constant_problems(expr)]
        if problems:
            raise ExpressionError(source, "; ".join(message for _, message in problems))
        template = _ENV.from_string(
            nodes.Template([nodes.Assign(nodes.Name("result", "store"), expr, lineno=1)], lineno=1)
        )
    except ExpressionError:
        raise
    except TemplateSyntaxError as exc:
        raise ExpressionError(source, f"does not parse: {exc.message}") from exc
    except RecursionError as exc:
        raise ExpressionError(source, "does not parse: nested too deeply") from exc
    except Exception as exc:
        raise ExpressionError(source, f"does not parse: {describe(exc)}") from exc
    return Compiled(source, TemplateExpression(template, undefined_to_none=True))


def _chains(node: nodes.Node) -> Iterator[list[str]]:
    """Yield the dotted name chains an expression reads (``event.data.score`` → [event, data, score])."""
    if isinstance(node, (nodes.Getattr, nodes.Getitem, nodes.Name)):
        chain: list[str] = []
        cur: nodes.Node = node
        while True:
            if isinstance(cur, nodes.Getattr):
                chain.append(cur.attr)
                cur = cur.node
            elif isinstance(cur, nodes.Getitem) and isinstance(cur.arg, nodes.Const):
                chain.append(str(cur.arg.value))
                cur = cur.node
            elif isinstance(cur, nodes.Getitem):
                yield from _chains(cur.arg)
                chain = []
                cur = cur.node
            else:
                break
        if isinstance(cur, nodes.Name):
            yield [cur.name, *reversed(chain)]
            return
        yield from _chains(cur)
        return
    for child in node.iter_child_nodes():
        yield from _chains(child)


def read_names(source: str) -> list[list[str]]:
    """The dotted names a condition reads (``event.data.score`` → ``['event', 'data', 'score']``), without
    its own loop variables and constants. Raises :class:`ExpressionError` when it does not parse."""
    try:
        tree = _ENV.parse("{{ " + source + " }}")
    except TemplateSyntaxError as exc:
        raise ExpressionError(source, f"does not parse: {exc.message}") from exc
    except Exception as exc:
        raise ExpressionError(source, f"does not parse: {describe(exc)}") from exc
    local_names = {n.name for n in tree.find_all(nodes.Name) if n.ctx in ("store", "param")}
    constants = {"true", "false", "none", "True", "False", "None"}
    return [chain for chain in _chains(tree) if chain[0] not in local_names | constants]


def check_names(source: str) -> list[tuple[str, str | None]]:
    """Problems with the names a condition reads: ``[(message, hint)]`` — empty when all are known."""
    from posventa.diagnostics import did_you_mean

    try:
        chains = read_names(source)
    except ExpressionError as exc:
        return [(f"condition {exc.message}", None)]
    problems: list[tuple[str, str | None]] = []
    for chain in chains:
        root = chain[0]
        if root not in FIELDS:
            problems.append(
                (
                    f"condition names unknown value '{root}' (known: {', '.join(FIELDS)})",
                    did_you_mean(root, FIELDS),
                )
            )
            continue
        known = FIELDS[root]
        if known is None or len(chain) < 2:
            continue
        if chain[1] not in known:
            problems.append((f"'{root}' has no field '{chain[1]}'", did_you_mean(chain[1], known)))
            continue
        if root == "event" and chain[1] == "data" and len(chain) > 2:
            data_fields = _event_data_fields()
            if chain[2] not in data_fields:
                problems.append(
                    (
                        f"no event carries a data field '{chain[2]}'",
                        did_you_mean(chain[2], sorted(data_fields)),
                    )
                )
    return problems
