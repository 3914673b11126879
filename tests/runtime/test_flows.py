"""The real Prefect engine runs the tick and per-customer flows (embedded server, its own PREFECT_HOME):
what they send, and how a run that is not clean looks to ops — its state, log, artifact and events."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any
from uuid import UUID

import pytest
from rt_helpers import T0, order_placed
from sqlalchemy import select, update

from app.services import Services
from infra.email.fake_sendgrid import FakeSendGrid

pytestmark = [pytest.mark.postgres, pytest.mark.prefect]

INVALID_KEY = "401: The provided authorization grant is invalid, expired, or revoked"


def _api(call: Any) -> Any:
    from prefect.client.orchestration import get_client

    async def go() -> Any:
        async with get_client() as client:
            return await call(client)

    return asyncio.run(go())


def _artifact(flow_run_id: UUID, key: str) -> list[dict[str, Any]]:
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey

    found = _api(
        lambda c: c.read_artifacts(
            artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]), key=ArtifactFilterKey(any_=[key])
            )
        )
    )
    assert len(found) == 1, found
    rows: list[dict[str, Any]] = json.loads(found[0].data)
    return rows


def _warnings(flow_run_id: UUID, *, expect: int) -> list[str]:
    """The run's WARNING (and worse) log lines as the server stored them (logs are shipped in batches)."""
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId, LogFilterLevel

    log_filter = LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id]), level=LogFilterLevel(ge_=30))

    async def read(client: Any) -> list[str]:
        for _ in range(60):
            found = [log.message for log in await client.read_logs(log_filter=log_filter)]
            if len(found) >= expect:
                break
            await asyncio.sleep(0.5)
        return found

    found: list[str] = _api(read)
    return found


def _events(flow_run_id: UUID, *, expect: int) -> dict[str, dict[str, Any]]:
    """The posventa.* events about one flow run (they reach the server asynchronously: wait for them)."""

    async def read(client: Any) -> list[dict[str, Any]]:
        for _ in range(60):
            answer = await client._client.post(
                "/events/filter",
                json={
                    "filter": {
                        "event": {"prefix": ["posventa."]},
                        "related": {"id": [f"prefect.flow-run.{flow_run_id}"]},
                    }
                },
            )
            found: list[dict[str, Any]] = answer.json()["events"]
            if len(found) >= expect:
                return found
            await asyncio.sleep(0.5)
        return found

    return {e["event"]: e for e in _api(read)}


def test_tick_and_customer_flows_send_and_publish_artifacts(svc: Services, fake: FakeSendGrid) -> None:
    from flows.sweep import journey_for_customer, tick
    from tasks.steps import using

    svc.ingest.apply([order_placed(i) for i in range(20)], "api", now=T0)
    with using(svc):
        state = tick(now=T0 + timedelta(minutes=1), return_state=True)
        stats = state.result()
        assert stats.total("sent") == 20
        assert state.is_completed() and state.message == "20 due · 20 sent"
        svc.ingest.apply([order_placed(99)], "api", now=T0)
        one = journey_for_customer(customer="c99", now=T0 + timedelta(minutes=2))
        assert one.total("sent") == 1
    assert len(fake.messages) == 21
    [row] = _artifact(state.state_details.flow_run_id, "tick-summary")
    assert (row["step"], row["due"], row["sent"], row["failed"], row["failure reasons"]) == (
        "thank_you",
        20,
        20,
        0,
        "",
    )
    events = _events(state.state_details.flow_run_id, expect=1)
    assert set(events) == {"posventa.run.completed"}
    assert events["posventa.run.completed"]["payload"]["sent"] == 20


def test_a_run_with_rejected_sends_fails_with_its_grouped_reasons(svc: Services, fake: FakeSendGrid) -> None:
    """A revoked key (401 on every request): the run is Failed, says why and how many, logs one WARNING
    per reason, puts the reason in its table and emits posventa.sends.failed."""
    from prefect.exceptions import FailedRun

    from flows.outcome import stats_of
    from flows.sweep import tick
    from tasks.steps import using

    svc.ingest.apply([order_placed(i) for i in range(12)], "api", now=T0)
    fake.fail_next(401, count=100)
    with using(svc):
        state = tick(now=T0 + timedelta(minutes=1), return_state=True)
    assert state.is_failed()
    assert state.message == f"12 sends failed: {INVALID_KEY} ×12 — 12 due · 12 failed"
    with pytest.raises(FailedRun, match=r"^12 sends failed"):
        state.result()
    stats = stats_of(state)
    assert stats is not None and stats.failed_sends == 12
    run_id = state.state_details.flow_run_id

    assert f"send failed ×12: {INVALID_KEY}" in _warnings(run_id, expect=1)
    [row] = _artifact(run_id, "tick-summary")
    assert (row["failed"], row["failure reasons"]) == (12, f"{INVALID_KEY} ×12")
    events = _events(run_id, expect=2)
    assert set(events) == {"posventa.run.completed", "posventa.sends.failed"}
    failed = events["posventa.sends.failed"]
    assert failed["payload"]["failed"] == 12
    assert failed["payload"]["reasons"] == [{"outcome": "failed", "reason": INVALID_KEY, "n": 12}]
    assert failed["resource"]["prefect.resource.id"] == f"posventa.run.{run_id}"
    assert events["posventa.run.completed"]["payload"]["clean"] is False


def test_a_failed_run_logs_no_traceback_where_a_worker_runs_it(svc: Services, fake: FakeSendGrid) -> None:
    """A worker runs a flow through ``run_flow(..., error_logger=<the run's logger>)`` (prefect.engine),
    which logs any failure it re-raises with a traceback. A run that is not clean returns a Failed state
    on purpose: its state and WARNING lines say why, and no ERROR line or traceback is added."""
    import logging

    from prefect.client.orchestration import get_client
    from prefect.exceptions import FailedRun
    from prefect.flow_engine import flow_run_logger, run_flow

    from flows.sweep import tick
    from tasks.steps import using

    svc.ingest.apply([order_placed(i) for i in range(3)], "api", now=T0)
    fake.fail_next(401, count=10)
    at = (T0 + timedelta(minutes=1)).isoformat()
    with get_client(sync_client=True) as client:
        run = client.create_flow_run(tick, parameters={"now": at})
    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    keep = Keep(logging.ERROR)
    for name in ("prefect.flow_runs", "prefect.engine"):
        logging.getLogger(name).addHandler(keep)
    try:
        with using(svc), pytest.raises(FailedRun, match=r"^3 sends failed"):
            run_flow(tick, flow_run=run, error_logger=flow_run_logger(run))
    finally:
        for name in ("prefect.flow_runs", "prefect.engine"):
            logging.getLogger(name).removeHandler(keep)
    assert [r.getMessage() for r in seen] == []
    stored = _warnings(run.id, expect=1)
    assert any(f"send failed ×3: {INVALID_KEY}" in line for line in stored), stored
    assert not [line for line in stored if "Traceback" in line or "unexpected exception" in line], stored


def test_posventa_tick_prints_the_reasons_and_exits_1(svc: Services, fake: FakeSendGrid, capsys: Any) -> None:
    """``posventa tick`` calls the flow in-process: the counts, then the grouped reasons, exit 1."""
    from flows.sweep import tick
    from ops.cli import _run_flow
    from tasks.steps import using

    svc.ingest.apply([order_placed(i) for i in range(3)], "api", now=T0)
    fake.fail_next(401, count=10)
    with using(svc):
        code = _run_flow(tick, now=T0 + timedelta(minutes=1))
    out, err = capsys.readouterr()
    assert code == 1
    assert "failed: 3" in out
    # (stderr may also hold Prefect's own console log lines, depending on the tests before this one)
    assert err.splitlines()[-1] == f"3 sends failed: {INVALID_KEY} ×3 — 3 due · 3 failed"
    assert "Traceback" not in out


def test_engine_errors_fail_the_run_with_their_reason(svc: Services, fake: FakeSendGrid) -> None:
    """Two enrollments whose state names a step their plan does not have cannot advance: recorded on
    them, and the run says so with the error they recorded."""
    from flows.sweep import tick
    from infra.db.models import Enrollment
    from tasks.steps import using

    svc.ingest.apply([order_placed(i) for i in range(4)], "api", now=T0)
    broken = Enrollment.customer_id.in_(["c0", "c1"])
    engine = svc.store.factory.kw["bind"]  # type: ignore[attr-defined]
    with engine.begin() as conn:
        conn.execute(update(Enrollment).where(broken).values(state={"step": "no_such_step"}))
    with using(svc):
        state = tick(now=T0 + timedelta(minutes=1), return_state=True)
    with engine.begin() as conn:
        [error] = set(conn.execute(select(Enrollment.last_error).where(broken)).scalars())
    assert state.is_failed()
    assert state.message.startswith(f"2 enrollments failed in the engine: {error} ×2 — "), state.message
    assert len(fake.messages) == 2
    rows = {r["step"]: r for r in _artifact(state.state_details.flow_run_id, "tick-summary")}
    assert (rows["thank_you"]["sent"], rows["thank_you"]["failed"]) == (2, 0)
    assert (rows["no_such_step"]["failed"], rows["no_such_step"]["failure reasons"]) == (2, "engine error ×2")
    events = _events(state.state_details.flow_run_id, expect=2)
    assert events["posventa.enrollments.failed"]["payload"]["engine_errors"] == 2


def test_an_idle_run_publishes_its_artifact(svc: Services) -> None:
    from flows.sweep import tick
    from tasks.steps import using

    with using(svc):
        state = tick(now=T0, return_state=True)
    assert state.is_completed() and state.message == "0 due"
    [row] = _artifact(state.state_details.flow_run_id, "tick-summary")
    assert row["journey"] == "(nothing due)" and row["due"] == 0


def test_unknown_sends_alone_keep_the_run_completed_and_say_so(svc: Services, fake: FakeSendGrid) -> None:
    from flows.sweep import tick
    from tasks.steps import using

    svc.ingest.apply([order_placed(i) for i in range(2)], "api", now=T0)
    fake.fail_next(500, count=10)  # ambiguous: it may have been queued, so it is never resent blindly
    with using(svc):
        state = tick(now=T0 + timedelta(minutes=1), return_state=True)
    assert state.is_completed()
    assert state.message == (
        "2 due · 2 unknown — 2 sends unknown (awaiting reconciliation): 500: Internal Server Error ×2"
    )


def test_shards_need_the_sweep_shard_deployment(svc: Services) -> None:
    """In-process (no Prefect server with the deployments) a fan-out cannot start: a clear error."""
    from flows.sweep import tick
    from tasks.steps import using

    svc.ingest.apply([order_placed(1)], "api", now=T0)
    with using(svc), pytest.raises(ValueError, match="sweep-shard/sweep-shard deployment"):
        tick(now=T0 + timedelta(minutes=1), shards=2)


def test_a_run_that_skipped_everything_due_says_why_in_its_state(svc: Services, fake: FakeSendGrid) -> None:
    """Every thank-you due goes to an address that unsubscribed from everything: nothing is sent, the run
    is clean, and its state message says what was skipped and why (not only "2 skipped")."""
    from flows.sweep import tick
    from tasks.steps import using

    svc.ingest.apply([order_placed(i) for i in range(2)], "api", now=T0)
    with svc.store.begin() as tx:
        for i in range(2):
            tx.suppressions.suppress(f"cliente{i}@example.com", "unsubscribed", "all", f"c{i}", "web")
    with using(svc):
        state = tick(now=T0 + timedelta(minutes=1), return_state=True)
    assert state.is_completed() and fake.messages == []
    assert state.message.startswith("2 due · 2 skipped — 2 skipped: thank_you "), state.message
    assert "suppressed" in state.message
