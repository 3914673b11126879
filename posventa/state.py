"""An enrollment's state and what one advance decides: the engine's inputs and outputs, as data.

:class:`State` is stored as JSON in the enrollments table: keys are only added (an older state reads
with defaults), never renamed. The effects (:class:`Send`, :class:`Act`, :class:`Skip`) carry the key
``step:occurrence`` the ledger turns into an exactly-once effect; :class:`Deferral` says why a send
waits, for the run statistics.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from posventa.plan import JourneyPlan
from posventa.timeutil import parse_instant

Status = Literal["active", "waiting", "held", "completed", "exited", "converted"]
ENDED = frozenset({"completed", "exited", "converted"})


def _iso(d: datetime | None) -> str | None:
    return None if d is None else d.astimezone(UTC).isoformat()


def _instant(v: Any) -> datetime | None:
    return parse_instant(v) if v else None


@dataclass(frozen=True)
class State:
    """An enrollment's position in its plan.

    ``since`` is the journey's clock: the moment the current step became due — the triggering event's
    ``occurred_at`` for the first step, then the end of the last wait, the ``occurred_at`` of the event a
    ``wait_for`` received, or the moment the last message went out. Waits count from it, and a send's
    ``expires_after`` too. ``trigger`` is the event that enrolled the customer (``event`` is the latest
    one); ``item`` the SKU of the order item a date trigger over items enrolled for.
    """

    step: str | None
    status: Status
    entered_at: datetime
    visits: Mapping[str, int] = field(default_factory=dict)
    loops: Mapping[str, int] = field(default_factory=dict)
    wait_step: str | None = None
    wait_since: datetime | None = None
    wait_until: datetime | None = None
    consumed: tuple[str, ...] = ()
    event: Mapping[str, Any] | None = None
    variant: str | None = None
    reason: str | None = None
    since: datetime | None = None
    trigger: Mapping[str, Any] | None = None
    item: str | None = None

    @classmethod
    def start(
        cls,
        plan: JourneyPlan,
        entered_at: datetime,
        trigger: Mapping[str, Any] | None = None,
        item: str | None = None,
    ) -> State:
        """A new enrollment at the plan's first step; ``trigger`` is the enrolling event (also the first
        ``event``)."""
        event = None if trigger is None else dict(trigger)
        return cls(
            step=plan.start,
            status="active",
            entered_at=entered_at,
            event=event,
            since=entered_at,
            trigger=event,
            item=item,
        )

    @property
    def trigger_event(self) -> Mapping[str, Any] | None:
        """The enrolling event. A state stored before ``trigger`` existed still has it as ``event`` until a
        ``wait_for`` received another one."""
        if self.trigger is not None:
            return self.trigger
        return self.event if not self.consumed else None

    def to_json(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "status": self.status,
            "entered_at": _iso(self.entered_at),
            "visits": dict(self.visits),
            "loops": dict(self.loops),
            "wait_step": self.wait_step,
            "wait_since": _iso(self.wait_since),
            "wait_until": _iso(self.wait_until),
            "consumed": list(self.consumed),
            "event": None if self.event is None else dict(self.event),
            "variant": self.variant,
            "reason": self.reason,
            "since": _iso(self.since),
            "trigger": None if self.trigger is None else dict(self.trigger),
            "item": self.item,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> State:
        entered = _instant(d["entered_at"])
        assert entered is not None
        return cls(
            step=d.get("step"),
            status=d["status"],
            entered_at=entered,
            visits=dict(d.get("visits", {})),
            loops=dict(d.get("loops", {})),
            wait_step=d.get("wait_step"),
            wait_since=_instant(d.get("wait_since")),
            wait_until=_instant(d.get("wait_until")),
            consumed=tuple(d.get("consumed", ())),
            event=d.get("event"),
            variant=d.get("variant"),
            reason=d.get("reason"),
            since=_instant(d.get("since")),
            trigger=d.get("trigger"),
            item=d.get("item"),
        )


@dataclass(frozen=True)
class Send:
    """A message to send. ``context`` is what its template needs from the journey at this moment: the
    latest and the triggering event, the split arm, this visit's number and every step's visits, the
    item (JSON, stored with the message)."""

    step: str
    occurrence: int
    template: str
    channel: str
    category: str
    locale: str
    sendgrid_template_id: str | None = None
    context: Mapping[str, Any] = field(default_factory=dict, compare=False)

    @property
    def key(self) -> str:
        return f"{self.step}:{self.occurrence}"


@dataclass(frozen=True)
class Act:
    step: str
    occurrence: int
    action: str
    params: Mapping[str, Any]

    @property
    def key(self) -> str:
        return f"{self.step}:{self.occurrence}"


@dataclass(frozen=True)
class Skip:
    """A step that was due but will not happen for this customer (recorded in the ledger as skipped)."""

    step: str
    occurrence: int
    reason: str
    category: str | None = None
    template: str | None = None

    @property
    def key(self) -> str:
        return f"{self.step}:{self.occurrence}"


Effect = Send | Act | Skip


class DeferralReason(StrEnum):
    """Why a due send did not happen now but will later. Reported to ops (run statistics), so the values
    are stable: add new ones, never rename one."""

    QUIET_HOURS = "quiet_hours"
    FREQUENCY_CAP = "frequency_cap"
    COMPLAINT_HOLD = "complaint_hold"


@dataclass(frozen=True)
class Deferral:
    """A send that waits: quiet hours and the frequency cap until ``until``; a complaint hold until the
    complaint is resolved (``until`` is then only when the engine looks again)."""

    step: str
    reason: DeferralReason
    until: datetime
    #: Which pass through the step waits (its visit count, as in the ledger key): with ``step`` and the
    #: enrollment it names the one message, however many sweeps it waits through.
    occurrence: int = 0


@dataclass(frozen=True)
class Advance:
    state: State
    effects: tuple[Effect, ...]
    next_due_at: datetime | None
    trace: tuple[str, ...]
    deferrals: tuple[Deferral, ...] = ()

    @property
    def status(self) -> Status:
        return self.state.status
