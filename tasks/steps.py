"""Prefect tasks: thin wrappers, one side effect each, around the runtime (STYLE.md §9).

Tasks retry only transient failures (a dropped database connection, a deadlock, a lock timeout): a bug or
bad data fails once and shows in the UI instead of being hammered. Per-customer failures never reach
here — the runtime records them on the enrollment and the batch goes on.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any

from prefect import Task, task
from prefect.client.schemas.objects import TaskRun
from prefect.states import State
from sqlalchemy.exc import DBAPIError, OperationalError

from infra.runtime import Runtime


@lru_cache(maxsize=1)
def _default_runtime() -> Runtime:
    return Runtime.from_settings()


_override: list[Runtime] = []


def use_runtime(rt: Runtime | None) -> None:
    """Let the demo and tests run the flows against a runtime they built (virtual clock, test database)."""
    _override[:] = [rt] if rt is not None else []


def runtime() -> Runtime:
    return _override[0] if _override else _default_runtime()


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


@task(
    name="advance-batch",
    task_run_name="advance · batch {batch}",
    retries=RETRIES,
    retry_delay_seconds=DELAYS,
    retry_condition_fn=transient,
)
def advance_batch(
    now: datetime, batch: int, journey: str | None = None, customer: str | None = None, force: bool = False
) -> dict[str, Any]:
    return runtime().advance_due(now, journey=journey, customer=customer, force=force).to_json()


@task(
    name="deliver-batch",
    task_run_name="deliver · batch {batch}",
    retries=RETRIES,
    retry_delay_seconds=DELAYS,
    retry_condition_fn=transient,
)
def deliver_batch(now: datetime, batch: int, customer: str | None = None) -> dict[str, Any]:
    return runtime().deliver(now, customer=customer).to_json()


@task(
    name="enroll-scheduled",
    task_run_name="enroll date & segment triggers",
    retries=RETRIES,
    retry_delay_seconds=DELAYS,
    retry_condition_fn=transient,
)
def enroll_scheduled(now: datetime) -> dict[str, Any]:
    return runtime().enroll_scheduled(now).to_json()


@task(
    name="reconcile",
    task_run_name="reconcile ambiguous sends",
    retries=RETRIES,
    retry_delay_seconds=DELAYS,
    retry_condition_fn=transient,
)
def reconcile(now: datetime) -> dict[str, int]:
    return runtime().reconcile(now)


@task(
    name="ingest-events",
    task_run_name="ingest {label}",
    retries=RETRIES,
    retry_delay_seconds=DELAYS,
    retry_condition_fn=transient,
)
def ingest_events(
    items: list[dict[str, Any]], label: str, source: str = "import", now: datetime | None = None
) -> dict[str, Any]:
    rep = runtime().apply_events(items, source, now)
    return {"accepted": rep.accepted, "duplicates": rep.duplicates, "rejected": rep.rejected}


@task(name="count-due", task_run_name="count due enrollments")
def count_due(now: datetime, journey: str | None = None) -> int:
    return runtime().count_due(now, journey)
