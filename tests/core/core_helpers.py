"""Builders shared by the core tests: journeys from YAML text, facts, events."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from posventa.compile import compile_checked
from posventa.engine import Advance, Facts, State, advance
from posventa.plan import JourneyPlan
from posventa.validate import check_text

REPO = Path(__file__).resolve().parents[2]
#: A Monday, 08:00 UTC (09:00 in Madrid, 02:00 in Mexico City).
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
TEMPLATE = (
    "{% block subject %}Hi {{ customer.first_name }}{% endblock %}\n{% block text %}Hello{% endblock %}\n"
    "{% block html %}<p>Hello</p>{% endblock %}\n"
)


def write_templates(
    root: Path, names: Iterable[str], locales: Iterable[str] = ("es", "en"), body: str = TEMPLATE
) -> None:
    for locale in locales:
        (root / locale).mkdir(parents=True, exist_ok=True)
        for name in names:
            (root / locale / f"{name}.j2").write_text(body, encoding="utf-8")


def plan_of(text: str, templates_root: Path, name: str = "case") -> JourneyPlan:
    """Validate and compile a journey written inline (raises JourneyError with every problem)."""
    return compile_checked(check_text(text, f"journeys/{name}.yaml", templates_root))


def customer(**overrides: Any) -> dict[str, Any]:
    base = {
        "id": "c1",
        "email": "ana@example.com",
        "name": "Ana Pérez",
        "locale": "es",
        "timezone": "Europe/Madrid",
        "consent_email": True,
    }
    return {**base, **overrides}


def facts(**overrides: Any) -> Facts:
    """Facts for customer c1 with order o1, overridable field by field (``customer=…`` replaces it)."""
    base: dict[str, Any] = {"customer": customer(), "order": {"id": "o1", "placed_at": T0.isoformat()}}
    return Facts(**{**base, **overrides})


def event(
    kind: str, at: datetime, order_id: str | None = "o1", ident: str | None = None, **data: Any
) -> dict[str, Any]:
    return {
        "id": ident or f"{kind}@{at.isoformat()}",
        "type": kind,
        "occurred_at": at,
        "order_id": order_id,
        "data": data,
    }


def run_until_rest(
    plan: JourneyPlan, f: Facts, start: datetime = T0, limit: int = 50, state: State | None = None
) -> tuple[State, list[Advance]]:
    """Advance at each ``next_due_at`` until the enrollment ends or nothing is due."""
    state = state or State.start(plan, start)
    now, steps = start, []
    for _ in range(limit):
        adv = advance(state, plan, now, f)
        steps.append(adv)
        state = adv.state
        if adv.next_due_at is None:
            return state, steps
        now = max(now, adv.next_due_at)
    raise AssertionError(f"no rest after {limit} advances: {state}")


def hours(n: float) -> timedelta:
    return timedelta(hours=n)
