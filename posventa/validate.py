"""Validation: turn a journey file into a checked journey, or into every problem it has.

Stages: load (YAML with positions) → envelope (:class:`~posventa.schema.Journey`) → each step (its own
model) → graph (targets, reachability, cycles without a wait, repeat direction) → conditions (names) →
templates (exist per locale, parse). All problems are collected, then reported once.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, assert_never

from pydantic import BaseModel, ValidationError

from posventa import placeholders, semantics
from posventa import schema as s
from posventa.diagnostics import Diagnostic, did_you_mean
from posventa.loader import LoadFailed, Located, load_file, load_text
from posventa.schema import STEP_MODELS, STEP_TYPES, Journey, StepModel
from posventa.templates import Templates

JOURNEY_ID = re.compile(r"^[a-z][a-z0-9_]*$")
WAITING_MODELS = (s.WaitStep, s.WaitForStep)


@dataclass(frozen=True)
class Checked:
    """A journey that passed every check, ready to compile."""

    id: str
    path: str
    journey: Journey
    steps: tuple[StepModel, ...]  # in file order
    templates: Templates
    warnings: tuple[Diagnostic, ...] = ()


def _all_field_names() -> set[str]:
    names: set[str] = set()

    def walk(model: type[BaseModel]) -> None:
        for name, info in model.model_fields.items():
            names.add(info.alias or name)

    from posventa import schema

    for obj in vars(schema).values():
        if isinstance(obj, type) and issubclass(obj, BaseModel) and obj is not BaseModel:
            walk(obj)
    return names


class _Collector:
    def __init__(self, doc: Located) -> None:
        self.doc = doc
        self.items: list[Diagnostic] = []

    def add(
        self,
        loc: Sequence[str | int],
        code: str,
        message: str,
        hint: str | None = None,
        *,
        key: bool = False,
        severity: str = "error",
    ) -> None:
        line, col = self.doc.where(tuple(loc), key=key)
        self.items.append(Diagnostic(self.doc.path, line, col, code, message, hint, severity))  # type: ignore[arg-type]

    def _data_loc(self, loc: Sequence[str | int], kind: str) -> tuple[tuple[str | int, ...], bool]:
        """The places of ``loc`` that exist in the file, and whether a union member's tag was dropped.

        Pydantic puts each union member in the path (``exit.on.0.ExitRule``) and reports every member
        that failed; those tags are not places in the file.
        """
        cur: Any = self.doc.data
        out: list[str | int] = []
        tagged = False
        for n, part in enumerate(loc):
            if (isinstance(cur, dict) and part in cur) or (
                isinstance(cur, list) and isinstance(part, int) and 0 <= part < len(cur)
            ):
                cur = cur[part]  # type: ignore[index]
                out.append(part)
            elif kind == "missing" and n == len(loc) - 1:
                out.append(part)
            else:
                tagged = True
        return tuple(out), tagged

    def _union_errors(self, exc: ValidationError, prefix: Sequence[str | int]) -> list[dict[str, Any]]:
        """Errors with file paths; of the members of a union, only the one that fits the value speaks.

        ``exit.on: [order.cancelled]`` fails both as an event name and as an ExitRule mapping; only the
        first says something useful. When every member fails on the type alone, one error remains.
        """
        errors: list[dict[str, Any]] = []
        for raw in exc.errors():
            loc, tagged = self._data_loc((*prefix, *raw["loc"]), raw["type"])
            errors.append({**raw, "loc": loc, "tagged": tagged})

        def mismatch(err: Any) -> bool:
            return bool(err["tagged"]) and str(err["type"]).endswith(("_type", "_parsing"))

        out: list[dict[str, Any]] = []
        merged: set[tuple[str | int, ...]] = set()
        for err in errors:
            if not mismatch(err):
                out.append(err)
                continue
            point = err["loc"]
            if any(
                o is not err and o["tagged"] and o["loc"][: len(point)] == point and not mismatch(o)
                for o in errors
            ):
                continue  # another member fits the value and reports the real problem
            if point in merged:
                continue
            merged.add(point)
            expected = [
                str(o["msg"]).removeprefix("Input should be ")
                for o in errors
                if mismatch(o) and o["loc"] == point
            ]
            out.append({**err, "type": "union_type", "msg": "expected " + " or ".join(expected)})
        return out

    def from_pydantic(self, exc: ValidationError, prefix: Sequence[str | int]) -> None:
        known = _all_field_names()
        for err in self._union_errors(exc, prefix):
            loc = err["loc"]
            kind = err["type"]
            # A list item is named by its list: "'fry' is not allowed for 'weekdays'", not "for '1'".
            field = next((p for p in reversed(loc) if isinstance(p, str)), "")
            copying = "set_attribute" in loc
            if kind == "missing":
                self.add(loc[:-1], "missing-field", f"missing required field '{field}'", key=True)
            elif kind == "union_type" and field == "holdout":
                self.add(
                    loc,
                    "invalid-value",
                    f"{err.get('input')!r} is not a holdout",
                    "write a percent (holdout: 10), or {percent: 10, goto: <step>} to let the holdout go on",
                )
            elif kind == "union_type" and copying:
                self.add(
                    loc,
                    "invalid-value",
                    f"'{field}' cannot be set to {err.get('input')!r}",
                    "set text, a number, true/false or null, or copy a value with {from: event.data.<field>}",
                )
            elif kind == "string_pattern_mismatch" and copying and field == "from":
                self.add(
                    loc,
                    "invalid-value",
                    f"'{err.get('input')}' is not a path to copy from",
                    "write a dotted path: event.data.<field>, trigger_event.data.<field>, order.<field>, "
                    "item.<field>, customer.<field>, feedback.<field> or journey.<field>",
                )
            elif kind == "extra_forbidden":
                self.add(
                    loc, "unknown-field", f"unknown field '{field}'", did_you_mean(field, known), key=True
                )
            elif kind in {
                "bad-duration",
                "bad-time",
                "bad-timezone",
                "unknown-event",
                "unknown-date-field",
                "bad-condition",
            }:
                self.add(loc, kind, err["msg"])
            elif kind == "literal_error":
                got = err.get("input")
                expected = (err.get("ctx") or {}).get("expected", "")
                self.add(
                    loc,
                    "invalid-value",
                    f"'{got}' is not allowed for '{field}'; expected {expected}",
                    did_you_mean(str(got), re.findall(r"'([^']+)'", str(expected))),
                )
            elif kind == "string_pattern_mismatch":
                got = err.get("input")
                self.add(
                    loc,
                    "invalid-value",
                    f"'{got}' is not a valid {field or 'value'}",
                    "ids and names use lower-case letters, digits and '_', starting with a letter"
                    if field
                    in {"id", "template", "name", "goto", "next", "target", "from", "on_timeout", "otherwise"}
                    else None,
                )
            elif kind == "value_error":
                msg = str(err["msg"]).removeprefix("Value error, ")
                self.add(loc, "invalid-value", msg)
            else:
                got = err.get("input")
                shown = f" (got {got!r})" if not isinstance(got, (dict, list)) else ""
                self.add(loc, "invalid-value", f"{field or 'value'}: {err['msg']}{shown}".strip())


def check_file(path: Path | str, templates_root: Path | str | None = None) -> Checked:
    """Validate one journey file. Raises :class:`~posventa.errors.JourneyError` with every problem."""
    p = Path(path)
    try:
        doc = load_file(p)
    except LoadFailed as exc:
        from posventa.errors import JourneyError

        raise JourneyError(exc.diagnostics) from exc
    return check_document(doc, p.stem, Templates(templates_root or p.parent / "templates"))


def check_text(text: str, path: str, templates_root: Path | str) -> Checked:
    from posventa.errors import JourneyError

    try:
        doc = load_text(text, path)
    except LoadFailed as exc:
        raise JourneyError(exc.diagnostics) from exc
    return check_document(doc, Path(path).stem, Templates(templates_root))


def check_document(doc: Located, journey_id: str, templates: Templates) -> Checked:
    """Every check of one loaded journey. Raises :class:`~posventa.errors.JourneyError` and nothing else:
    an unexpected failure of a check is itself reported as a diagnostic (``internal-error``), so that
    ``validate`` never shows a traceback — the tests make sure no input produces one."""
    from posventa.errors import JourneyError

    try:
        return _check_document(doc, journey_id, templates)
    except JourneyError:
        raise
    except Exception as exc:
        line, col = doc.where(())
        raise JourneyError(
            [
                Diagnostic(
                    doc.path,
                    line,
                    col,
                    "internal-error",
                    f"validation stopped unexpectedly ({type(exc).__name__}: {exc})",
                    "this is a bug in Posventa: please report it with the file",
                )
            ]
        ) from exc


def _check_document(doc: Located, journey_id: str, templates: Templates) -> Checked:
    from posventa.errors import JourneyError

    out = _Collector(doc)
    if not JOURNEY_ID.match(journey_id):
        out.add(
            (),
            "bad-journey-id",
            f"file name '{journey_id}' is not a valid journey id",
            "name journey files like post_purchase.yaml: lower-case letters, digits and '_'",
        )
    if not isinstance(doc.data, dict):
        out.add((), "invalid-journey", "a journey file must be a mapping with name, trigger and steps")
        raise JourneyError(out.items)
    # Stage one: the envelope.
    journey: Journey | None = None
    try:
        journey = Journey.model_validate(doc.data)
    except ValidationError as exc:
        out.from_pydantic(exc, ())
    raw_steps = doc.data.get("steps")
    steps: list[Any] = []
    positions: list[int] = []
    if isinstance(raw_steps, list):
        steps = _check_steps(raw_steps, out, positions)
    if (
        steps
        and isinstance(raw_steps, list)
        and (journey is None or len(steps) != len(raw_steps) or out.items)
    ):
        _check_partial(journey, raw_steps, steps, templates, _Shifted(out, positions))
    if journey is not None and len(steps) == len(raw_steps or []) and not out.items:
        _check_graph(steps, out)
        semantics.check_names(journey, doc.data, steps, out)
        semantics.check_dates(journey, steps, out)
        _check_templates(journey, steps, templates, out)
        semantics.check_no_effect(journey, out)
        placeholders.check_steps(steps, journey.policy.locales, templates, out.add)  # shop policy examples
    if any(d.severity == "error" for d in out.items) or journey is None:
        raise JourneyError(sorted(out.items))
    return Checked(journey_id, doc.path, journey, tuple(steps), templates, tuple(sorted(out.items)))


def _check_steps(raw_steps: list[Any], out: _Collector, positions: list[int]) -> list[StepModel]:
    """The steps that validate, in file order (``positions``: their index in the file)."""
    steps: list[StepModel] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(raw_steps):
        if not isinstance(raw, dict):
            out.add(("steps", i), "invalid-step", "a step must be a mapping with 'id' and 'type'")
            continue
        kind = raw.get("type")
        if kind is None:
            out.add(
                ("steps", i),
                "missing-field",
                "missing required field 'type'",
                f"one of: {', '.join(STEP_TYPES)}",
            )
            continue
        if not isinstance(kind, str) or kind not in STEP_MODELS:  # a list or mapping is unhashable
            out.add(
                ("steps", i, "type"),
                "unknown-step-type",
                f"unknown step type '{kind}'",
                did_you_mean(str(kind), STEP_TYPES) or f"one of: {', '.join(STEP_TYPES)}",
            )
            continue
        try:
            step: StepModel = STEP_MODELS[kind].model_validate(raw)  # type: ignore[assignment]
        except ValidationError as exc:
            out.from_pydantic(exc, ("steps", i))
            continue
        if step.id in seen:
            out.add(
                ("steps", i, "id"),
                "duplicate-step-id",
                f"step id '{step.id}' is already used by step {seen[step.id] + 1}",
            )
            continue
        seen[step.id] = i
        steps.append(step)
        positions.append(i)
    return steps


class _Shifted:
    """A collector for checks run on the steps that validated when others did not: ``("steps", n, …)``
    (the n-th valid step) becomes that step's place in the file."""

    def __init__(self, out: _Collector, positions: Sequence[int]) -> None:
        self.out, self.positions = out, positions

    def add(
        self,
        loc: Sequence[str | int],
        code: str,
        message: str,
        hint: str | None = None,
        *,
        key: bool = False,
        severity: str = "error",
    ) -> None:
        if len(loc) >= 2 and loc[0] == "steps" and isinstance(loc[1], int):
            loc = ("steps", self.positions[loc[1]], *loc[2:])
        self.out.add(loc, code, message, hint, key=key, severity=severity)


def _check_partial(
    journey: Journey | None, raw_steps: list[Any], steps: Sequence[StepModel], templates: Templates, out: Any
) -> None:
    """Schema errors elsewhere in the file: still report what the steps that validated get wrong on their
    own — a jump to a step the file does not have, a template missing or broken — so that one pass shows
    every independent error. Checks of the whole graph (reachability, loops) wait for a valid file."""
    named = [r["id"] for r in raw_steps if isinstance(r, dict) and isinstance(r.get("id"), str)]
    _unknown_targets(steps, named, out)
    if journey is not None:
        _check_templates(journey, steps, templates, out)


def successors(steps: Sequence[StepModel]) -> dict[str, list[tuple[str, str]]]:
    """Edges of the step graph: ``{step_id: [(field, target_id), …]}`` with defaults made explicit (the
    following step, when a step does not say where to go)."""
    edges: dict[str, list[tuple[str, str]]] = {}
    for i, step in enumerate(steps):
        following = steps[i + 1].id if i + 1 < len(steps) else None
        out: list[tuple[str, str | None]] = []
        match step:
            case s.SendStep() | s.WaitStep() | s.ActionStep():
                out.append(("next", step.next or following))
            case s.WaitForStep():
                out += [("next", step.next or following), ("on_timeout", step.on_timeout)]
            case s.BranchStep():
                out += [(f"cases.{j}.goto", c.goto) for j, c in enumerate(step.cases)]
                out.append(("otherwise", step.otherwise or following))
            case s.SplitStep():
                out += [(f"variants.{j}.goto", v.goto) for j, v in enumerate(step.variants)]
                out.append(("holdout.goto", step.holdout_goto))
            case s.GotoStep():
                out.append(("target", step.target))
            case s.RepeatStep():
                out += [("from", step.from_), ("next", step.next or following)]
            case s.ExitStep():
                pass
            case _:
                assert_never(step)
        edges[step.id] = [(name, target) for name, target in out if target]
    return edges


def _loc_of_field(index: int, field: str) -> tuple[str | int, ...]:
    parts: list[str | int] = ["steps", index]
    parts += [int(p) if p.isdigit() else p for p in field.split(".")]
    return tuple(parts)


def _unknown_targets(steps: Sequence[StepModel], named: Sequence[str], out: Any) -> None:
    """Jumps to a step id that is not in ``named`` (the file's step ids)."""
    index = {step.id: i for i, step in enumerate(steps)}
    for sid, targets in successors(steps).items():
        for field, target in targets:
            if target not in named:
                label = field.split(".")[-1].replace("target", "goto")  # not "target target '…'"
                out.add(
                    _loc_of_field(index[sid], field),
                    "unknown-step",
                    f"{label} target '{target}' does not exist",
                    did_you_mean(target, list(named)),
                )


def _check_graph(steps: Sequence[StepModel], out: _Collector) -> None:
    ids = [step.id for step in steps]
    index = {sid: i for i, sid in enumerate(ids)}
    edges = successors(steps)
    _unknown_targets(steps, ids, out)
    for sid, targets in edges.items():
        for field, target in targets:
            if target == sid and field != "from":
                out.add(_loc_of_field(index[sid], field), "self-loop", f"step '{sid}' jumps to itself")
    for i, step in enumerate(steps):
        if isinstance(step, s.RepeatStep) and step.from_ in index and index[step.from_] >= i:
            out.add(
                ("steps", i, "from"),
                "invalid-repeat",
                f"repeat '{step.id}' must jump back to an earlier step, not '{step.from_}'",
            )
    if out.items:
        return
    # Reachability from the first step.
    reached: set[str] = set()
    stack = [ids[0]]
    while stack:
        cur = stack.pop()
        if cur in reached:
            continue
        reached.add(cur)
        stack.extend(t for _, t in edges[cur])
    for sid in ids:
        if sid not in reached:
            out.add(
                ("steps", index[sid], "id"),
                "unreachable-step",
                f"step '{sid}' can never be reached",
                "link it with next/goto, or delete it",
            )
    # Cycles that contain no wait: would run forever (or burst messages) in one tick.
    for cycle in _wait_free_cycles(ids, edges, steps):
        first = min(cycle, key=lambda sid: index[sid])
        out.add(
            ("steps", index[first], "id"),
            "wait-free-cycle",
            f"steps {' → '.join([*cycle, cycle[0]])} form a loop with no wait",
            "add a wait or wait_for inside the loop",
        )


def _wait_free_cycles(
    ids: Sequence[str], edges: dict[str, list[tuple[str, str]]], steps: Sequence[StepModel]
) -> list[list[str]]:
    """Strongly connected components (Tarjan) of the graph without waiting steps, size > 1 or self-loop."""
    waiting = {step.id for step in steps if isinstance(step, WAITING_MODELS)}
    graph = {sid: [t for _, t in edges[sid] if t not in waiting] for sid in ids if sid not in waiting}
    index_of: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = [0]

    def strong(v: str) -> None:
        index_of[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, []):
            if w not in graph:
                continue
            if w not in index_of:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index_of[w])
        if low[v] == index_of[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                order = {sid: i for i, sid in enumerate(ids)}
                found.append(sorted(comp, key=order.__getitem__))

    for v in graph:
        if v not in index_of:
            strong(v)
    return found


def _check_templates(
    journey: Journey, steps: Sequence[StepModel], templates: Templates, out: _Collector
) -> None:
    wanted = journey.policy.locales
    if journey.policy.default_locale not in wanted:
        out.add(
            ("policy", "default_locale"),
            "missing-locale",
            f"default locale '{journey.policy.default_locale}' is not in policy.locales {wanted}",
        )
    for i, step in enumerate(steps):
        if not isinstance(step, s.SendStep) or step.sendgrid_template_id:
            continue
        have = templates.locales_of(step.template)
        if not have:
            out.add(
                ("steps", i, "template"),
                "missing-template",
                f"template '{step.template}' not found "
                f"(expected {templates.root}/<locale>/{step.template}.j2)",
                did_you_mean(step.template, templates.names()),
            )
            continue
        for locale in wanted:
            if locale not in have:
                out.add(
                    ("steps", i, "template"),
                    "missing-locale",
                    f"template '{step.template}' has no '{locale}' version "
                    f"({templates.path(step.template, locale)})",
                )
            else:
                problem = templates.check(step.template, locale, item=semantics.item_trigger(journey))
                if problem:
                    out.add(("steps", i, "template"), "bad-template", problem)
