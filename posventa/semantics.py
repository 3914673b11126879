"""Journey-wide checks, once the file's structure is valid: what conditions and copies read, where item
dates may be used, and settings that would do nothing.

A name is known or not depending on the journey: ``trigger_event`` exists when an event enrolls the
customer (and carries that event's data fields), ``item`` when a date trigger over order items does,
``journey.visits.<step>`` names one of the journey's steps. Each problem is a diagnostic at the
condition, with a did-you-mean hint where one helps.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from posventa import schema as s
from posventa.diagnostics import did_you_mean
from posventa.errors import ExpressionError
from posventa.expressions import check_names as _generic_names
from posventa.expressions import read_names

Loc = tuple[str | int, ...]


class Report(Protocol):
    def add(
        self,
        loc: Sequence[str | int],
        code: str,
        message: str,
        hint: str | None = None,
        *,
        key: bool = False,
        severity: str = "error",
    ) -> None: ...


def item_trigger(journey: s.Journey) -> bool:
    """Whether a date trigger over order items enrolls (``trigger.date: item.…``)."""
    return (journey.trigger.date or "").startswith("item.")


def _conditions(data: dict[str, Any], steps: Sequence[s.StepModel]) -> Iterable[tuple[Loc, str]]:
    """Every condition of the journey, and every ``set_attribute`` copy path, with its place."""
    trig = data.get("trigger") or {}
    for key in ("when", "segment"):
        if isinstance(trig.get(key), str):
            yield ("trigger", key), trig[key]
    exit_ = data.get("exit") or {}
    for j, rule in enumerate(exit_.get("on") or []):
        if isinstance(rule, dict) and isinstance(rule.get("when"), str):
            yield ("exit", "on", j, "when"), rule["when"]
    goal = exit_.get("goal") or {}
    if isinstance(goal, dict) and isinstance(goal.get("when"), str):
        yield ("exit", "goal", "when"), goal["when"]
    for i, step in enumerate(steps):
        if isinstance(step, s.BranchStep):
            for j, case in enumerate(step.cases):
                yield ("steps", i, "cases", j, "when"), case.when
        elif isinstance(step, s.WaitForStep) and step.match:
            yield ("steps", i, "match"), step.match
        elif isinstance(step, s.ActionStep) and step.set_attribute:
            for name, value in step.set_attribute.items():
                if isinstance(value, s.CopyFrom):
                    yield ("steps", i, "set_attribute", name, "from"), value.from_


def check_names(journey: s.Journey, data: dict[str, Any], steps: Sequence[s.StepModel], out: Report) -> None:
    step_ids = [step.id for step in steps]
    for loc, source in _conditions(data, steps):
        for message, hint in _generic_names(source):
            out.add(loc, "unknown-name", message, hint)
        try:
            chains = read_names(source)
        except ExpressionError:
            continue  # reported above
        for message, hint in _journey_names(journey, step_ids, chains):
            out.add(loc, "unknown-name", message, hint)


def _journey_names(
    journey: s.Journey, step_ids: Sequence[str], chains: Iterable[list[str]]
) -> Iterable[tuple[str, str | None]]:
    from posventa.events import EVENT_TYPES

    trigger = journey.trigger
    for chain in chains:
        root, rest = chain[0], chain[1:]
        if root == "item" and not item_trigger(journey):
            yield (
                "'item' is only known to journeys that a date trigger over items starts "
                "(trigger.date: item.warranty_expires_on or item.runs_out_on)",
                "read the order's items with order['items']",
            )
        elif root == "trigger_event" and trigger.event is None:
            yield (
                "'trigger_event' is only known to journeys that an event starts (trigger.event)",
                None,
            )
        elif root == "trigger_event" and rest[:1] == ["data"] and len(rest) > 1:
            assert trigger.event is not None
            fields = sorted(EVENT_TYPES[trigger.event].model_fields)
            if rest[1] not in fields:
                carries = f"carries {', '.join(fields)}" if fields else "carries no data"
                yield (
                    f"'{trigger.event}' (the trigger) has no data field '{rest[1]}'; it {carries}",
                    did_you_mean(rest[1], fields),
                )
        elif root == "journey" and rest[:1] == ["visits"] and len(rest) > 1 and rest[1] not in step_ids:
            yield (
                f"'journey.visits' counts steps, and there is no step '{rest[1]}'",
                did_you_mean(rest[1], step_ids),
            )


def check_dates(journey: s.Journey, steps: Sequence[s.StepModel], out: Report) -> None:
    """``item.*`` dates exist only where a date trigger over items enrolled the customer."""
    if item_trigger(journey):
        return
    for i, step in enumerate(steps):
        refs: list[tuple[Loc, s.DateRef | None]] = []
        if isinstance(step, s.WaitStep):
            refs.append((("steps", i, "until_date", "field"), step.until_date))
        elif isinstance(step, s.WaitForStep):
            refs.append((("steps", i, "deadline", "field"), step.deadline))
        for loc, ref in refs:
            if ref is not None and ref.field.startswith("item."):
                out.add(
                    loc,
                    "unknown-date-field",
                    f"'{ref.field}' is only known to journeys that a date trigger over items starts",
                    f"use '{ref.field.replace('item.', 'order.', 1)}', or trigger.date: {ref.field}",
                )


def check_no_effect(journey: s.Journey, out: Report) -> None:
    """Settings that validate but would do nothing: warnings, so the author is not surprised later."""
    t, e = journey.trigger, journey.entry
    if e.cooldown is not None and e.once_per != "customer":
        out.add(
            ("entry", "cooldown"),
            "no-effect",
            f"'cooldown' only applies with once_per: customer, not '{e.once_per}'",
            "remove it, or set once_per: customer",
            severity="warning",
        )
    if t.yearly and t.date is not None and not t.date.startswith("customer."):
        out.add(
            ("trigger", "yearly"),
            "no-effect",
            f"'yearly' only repeats customer dates, not '{t.date}'",
            severity="warning",
        )
    if t.date == "journey.entered_at":
        out.add(
            ("trigger", "date"),
            "no-effect",
            "a journey cannot start on its own entry date: nobody would ever enroll",
            "use an event, a customer date or an order date",
            severity="warning",
        )
    orderless = (t.date or "").startswith("customer.") or t.segment is not None
    if e.once_per == "order" and orderless:
        out.add(
            ("entry", "once_per"),
            "no-effect",
            "once_per: order needs an order, but this trigger has none: nobody would enroll",
            "use once_per: customer or occurrence",
            severity="warning",
        )
    if e.once_per == "item" and not item_trigger(journey):
        out.add(
            ("entry", "once_per"),
            "no-effect",
            "once_per: item needs a date trigger over items (trigger.date: item.…): nobody would enroll",
            "use once_per: order, or trigger on item.warranty_expires_on / item.runs_out_on",
            severity="warning",
        )
    if (
        journey.policy.stale_after is not None
        and t.event is None
        and "stale_after" in journey.policy.model_fields_set
    ):
        out.add(
            ("policy", "stale_after"),
            "no-effect",
            "'stale_after' guards event triggers only: date and segment triggers enroll when the nightly "
            "run finds them",
            "remove it",
            severity="warning",
        )
