"""End to end on a real Prefect server: the shipped ``prefect.yaml`` deployed with the README's commands,
the scheduler creating runs, a process worker executing them, email leaving once.

This is the test that fails on a dependency set whose scheduler cannot write runs (Prefect 3.8.8 with
SQLAlchemy 2.1: ``Can't evaluate bulk DML statement`` every loop, no run is ever scheduled).

The tick's shipped interval (5 minutes) is too long for a test, so after checking what was deployed the
last test shortens it on the server with ``prefect deployment schedule create … --replace`` — what an
operator would do. The alternative, an interval read from an environment variable in ``prefect.yaml``,
would make that variable mandatory for every deploy: Prefect's ``{{ $VAR }}`` templating has no default.
The tests run in file order and share one deployment; the schedule change comes last.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import yaml
from deploy_stack import DEPLOY, INGEST, MIGRATE, POOL, ROOT, WORKER, Deployed, created_run_id, order_placed

pytestmark = [pytest.mark.prefect, pytest.mark.postgres, pytest.mark.timeout(240)]

RUN_CUSTOMER = ".venv/bin/prefect deployment run customer/customer --param customer=c-42"
SHORTEN_TICK = ".venv/bin/prefect deployment schedule create tick/tick --interval 10 --replace -y"
STATUS = ".venv/bin/posventa status"
DOCTOR = ".venv/bin/posventa doctor"

SHIPPED = {d["name"]: d for d in yaml.safe_load((ROOT / "prefect.yaml").read_text())["deployments"]}


def test_the_readme_says_what_this_test_runs() -> None:
    readme = (ROOT / "README.md").read_text()
    for line in (MIGRATE, INGEST, POOL, DEPLOY, WORKER, RUN_CUSTOMER):
        assert line in readme, f"README no longer documents `{line}`"


def test_deploy_registers_the_shipped_deployments(deployed: Deployed) -> None:
    tick = deployed.deployment("tick/tick")
    [interval] = tick.schedules
    assert interval.active
    assert interval.schedule.interval == timedelta(seconds=SHIPPED["tick"]["schedules"][0]["interval"])
    assert tick.pull_steps == [
        {"prefect.deployments.steps.set_working_directory": {"directory": str(ROOT)}}
    ], "POSVENTA_HOME must be resolved at deploy time"

    nightly = deployed.deployment("nightly/nightly")
    [cron] = nightly.schedules
    assert (cron.schedule.cron, cron.schedule.timezone) == ("30 2 * * *", "Europe/Madrid")

    assert tick.parameters == nightly.parameters == {"shards": 1}  # one process unless ops raise it
    shard = deployed.deployment("sweep-shard/sweep-shard")
    assert shard.schedules == [] and shard.parameter_openapi_schema["required"] == ["now", "shard", "shards"]

    customer = deployed.deployment("customer/customer")
    assert customer.schedules == [] and customer.parameters == {}
    assert customer.parameter_openapi_schema["required"] == ["customer"]
    for d in (tick, nightly, shard, customer):
        assert d.work_pool_name == "posventa"


def test_the_scheduler_creates_runs_for_tick_and_nightly(deployed: Deployed) -> None:
    """The runs are in the future (every 5 minutes; 02:30 in Madrid): what matters is that they exist."""
    ticks = deployed.stack.wait(
        "scheduled tick runs (is the server's scheduler failing?)",
        lambda: [r for r in deployed.runs("tick/tick", "SCHEDULED") if r.auto_scheduled],
        timeout=60,
    )
    assert len(ticks) >= 3
    gaps = {
        (b.expected_start_time - a.expected_start_time).total_seconds() for a, b in itertools.pairwise(ticks)
    }
    assert gaps == {300.0}

    nightlies = deployed.stack.wait(
        "scheduled nightly runs", lambda: deployed.runs("nightly/nightly", "SCHEDULED"), timeout=30
    )
    madrid = [r.expected_start_time.astimezone(ZoneInfo("Europe/Madrid")) for r in nightlies]
    assert {(t.hour, t.minute) for t in madrid} == {(2, 30)}, madrid


def test_the_customer_deployment_runs_with_the_readme_command(deployed: Deployed) -> None:
    deployed.ingest(order_placed("c-42", "ana@example.com"))
    run = deployed.finished(created_run_id(deployed.stack.run(RUN_CUSTOMER).stdout))
    assert run.state_type == "COMPLETED", deployed.describe(run)
    assert run.name == "customer c-42 · all journeys"
    assert all(n == 1 for n in Counter(m.to for m in deployed.fake.messages).values())


def test_the_customer_deployment_refuses_a_run_without_a_customer(deployed: Deployed) -> None:
    """A blank id would sweep other customers early (``force`` without a filter): the server refuses it."""
    before = len(deployed.runs("customer/customer"))
    for line in (".venv/bin/prefect deployment run customer/customer", RUN_CUSTOMER.replace("c-42", '" "')):
        done = deployed.stack.run(line, check=False)
        assert done.returncode != 0, done.stdout
        assert "customer" in done.stdout + done.stderr
    assert len(deployed.runs("customer/customer")) == before


def test_a_kubernetes_work_pool_accepts_the_shipped_base_job_template(deployed: Deployed) -> None:
    """The server validates the template (placeholders declared, defaults valid against the variables)."""
    template = ROOT / "infra" / "deploy" / "k8s" / "base-job-template.json"
    deployed.stack.run(
        f".venv/bin/prefect work-pool create posventa-k8s --type kubernetes --base-job-template {template}"
    )
    pool = deployed.client.read_work_pool("posventa-k8s")
    assert pool.type == "kubernetes"
    assert pool.base_job_template == json.loads(template.read_text())


def test_a_scheduled_tick_completes_on_the_worker_and_sends_once(deployed: Deployed) -> None:
    deployed.ingest(order_placed("c-43", "ben@example.com", locale="en"))
    deployed.stack.run(SHORTEN_TICK)
    completed = deployed.stack.wait(
        "two completed scheduled tick runs",
        lambda: (
            (runs := [r for r in deployed.runs("tick/tick", "COMPLETED") if r.auto_scheduled])[1:] and runs
        ),
        timeout=150,
    )
    assert {r.name for r in completed} == {"tick · all journeys"}
    assert deployed.sent_to("ben@example.com") == 1, deployed.stack.logs()
    assert all(n == 1 for n in Counter(m.to for m in deployed.fake.messages).values())
    failed = deployed.runs("tick/tick", "FAILED", "CRASHED")
    assert not failed, deployed.describe(failed[0])


def test_status_and_doctor_see_a_healthy_scheduler(deployed: Deployed) -> None:
    """After the scheduled ticks above: the last completed tick is within twice its (shortened) period."""
    done = deployed.stack.run(STATUS + " --format json", check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["healthy"] and report["backlog"]["due"] == 0
    tick, nightly = report["prefect"]["tick"], report["prefect"]["nightly"]
    assert (tick["schedule_active"], tick["period_seconds"]) == (True, 10)
    assert tick["seconds_since"] <= tick["alarm_after_seconds"] == 70  # 10 s + the minute of slack
    assert (nightly["period_seconds"], nightly["last_completed_at"]) == (86400, None)  # none yet: not late

    doctor = deployed.stack.run(DOCTOR, check=False)
    assert doctor.returncode == 0 and "✓ tick: last completed" in doctor.stdout, doctor.stdout

    # The same server seen five minutes from now: no tick completed within 70 s — stalled.
    from ops.status import scheduler_checks

    lines, _ = scheduler_checks(deployed.api_url, datetime.now(UTC) + timedelta(minutes=5))
    assert [line.problem for line in lines if line.ok is False] == ["tick_stalled"]
