"""Prefect tasks: thin wrappers, one use case each (``app``), so Prefect shows every batch as a task run
with its retries.

Tasks retry only transient failures (a dropped database connection, a deadlock, a lock timeout): a bug or
bad data fails once and shows in the UI instead of being hammered. Per-customer failures never reach
here — advancing records them on the enrollment and the batch goes on. Every task takes the same retry
options (:func:`durable`).

The services a task works with come from an explicit context: :func:`using` sets them for a block (the
demo on its virtual clock, tests on their database, a benchmark), and the task runs — in this thread or
in Prefect's worker threads, which copy the caller's context — see them. Without one, the services are
built once from the process's settings (a deployment on a worker).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from functools import lru_cache
from typing import Any, ParamSpec, TypeVar

from prefect import Task, task
from prefect.client.schemas.objects import TaskRun
from prefect.states import State
from sqlalchemy.exc import DBAPIError, OperationalError

from app.services import Services
from app.stats import ledger_reasons

P = ParamSpec("P")
R = TypeVar("R")

_current: ContextVar[Services | None] = ContextVar("posventa_services", default=None)


@lru_cache(maxsize=1)
def _from_settings() -> Services:
    from infra.wiring import build_services

    return build_services()


def services() -> Services:
    """The services of the current context, else those built from the settings."""
    return _current.get() or _from_settings()


@contextmanager
def using(svc: Services) -> Iterator[Services]:
    """Run the flows and tasks of this block on ``svc`` (restored afterwards, even on an exception)."""
    token = _current.set(svc)
    try:
        yield svc
    finally:
        _current.reset(token)


def transient(task: Task[Any, Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Retry on connection-level database errors only."""
    try:
        state.result()
    except OperationalError:
        return True
    except DBAPIError as exc:
        return bool(exc.connection_invalidated)
    except Exception:
        return False
    return False


RETRIES, DELAYS = 3, [1.0, 5.0, 20.0]


def durable(name: str, run_name: str) -> Callable[[Callable[P, R]], Task[P, R]]:
    """A task with the one retry policy every Posventa task uses."""

    return task(
        name=name,
        task_run_name=run_name,
        retries=RETRIES,
        retry_delay_seconds=DELAYS,
        retry_condition_fn=transient,
    )


@durable("advance-batch", "advance · batch {batch}")
def advance_batch(
    now: datetime, batch: int, journey: str | None = None, customer: str | None = None, force: bool = False
) -> dict[str, Any]:
    return services().advance.run(now, journey=journey, customer=customer, force=force).to_json()


@durable("deliver-batch", "deliver · batch {batch}")
def deliver_batch(now: datetime, batch: int, customer: str | None = None) -> dict[str, Any]:
    return services().deliver.run(now, customer=customer).to_json()


@durable("enroll-scheduled", "enroll date & segment triggers")
def enroll_scheduled(now: datetime) -> dict[str, Any]:
    return services().enroll.scheduled(now).to_json()


@durable("reconcile", "reconcile ambiguous sends")
def reconcile(now: datetime) -> dict[str, int]:
    return services().reconcile.run(now)


@durable("ingest-events", "ingest {label}")
def ingest_events(
    items: list[dict[str, Any]], label: str, source: str = "import", now: datetime | None = None
) -> dict[str, Any]:
    rep = services().ingest.apply(items, source, now)
    return {"accepted": rep.accepted, "duplicates": rep.duplicates, "rejected": rep.rejected}


@durable("count-due", "count due enrollments")
def count_due(now: datetime, journey: str | None = None) -> int:
    return services().advance.count_due(now, journey)


@durable("failure-reasons", "why sends failed")
def failure_reasons(now: datetime) -> list[tuple[str, str, str, str | None, int]]:
    """The run's ``failed``/``unknown`` ledger rows grouped by journey step and reason (read-only)."""
    return ledger_reasons(services().store, now)
