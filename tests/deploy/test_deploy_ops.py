"""What ops see and use on a real Prefect server: the shipped automations (applied with ``posventa
automations``), a run with rejected sends turning Failed and notifying, and a tick fanned out over three
process workers sharing one due set.

The stack is the session's (``conftest.py``), shared with ``test_deployment.py``. The tick's schedule is
paused while these tests run, so no scheduled tick takes part of a due set or a fault meant for a run
started here; it is resumed afterwards.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from deploy_stack import ROOT, WORKER, Deployed, Receiver, created_run_id, order_placed

pytestmark = [pytest.mark.prefect, pytest.mark.postgres, pytest.mark.timeout(300)]

APPLY = ".venv/bin/posventa automations --notify custom-webhook/ops"
FAN_OUT = ".venv/bin/prefect deployment run tick/tick --param shards=3"
STATUS = ".venv/bin/posventa status --format json"
INVALID_KEY = "401: The provided authorization grant is invalid, expired, or revoked"
FANNED_OUT_CUSTOMERS = 600


def test_the_readme_documents_these_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    for line in (
        ".venv/bin/posventa automations --notify ",
        STATUS.split(" --")[0],
        "run nightly/nightly --param shards=",
    ):
        assert line in readme, f"README no longer documents `{line}`"


def test_the_shipped_automations_expect_the_events_the_flows_emit() -> None:
    """Offline: Prefect's own model accepts the file, and every ``posventa.*`` event it waits for is one
    that ``flows/outcome.py`` emits (a renamed event would silence the notification)."""
    import re

    from ops.automations import FILE, definitions

    emitted = set(re.findall(r'"(posventa\.[a-z.]+)"', (ROOT / "flows" / "outcome.py").read_text()))
    expected = {e for a in definitions(FILE, None) for e in a.trigger.expect if e.startswith("posventa.")}
    assert expected == {"posventa.sends.failed", "posventa.enrollments.failed"}
    assert expected <= emitted


@pytest.fixture(scope="module")
def ops(deployed: Deployed) -> Iterator[Deployed]:
    tick = deployed.deployment("tick/tick")
    deployed.client.pause_deployment(tick.id)
    try:
        yield deployed
    finally:
        deployed.client.resume_deployment(tick.id)


@pytest.fixture(scope="module")
def receiver(ops: Deployed) -> Iterator[Receiver]:
    """A notification block of Prefect's own ``custom-webhook`` type, posting to a loopback endpoint."""
    from prefect.blocks.notifications import CustomWebhookNotificationBlock
    from prefect.settings import PREFECT_API_URL, temporary_settings

    endpoint = Receiver()
    block = CustomWebhookNotificationBlock(
        name="ops", url=endpoint.url, json_data={"subject": "{{subject}}", "body": "{{body}}"}
    )
    with temporary_settings({PREFECT_API_URL: ops.api_url}):
        block.save("ops", overwrite=True)
    yield endpoint
    endpoint.close()


def test_posventa_automations_applies_the_shipped_file_once(ops: Deployed, receiver: Receiver) -> None:
    first = ops.stack.run(APPLY).stdout
    assert first.splitlines() == [
        "created  posventa: run not clean",
        "created  posventa: no tick completed for 30 minutes",
    ]
    again = ops.stack.run(APPLY).stdout  # after editing the file: updated in place, no duplicates
    assert again.splitlines() == [
        "updated  posventa: run not clean",
        "updated  posventa: no tick completed for 30 minutes",
    ]

    block = ops.client.read_block_document_by_name("ops", "custom-webhook")
    [failures] = ops.client.read_automations_by_name("posventa: run not clean")
    trigger = failures.trigger
    assert (trigger.posture, trigger.threshold, trigger.within.total_seconds()) == ("Reactive", 1, 0)
    assert trigger.expect == {"posventa.sends.failed", "posventa.enrollments.failed"}
    assert [a.block_document_id for a in failures.actions] == [block.id]

    [stalled] = ops.client.read_automations_by_name("posventa: no tick completed for 30 minutes")
    trigger = stalled.trigger
    assert (trigger.posture, trigger.threshold, trigger.within.total_seconds()) == ("Proactive", 1, 1800)
    assert trigger.expect == {"prefect.flow-run.Completed"}
    related = trigger.match_related
    assert dict(related.root if hasattr(related, "root") else related) == {
        "prefect.resource.role": "deployment",
        "prefect.resource.name": "tick",
    }


def test_a_run_with_rejected_sends_fails_and_notifies(ops: Deployed, receiver: Receiver) -> None:
    ops.ingest(order_placed("c-50", "eva@example.com"))
    ops.fake.fail_next(401)  # a revoked key, for this one request
    line = ".venv/bin/prefect deployment run customer/customer --param customer=c-50"
    run = ops.finished(created_run_id(ops.stack.run(line).stdout))
    assert run.state_type == "FAILED", ops.describe(run)
    assert run.state.message == f"1 send failed: {INVALID_KEY} ×1 — 1 advanced · 1 failed"
    assert ops.sent_to("eva@example.com") == 0

    def notified() -> dict[str, Any] | None:
        return next((b for b in receiver.bodies if "customer c-50" in b.get("subject", "")), None)

    note = ops.stack.wait("the automation's notification", notified, timeout=90)
    assert note["subject"] == "Posventa: customer c-50 · all journeys is not clean"
    assert f"1 send failed: {INVALID_KEY} ×1" in note["body"]
    # The state says why; the log has a WARNING per reason, and no ERROR line or traceback. Logs reach the
    # server in batches: wait for the run's last line ("Finished in state …"; the engine's traceback, when
    # there was one, came right after it, from the same process).

    def finished() -> list[tuple[int, str]] | None:
        found = ops.logs(run.id)
        return found if any(line.startswith("Finished in state") for _, line in found) else None

    ops.stack.wait("the run's logs", finished, timeout=90)
    time.sleep(3)  # a batch sent after that one would hold the traceback
    logs = ops.logs(run.id)
    assert any(f"send failed ×1: {INVALID_KEY}" in line for _, line in logs), logs
    assert [line for level, line in logs if level >= 40 or "Traceback" in line] == [], logs


def test_a_tick_fanned_out_over_three_workers_sends_every_step_once(ops: Deployed) -> None:
    extra = ["worker-2", "worker-3"]
    for name in extra:
        ops.stack.start(name, WORKER, PREFECT_WORKER_QUERY_SECONDS="2")
    try:
        _fan_out(ops)
    finally:
        ops.stack.stop(*extra)  # the tests after these run with the README's single worker


def _fan_out(ops: Deployed) -> None:
    emails = [f"fan{i}@example.com" for i in range(FANNED_OUT_CUSTOMERS)]
    ops.ingest(*(order_placed(f"fan-{i}", email) for i, email in enumerate(emails)))
    # Every request slow (SendGrid's own latency): one process alone would need about 75 s (600 requests,
    # 8 in flight, 1 s each), well over the 15–40 s a flow run takes to start on a busy 2-core machine, so
    # the shards' runs arrive while there is work left. (0.3 s was not enough once the sweep's database
    # path became set-based: the parent finished before the shards started.)
    ops.fake.slow_next(1.0, count=FANNED_OUT_CUSTOMERS)

    parent = ops.finished(created_run_id(ops.stack.run(FAN_OUT).stdout), timeout=240)
    assert parent.state_type == "COMPLETED", ops.describe(parent)
    n = FANNED_OUT_CUSTOMERS
    assert parent.state.message == f"{n} due · {n} sent"

    children = ops.runs("sweep-shard/sweep-shard")
    assert sorted(c.name for c in children) == ["sweep-shard 2/3 · tick", "sweep-shard 3/3 · tick"]
    assert {c.state_type for c in children} == {"COMPLETED"}, [ops.describe(c) for c in children]
    # The shards ran at the same time as the parent's own share, and took part of the work.
    assert all(c.start_time < parent.end_time for c in children)
    shares = [_done(ops, c.id) for c in children]
    assert all(shares), f"a shard found nothing left to do: {shares} of {n}"

    sent = Counter(m.to for m in ops.fake.messages)
    assert [sent[e] for e in emails] == [1] * n
    assert all(count == 1 for count in sent.values())
    [row] = _summary(ops, parent.id)
    assert (row["due"], row["sent"], row["failed"]) == (n, n, 0)
    status = json.loads(ops.stack.run(STATUS).stdout)
    assert status["backlog"]["due"] == 0, status


def _artifact(ops: Deployed, run_id: Any, key: str) -> list[dict[str, Any]]:
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey

    [found] = ops.client.read_artifacts(
        artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[run_id]), key=ArtifactFilterKey(any_=[key])
        )
    )
    rows: list[dict[str, Any]] = json.loads(found.data)
    return rows


def _done(ops: Deployed, run_id: Any) -> int:
    """Enrollments a shard advanced plus messages it sent (its artifact's records)."""
    records = _artifact(ops, run_id, "sweep-shard")
    return sum(r["n"] for r in records if r["outcome"] in ("enrollments", "sent") and not r["reason"])


def _summary(ops: Deployed, run_id: Any) -> list[dict[str, Any]]:
    return [r for r in _artifact(ops, run_id, "tick-summary") if r["step"] == "thank_you"]
