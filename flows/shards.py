"""Fan-out: one tick's or nightly's due set shared by several processes on several machines.

A run with ``shards = N`` starts ``N - 1`` child runs of the ``sweep-shard`` deployment
(:func:`prefect.deployments.run_deployment`, linked as subflows so the UI shows them under the run),
sweeps its own share meanwhile, then waits for the children and adds up what they did. There is no
partitioning: every sweep claims due rows with ``FOR UPDATE SKIP LOCKED`` until nothing is claimable, so
the sweeps never take the same enrollment (or the same pending message) and together they leave nothing
due. ``shards = 1`` (the default) starts nothing: today's single in-process sweep.

Why child *deployment runs* rather than tasks on a distributed task runner: a process worker runs each
flow run in its own process and any worker of the pool — on any machine — picks up the children, so more
workers are more CPU with nothing else to install or operate. Prefect's task runners spread tasks over
threads or processes of *one* machine (``ThreadPoolTaskRunner``; Dask/Ray need their own cluster), and
Prefect's background task workers need Redis-backed task scheduling configured on the server. Child runs
also get what flow runs get: their own logs, states and artifacts, a retry button, cancellation.

Why the parent sweeps too, instead of N children: it needs a worker slot anyway, so N processes work
with N slots; a pool whose workers are full (``prefect worker start --limit``) cannot deadlock (the
parent finishes the whole due set alone, since the children's rows are not locked until they start);
and a child that has not started by the time the parent's share is done is not waited for long — the
due set is done without it.

A child's result reaches the parent as its table artifact (key ``sweep-shard``; ``Stats.records``), not
as a Prefect result: results are files in each worker's local storage unless a shared result storage
block is configured, and artifacts live on the Prefect server every worker already talks to.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID

from prefect import get_run_logger

from app.stats import SHARD, Stats

SHARD_DEPLOYMENT = "sweep-shard/sweep-shard"
MAX_SHARDS = 64
#: How long a child may stay unstarted once the parent's own share is done (no free worker?).
START_GRACE_SECONDS = 300.0
POLL_SECONDS = 2.0

SweepFn = Callable[..., Stats]


def fan_out(
    now: datetime, *, journey: str | None, shards: int, kind: str, due: int | None, sweep: SweepFn
) -> Stats:
    """Sweep ``now``'s due set in ``shards`` processes (this one included); return what they all did."""
    if shards <= 1:
        return sweep(now, journey=journey, due=due)
    children = _start(now, journey=journey, shards=shards, kind=kind)
    total = sweep(now, journey=journey, due=due)
    return total.merge(_collect(children, shards))


def _start(now: datetime, *, journey: str | None, shards: int, kind: str) -> list[Any]:
    from prefect.deployments import run_deployment
    from prefect.exceptions import ObjectNotFound

    children = []
    for shard in range(2, shards + 1):
        try:
            children.append(
                run_deployment(
                    SHARD_DEPLOYMENT,
                    parameters={
                        "now": now,
                        "journey": journey,
                        "shard": shard,
                        "shards": shards,
                        "kind": kind,
                    },
                    timeout=0,  # start them all, then sweep our own share
                )
            )
        except ObjectNotFound:
            raise ValueError(
                f"shards={shards} needs the {SHARD_DEPLOYMENT} deployment on the Prefect server and a worker "
                "of its pool (prefect deploy --all; prefect worker start --pool posventa); "
                "shards=1 sweeps in this process"
            ) from None
    get_run_logger().info("started %d sweep-shard runs", len(children))
    return children


def _collect(children: list[Any], shards: int) -> Stats:
    """Wait for the children; add up their artifacts. A child that crashed, failed without an artifact
    or never started is a ``shard`` reason (the run is not clean; its rows are due again next run)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    ids = [c.id for c in children]
    names = {c.id: c.name for c in children}
    total = Stats()
    own_done = time.monotonic()
    with get_client(sync_client=True) as client:
        while True:
            runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids)))
            waiting = [r for r in runs if not (r.state and r.state.is_final())]
            unstarted = [r for r in waiting if r.start_time is None]
            overdue = time.monotonic() - own_done > START_GRACE_SECONDS
            if not waiting or (overdue and len(unstarted) == len(waiting)):
                break
            time.sleep(POLL_SECONDS)
        found = _artifacts(client, ids)
    for run in runs:
        name = names.get(run.id) or run.name
        if run.id in found:
            total.merge(Stats.from_records(found[run.id]))
            continue
        state = run.state.name if run.state else "no state"
        if run.state is None or not run.state.is_final():
            why = f"{name} did not start within {START_GRACE_SECONDS:.0f} s (no free worker?)"
        else:
            why = f"{name} {state}: {(run.state.message or '')[:200]}"
        total.reasons[("", "", SHARD, why)] += 1
        get_run_logger().warning("shard %s of %d: %s", name, shards, why)
    return total


def _artifacts(client: Any, ids: list[UUID]) -> dict[UUID, list[dict[str, Any]]]:
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey

    found = client.read_artifacts(
        artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=ids), key=ArtifactFilterKey(any_=["sweep-shard"])
        )
    )
    out: dict[UUID, list[dict[str, Any]]] = {}
    for a in found:
        data = json.loads(a.data) if isinstance(a.data, str) else a.data
        if a.flow_run_id is not None and isinstance(data, list):
            out[a.flow_run_id] = data
    return out
