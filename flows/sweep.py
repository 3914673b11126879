"""Prefect flows: the frequent tick, the nightly run, the per-customer run, and the shards a tick or
nightly fans out to.

Waits of days are rows with ``next_due_at``, not sleeping processes: these flows claim what is due in
batches (task runs), advance it through the pure engine and deliver the messages. A flow run costs about
a second here and a task run a few milliseconds (``docs/architecture.md``), so the nightly run is one flow
run with a task run per batch of up to ``POSVENTA_BATCH_SIZE`` enrollments — never a flow run per customer.

With ``shards`` > 1 a tick or nightly shares its due set with ``shards - 1`` child runs of the
``sweep-shard`` deployment, which any worker of the pool picks up (``flows/shards.py`` says why this
way). How each run ends — state, log, table artifact, events — is ``flows/outcome.py``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_progress_artifact, create_table_artifact, update_progress_artifact
from prefect.states import State
from pydantic import Field

from app.stats import Stats
from flows.outcome import conclude
from flows.shards import MAX_SHARDS, fan_out
from tasks.report import publish_report
from tasks.steps import (
    advance_batch,
    count_due,
    deliver_batch,
    enroll_scheduled,
    failure_reasons,
    reconcile,
    services,
)

MAX_BATCHES = 100_000

#: How many processes share one run's due set: this run and ``shards - 1`` ``sweep-shard`` runs.
Shards = Annotated[int, Field(ge=1, le=MAX_SHARDS)]


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
    due: int | None = None,
) -> Stats:
    """Advance everything claimable, then deliver everything pending. Called inside a flow.

    Claims skip rows another process holds (``SKIP LOCKED``), so several sweeps at once — the shards of
    one run, or overlapping runs — share the work and each stops when nothing is left for it."""
    total = Stats()
    if due is None and customer is None and artifacts:
        due = count_due(now, journey)
    progress: Any = (
        create_progress_artifact(0.0, description=f"{due} enrollments due") if artifacts and due else None
    )
    done = 0
    for batch in range(1, MAX_BATCHES):
        st = Stats.from_json(advance_batch(now, batch, journey=journey, customer=customer, force=force))
        total.merge(st)
        done += st.enrollments
        if progress is not None:
            update_progress_artifact(progress, min(100.0, 100.0 * done / max(due or 0, 1)))
        if st.enrollments < services().config.batch_size or force:
            break
    for batch in range(1, MAX_BATCHES):
        st = Stats.from_json(deliver_batch(now, batch, customer=customer))
        total.merge(st)
        if sum(st.rows.values()) < services().config.batch_size:
            break
    if progress is not None:
        update_progress_artifact(progress, 100.0)
    return total


def _run_name(kind: str) -> Any:
    """Flow run names ops can read: 'tick · all journeys', 'nightly · birthday', 'customer c-42 · all
    journeys', 'sweep-shard 2/4 · tick'."""

    def name() -> str:
        from prefect.runtime import flow_run

        params = flow_run.parameters
        journey = params.get("journey") or "all journeys"
        if "shard" in params:
            return f"{kind} {params['shard']}/{params['shards']} · {params.get('kind') or 'tick'}"
        customer = params.get("customer")
        return f"{kind} {customer} · {journey}" if customer else f"{kind} · {journey}"

    return name


def _scheduled_run(
    kind: str, at: datetime, journey: str | None, shards: int, entered: Stats | None
) -> State[Any]:
    due = count_due(at, journey)
    stats = fan_out(at, journey=journey, shards=shards, kind=kind, due=due, sweep=sweep)
    if entered is not None:
        stats.merge(entered)
    stats.add_reasons(failure_reasons(at))  # once, after every shard finished: they share ``at``
    reconcile(at)
    return conclude(stats, kind=kind, now=at, due=due, key=f"{kind}-summary")


@flow(name="tick", flow_run_name=_run_name("tick"), log_prints=True)
def tick(journey: str | None = None, now: datetime | None = None, shards: Shards = 1) -> State[Any]:
    """Every few minutes: what is due now (event-driven steps such as the thank-you leave here)."""
    return _scheduled_run("tick", _now(now), journey, shards, None)


@flow(name="nightly", flow_run_name=_run_name("nightly"), log_prints=True)
def nightly(journey: str | None = None, now: datetime | None = None, shards: Shards = 1) -> State[Any]:
    """Nightly: date triggers (birthday, warranty, replenishment), segments, the sweep, reconciliation,
    and the results report of the last 30 days as a Markdown artifact (``results-report``)."""
    at = _now(now)
    entered = Stats.from_json(enroll_scheduled(at))
    state = _scheduled_run("nightly", at, journey, shards, entered)
    try:  # the results report (a Markdown artifact) never changes how the sweep's run ends
        publish_report(at, journey=journey)
    except Exception as exc:
        get_run_logger().warning("results report not published: %s: %s", type(exc).__name__, exc)
    return state


@flow(name="sweep-shard", flow_run_name=_run_name("sweep-shard"), log_prints=True)
def sweep_shard(
    now: datetime, shard: int, shards: int, journey: str | None = None, kind: str = "tick"
) -> State[Any]:
    """One share of a tick's or nightly's due set, started by that run (``shards`` > 1): sweep until
    nothing is claimable. Its table artifact (key ``sweep-shard``) is what the parent run adds up."""
    at = _now(now)
    stats = sweep(at, journey=journey, artifacts=False)
    create_table_artifact(
        stats.records(),
        key="sweep-shard",
        description=f"shard {shard}/{shards} of the {kind} at {at:%Y-%m-%d %H:%M:%S} UTC: counts per "
        "journey step and outcome (read back by the parent run)",
    )
    # The parent reports reasons, events and the summary table for the whole run.
    return conclude(
        stats, kind="sweep-shard", now=at, due=None, key="sweep-shard", events=False, artifact=False
    )


# A blank id must not reach the sweep: with ``force`` and no customer filter it would advance a whole batch
# of other customers early. The pattern is in the deployment's parameter schema, so the server refuses
# such a run (UI form, ``prefect deployment run``) before any worker sees it.
CustomerId = Annotated[str, Field(pattern=r"\S")]


@flow(name="customer", flow_run_name=_run_name("customer"), log_prints=True)
def journey_for_customer(
    customer: CustomerId, journey: str | None = None, now: datetime | None = None
) -> State[Any]:
    """Advance one customer now (ops from the UI, or right after an event for minute-level latency)."""
    at = _now(now)
    stats = sweep(at, journey=journey, customer=customer, force=True)
    stats.add_reasons(failure_reasons(at))
    return conclude(stats, kind="customer", now=at, due=None, key="customer-run")


def summary_rows(stats: Stats) -> list[dict[str, Any]]:
    return stats.table()
