"""Moving customers already inside a journey to another version (``posventa migrate``).

Every enrollment pins the version it entered with; publishing changes only what new entrants get. A
migration re-pins the journey's live enrollments to one version: each keeps its place — the step it is
at, mapped by id (``--map old=new`` for steps renamed or removed) — and everything it has done: its
visits, loops, consumed events, answer and variant. A customer in the middle of a wait keeps the wait
they started (the new duration applies to those who arrive later).

Exactly once survives a migration: an effect's ledger key is ``enrollment:step:occurrence``, and the
enrollment id and its visit counts do not change, so no step already done is done again because its
version changed. Moving a customer *back* to a step they already passed would run it again (a new
occurrence): refused unless asked for (``allow_rerun``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from app.journey_state import LiveEnrollment
from app.plans import PlanBook
from app.ports import Store, Tx
from posventa.errors import PosventaError
from posventa.plan import JourneyPlan

WAITING_STEPS = ("wait", "wait_for")


@dataclass(frozen=True)
class Move:
    enrollment_id: int
    customer_id: str
    from_version: str
    from_step: str | None
    to_step: str | None
    #: The target step was already done once: its effects would run again (a new occurrence).
    rerun: bool = False


@dataclass(frozen=True)
class Migration:
    journey_id: str
    to_version: str
    moves: tuple[Move, ...]
    #: ``step@version`` → enrollments there whose step the target version does not have (no mapping).
    blocked: Mapping[str, int] = field(default_factory=dict)
    unused: tuple[str, ...] = ()  # mappings no enrollment needs

    @property
    def reruns(self) -> list[Move]:
        return [m for m in self.moves if m.rerun]

    def summary(self) -> Counter[tuple[str, str | None, str | None]]:
        """How many move from (version, step) to step."""
        return Counter((m.from_version, m.from_step, m.to_step) for m in self.moves)


def parse_mapping(pairs: Sequence[str]) -> dict[str, str]:
    """``["old=new", …]`` → ``{"old": "new"}``; a malformed or repeated pair is an error."""
    out: dict[str, str] = {}
    for pair in pairs:
        old, sep, new = pair.partition("=")
        old, new = old.strip(), new.strip()
        if not sep or not old or not new:
            raise PosventaError(f"--map takes old_step=new_step, not '{pair}'")
        if old in out and out[old] != new:
            raise PosventaError(f"--map {old} is given twice ({out[old]}, {new})")
        out[old] = new
    return out


def resolve_version(tx: Tx, journey: str, wanted: str) -> str:
    """``live``, a full version, or an unambiguous prefix of a published version."""
    control = tx.journeys.control(journey)
    if wanted == "live":
        if control is None or control.live_version is None:
            raise PosventaError(f"journey '{journey}' has no published version: run posventa publish")
        return control.live_version
    if tx.plans.get(journey, wanted) is not None:
        return wanted
    published = {p.version for p in tx.journeys.publications(journey)}
    matches = sorted(v for v in published if v.startswith(wanted))
    if len(matches) == 1:
        return matches[0]
    known = ", ".join(sorted(published)) or "none"
    raise PosventaError(
        f"journey '{journey}' has {'several' if matches else 'no'} version(s) '{wanted}' (published: {known})"
    )


def _moved_state(state: Mapping[str, Any], to_step: str | None, target: JourneyPlan) -> dict[str, Any]:
    out = dict(state)
    out["step"] = to_step
    waiting_here = state.get("wait_step") is not None and state.get("wait_step") == state.get("step")
    kind = target.steps[to_step].TYPE if to_step is not None and to_step in target.steps else None
    if waiting_here and kind in WAITING_STEPS:
        out["wait_step"] = to_step  # the wait started goes on at the mapped step
    else:
        out["wait_step"] = out["wait_since"] = out["wait_until"] = None
    return out


def plan_moves(
    journey: str,
    to_version: str,
    target: JourneyPlan,
    live: Sequence[LiveEnrollment],
    mapping: Mapping[str, str],
) -> Migration:
    """Who moves where (pure): every live enrollment not on ``to_version``."""
    wrong = sorted(f"{old}={new}" for old, new in mapping.items() if new not in target.steps)
    if wrong:
        raise PosventaError(
            f"version {to_version[:12]} of '{journey}' has no step {', '.join(wrong)} "
            f"(its steps: {', '.join(target.order)})"
        )
    moves: list[Move] = []
    blocked: Counter[str] = Counter()
    used: set[str] = set()
    for e in live:
        if e.plan_version == to_version:
            continue
        step = e.state.get("step")
        if step is not None and step in mapping:
            to: str | None = mapping[step]
            used.add(step)
        elif step is None or step in target.steps:
            to = step
        else:
            blocked[f"{step}@{e.plan_version[:12]}"] += 1
            continue
        visits = e.state.get("visits") or {}
        rerun = to is not None and to != step and int(visits.get(to, 0)) > 0
        moves.append(Move(e.id, e.customer_id, e.plan_version, step, to, rerun))
    unused = tuple(sorted(f"{k}={v}" for k, v in mapping.items() if k not in used))
    return Migration(journey, to_version, tuple(moves), dict(blocked), unused)


def migrate(
    store: Store,
    book: PlanBook,
    journey: str,
    to: str,
    mapping: Mapping[str, str],
    now: datetime,
    *,
    dry_run: bool = False,
    allow_rerun: bool = False,
) -> Migration:
    """Re-pin the live enrollments of ``journey`` to version ``to`` (``live`` for the published one), in
    one transaction with the enrollments locked. A dry run changes nothing. Raises
    :class:`~posventa.errors.PosventaError` — writing nothing — when a step has no target (``blocked``)
    or a move would run a step again without ``allow_rerun``; the dry run returns them instead."""
    with store.read() if dry_run else store.begin() as tx:
        version = resolve_version(tx, journey, to)
        target = book.pinned(tx, journey, version)
        live = tx.journeys.live_enrollments(journey, lock=not dry_run)
        migration = plan_moves(journey, version, target, live, mapping)
        if dry_run:
            return migration
        if migration.blocked:
            raise PosventaError(blocked_message(migration))
        if migration.reruns and not allow_rerun:
            raise PosventaError(rerun_message(migration))
        states = {e.id: e.state for e in live}
        tx.journeys.move(
            [
                {
                    "id": m.enrollment_id,
                    "plan_version": version,
                    "state": _moved_state(states[m.enrollment_id], m.to_step, target),
                    "next_due_at": now,  # looked at again by the next sweep, on the new version
                }
                for m in migration.moves
            ]
        )
    return migration


def blocked_message(m: Migration) -> str:
    where = ", ".join(f"{n} at {step}" for step, n in sorted(m.blocked.items()))
    steps = sorted({k.split("@", 1)[0] for k in m.blocked})
    return (
        f"version {m.to_version[:12]} of '{m.journey_id}' has no step for enrollments sitting at "
        f"{where}: map them, e.g. {' '.join(f'--map {s}=STEP' for s in steps)}"
    )


def rerun_message(m: Migration) -> str:
    steps = sorted({str(r.to_step) for r in m.reruns})
    return (
        f"{len(m.reruns)} enrollment(s) would go back to a step they already passed "
        f"({', '.join(steps)}) and run it again: map them elsewhere, or allow it (--rerun)"
    )
