"""Prefect flows: the frequent tick, the nightly run and the per-customer run.

Waits of days are rows with ``next_due_at``, not sleeping processes: these flows claim what is due in
batches (task runs), advance it through the pure engine and deliver the messages. A flow run costs about
a second here and a task run a few milliseconds (``docs/architecture.md``), so the nightly run is one flow
run with a task run per batch of up to ``POSVENTA_BATCH_SIZE`` enrollments — never a flow run per customer.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_progress_artifact, create_table_artifact, update_progress_artifact
from pydantic import Field

from app.stats import Stats
from tasks.steps import advance_batch, count_due, deliver_batch, enroll_scheduled, reconcile, services

MAX_BATCHES = 100_000


def _now(now: datetime | str | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if isinstance(now, str):
        now = datetime.fromisoformat(now)
    return now if now.tzinfo else now.replace(tzinfo=UTC)


def sweep(
    now: datetime,
    journey: str | None = None,
    customer: str | None = None,
    force: bool = False,
    artifacts: bool = True,
    key: str = "sweep",
) -> Stats:
    """Advance everything due, then deliver everything pending. Called inside a flow."""
    total = Stats()
    due = count_due(now, journey) if customer is None else 0
    progress: Any = (
        create_progress_artifact(0.0, description=f"{due} enrollments due") if artifacts and due else None
    )
    done = 0
    for batch in range(1, MAX_BATCHES):
        st = Stats.from_json(advance_batch(now, batch, journey=journey, customer=customer, force=force))
        total.merge(st)
        done += st.enrollments
        if progress is not None:
            update_progress_artifact(progress, min(100.0, 100.0 * done / max(due, 1)))
        if st.enrollments < services().config.batch_size or force:
            break
    for batch in range(1, MAX_BATCHES):
        st = Stats.from_json(deliver_batch(now, batch, customer=customer))
        total.merge(st)
        if sum(st.rows.values()) < services().config.batch_size:
            break
    if progress is not None:
        update_progress_artifact(progress, 100.0)
    if artifacts and total.rows:
        create_table_artifact(
            total.table(),
            key=key,
            description=f"Per journey step at {now:%Y-%m-%d %H:%M} UTC: due, sent, skipped "
            "(with reason), deferred/held, failed, unknown",
        )
    for failure in total.failures[:20]:
        get_run_logger().warning(failure)
    return total


def _run_name(kind: str) -> Any:
    """Flow run names ops can read: 'tick · all journeys', 'nightly · birthday', 'customer c-42 · all
    journeys'."""

    def name() -> str:
        from prefect.runtime import flow_run

        journey = flow_run.parameters.get("journey") or "all journeys"
        customer = flow_run.parameters.get("customer")
        return f"{kind} {customer} · {journey}" if customer else f"{kind} · {journey}"

    return name


@flow(name="tick", flow_run_name=_run_name("tick"), log_prints=True)
def tick(journey: str | None = None, now: datetime | None = None) -> Stats:
    """Every few minutes: what is due now (event-driven steps such as the thank-you leave here)."""
    at = _now(now)
    stats = sweep(at, journey=journey, key="tick-summary")
    reconcile(at)
    return stats


@flow(name="nightly", flow_run_name=_run_name("nightly"), log_prints=True)
def nightly(journey: str | None = None, now: datetime | None = None) -> Stats:
    """Nightly: date triggers (birthday, warranty, replenishment), segments, the sweep, reconciliation."""
    at = _now(now)
    entered = Stats.from_json(enroll_scheduled(at))
    stats = sweep(at, journey=journey, key="nightly-summary").merge(entered)
    reconcile(at)
    return stats


# A blank id must not reach the sweep: with ``force`` and no customer filter it would advance a whole batch
# of other customers early. The pattern is in the deployment's parameter schema, so the server refuses
# such a run (UI form, ``prefect deployment run``) before any worker sees it.
CustomerId = Annotated[str, Field(pattern=r"\S")]


@flow(name="customer", flow_run_name=_run_name("customer"), log_prints=True)
def journey_for_customer(
    customer: CustomerId, journey: str | None = None, now: datetime | None = None
) -> Stats:
    """Advance one customer now (ops from the UI, or right after an event for minute-level latency)."""
    return sweep(_now(now), journey=journey, customer=customer, force=True, key="customer-run")


def summary_rows(stats: Stats) -> list[dict[str, Any]]:
    return stats.table()
