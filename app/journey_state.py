"""Plain data about journeys as the marketer controls them — which version runs, whether it runs — as it
crosses the store port (like :mod:`app.records`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

#: What a journey's state allows (stored tags, ``infra.db.models.JOURNEY_STATES``).
RUNNING, PAUSED, DRAINING, STOPPED = "running", "paused", "draining", "stopped"
#: States in which new customers enter.
ADMITTING = frozenset({RUNNING})
#: States in which due steps wait instead of running (the claims skip them).
HOLDING = frozenset({PAUSED})


@dataclass(frozen=True)
class JourneyControl:
    """A journey's row: the version new entrants get (None before the first publication) and its state."""

    journey_id: str
    live_version: str | None
    state: str
    reason: str | None
    published_at: datetime | None
    changed_at: datetime | None

    @property
    def admits(self) -> bool:
        return self.state in ADMITTING


@dataclass(frozen=True)
class Publication:
    journey_id: str
    version: str
    previous_version: str | None
    kind: str
    published_at: datetime


@dataclass(frozen=True)
class LiveEnrollment:
    """A live enrollment as a migration sees it (locked until the transaction ends)."""

    id: int
    customer_id: str
    plan_version: str
    state: Mapping[str, Any]
    next_due_at: datetime | None


@dataclass(frozen=True)
class StepCount:
    """How many live enrollments of a journey sit at a step of a version now."""

    plan_version: str
    step: str | None
    count: int
