"""Conditions: Jinja2 expressions compiled in a sandbox, never ``eval``.

A condition like ``event.data.score >= 9 and customer.locale == 'es'`` is parsed once (validation reports
syntax errors and unknown fields with their position) and evaluated against a plain dict context.
Evaluation errors (a missing attribute compared with a number, say) make the condition false and are
reported in the engine's trace: a journey never crashes on one customer's odd data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from functools import lru_cache
from typing import Any

from jinja2 import TemplateSyntaxError, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

from posventa.errors import ExpressionError


class DataFirst:
    """Jinja mixin: ``order.items`` means the order's ``items`` field, not ``dict.items``.

    Facts are plain dicts, and Jinja tries attributes before keys, so a field named like a dict method
    (items, keys, values, get, …) would silently read the method. Journeys and templates read data.
    """

    def getattr(self, obj: Any, attribute: str) -> Any:
        if type(obj) is dict:  # the common case, checked without the ABC machinery (a hot path)
            if attribute in obj:
                return obj[attribute]
        elif isinstance(obj, Mapping) and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)  # type: ignore[misc]


class ConditionEnvironment(DataFirst, ImmutableSandboxedEnvironment):
    pass


_ENV = ConditionEnvironment()

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
    "feedback": {"score": None, "comment": None, "survey": None, "category": None},
    "journey": {"id": None, "entered_at": None, "variant": None, "days_in_journey": None},
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
            return bool(self._fn(**context))
        except Exception as exc:  # customer data must not crash a journey
            raise ExpressionError(self.source, f"could not be evaluated: {exc}") from exc


@lru_cache(maxsize=4096)
def compile_condition(source: str) -> Compiled:
    try:
        fn = _ENV.compile_expression(source, undefined_to_none=True)
    except TemplateSyntaxError as exc:
        raise ExpressionError(source, f"does not parse: {exc.message}") from exc
    return Compiled(source, fn)


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


def check_names(source: str) -> list[tuple[str, str | None]]:
    """Problems with the names a condition reads: ``[(message, hint)]`` — empty when all are known."""
    from posventa.diagnostics import did_you_mean

    try:
        tree = _ENV.parse("{{ " + source + " }}")
    except TemplateSyntaxError as exc:
        return [(f"condition does not parse: {exc.message}", None)]
    problems: list[tuple[str, str | None]] = []
    local_names = {n.name for n in tree.find_all(nodes.Name) if n.ctx in ("store", "param")}
    for chain in _chains(tree):
        root = chain[0]
        if root in local_names or root in {"true", "false", "none", "True", "False", "None"}:
            continue
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
