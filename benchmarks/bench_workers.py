"""Issue 12.4: one due set shared by 1, 2 and 4 process workers — throughput and the ratio to one worker.

The real deployment, as ``tests/deploy`` runs it: a Prefect server on its own PostgreSQL database, the work
pool, ``prefect deploy --all`` of the shipped ``prefect.yaml``, and process workers started with
``--limit 1`` (one flow run each at a time, so W workers are W sweeping processes). A migrated Posventa
database is seeded once with N customers whose thank-you is due (``bench_sweep.seed``: N =
``POSVENTA_BENCH_WORKERS_DUE``, default 20,000); before each round the enrollments are re-created and the
ledger emptied (``bench_sweep.reset_due``). Each round starts W workers (more are added, none stopped) and
runs the ``tick`` deployment with ``shards = W`` at a fixed instant inside the send window: the run sweeps
its own share and W - 1 ``sweep-shard`` runs sweep theirs (``flows/shards.py``). Email goes to the loopback
fake SendGrid in its own process, through the pass-through template (500 messages per request), so a
worker's time is the sweep itself: claims, the engine, rendering, the ledger.

Measured per round: the tick run's own start → end as the Prefect server recorded it (it includes the
children's start-up, which is part of what fanning out costs), steps per second = N / that, the ratio to
one worker, and how the due set was shared (enrollments advanced per process). Each round is checked:
N messages accepted by the fake, N ledger rows ``sent``, nothing left due.

Run: ``python -m benchmarks.bench_workers`` (``POSVENTA_BENCH_WORKERS_DUE=2000`` for a quick run).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from benchmarks.bench_sweep import (
    API_KEY,
    NOW,
    PASSTHROUGH_TEMPLATE,
    SECRET,
    fake_sendgrid_process,
    outcome_counts,
    reset_due,
    seed,
)

ROOT = Path(__file__).resolve().parents[1]
# The deployment stack of the end-to-end test (processes in their own sessions, logs, README commands).
sys.path.insert(0, str(ROOT / "tests" / "deploy"))

WORKER_COUNTS = (1, 2, 4)
DEFAULT_DUE = 20_000


def _due() -> int:
    raw = os.environ.get("POSVENTA_BENCH_WORKERS_DUE", "").strip()
    n = int(raw) if raw else DEFAULT_DUE
    if not 1 <= n <= 1_000_000:
        raise ValueError(f"POSVENTA_BENCH_WORKERS_DUE must be between 1 and 1000000, got {raw!r}")
    return n


def run(n: int | None = None, counts: tuple[int, ...] = WORKER_COUNTS) -> dict[str, Any]:
    from deploy_stack import (
        DEPLOY,
        POOL,
        WORKER,
        Stack,
        free_port,
        stack_environment,
        start_server,
        wait_healthy,
    )
    from prefect.client.orchestration import SyncPrefectClient

    from infra.db.testing import fresh_postgres_database
    from posventa.compile import compile_file

    n = n or _due()
    plan = compile_file(ROOT / "journeys" / "post_purchase.yaml")
    rows: list[dict[str, Any]] = []
    with ExitStack() as cleanup:
        tmp = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="bench-workers-")))
        prefect_db = cleanup.enter_context(fresh_postgres_database(migrate=False))
        url = cleanup.enter_context(fresh_postgres_database())
        fake = cleanup.enter_context(fake_sendgrid_process(lifetime_s=7200))
        started = time.perf_counter()
        seed(url, n, plan)
        print(f"  workers: seeded {n} due in {time.perf_counter() - started:.1f} s", flush=True)

        api = f"http://127.0.0.1:{free_port()}/api"
        env = stack_environment(
            tmp,
            api,
            url,
            fake.url,
            sendgrid_api_key=API_KEY,
            sendgrid_timeout="30",
            sendgrid_passthrough_template_id=PASSTHROUGH_TEMPLATE,
            secret_key=SECRET,
        )
        stack = Stack(tmp, env)
        cleanup.callback(stack.stop)
        start_server(stack, api, prefect_db)
        wait_healthy(stack, api, timeout=180)
        stack.run(POOL)
        stack.run(DEPLOY, timeout=180)
        client = cleanup.enter_context(SyncPrefectClient(api))
        tick = client.read_deployment_by_name("tick/tick")
        for name in ("tick/tick", "nightly/nightly"):  # only the rounds' runs, no scheduled ones
            client.pause_deployment(client.read_deployment_by_name(name).id)

        workers = 0
        for w in counts:
            while workers < w:
                workers += 1
                stack.start(f"worker-{workers}", f"{WORKER} --limit 1", PREFECT_WORKER_QUERY_SECONDS="1")
            stack.wait(f"{w} online workers", lambda w=w: _online(client) >= w, timeout=180)
            reset_due(url, plan)
            fake.reset()
            load = os.getloadavg()[0]
            pids = [p.pid for name, p in stack.procs.items() if name.startswith("worker-")]
            with CpuSampler(pids, url) as cpu:
                rows.append(_round(client, stack, tick.id, w, n, url, fake))
            rows[-1] |= cpu.figures() | {"load_before": round(load, 1)}
            r = rows[-1]
            print(
                f"  workers: {w} → {r['seconds']:.1f} s, {r['steps_per_s']:.0f} steps/s, "
                f"shares {r['shares']}, "
                f"CPU: flow runs {r['flow_runs_cpu_s']} s, PostgreSQL {r['postgres_cpu_s']} s; "
                f"load average before {r['load_before']}",
                flush=True,
            )
    base = rows[0]["steps_per_s"]
    for row in rows:
        row["ratio_to_one"] = round(row["steps_per_s"] / base, 2)
    return {"due": n, "cpus": os.cpu_count(), "rows": rows}


class CpuSampler:
    """CPU seconds used during a round by the flow-run processes (descendants of the worker processes)
    and by the PostgreSQL backends connected to the Posventa database, sampled from ``/proc`` every
    half second (a process's last half second before it exits is missed)."""

    def __init__(self, worker_pids: list[int], url: str) -> None:
        import threading

        self.worker_pids, self.url = worker_pids, url
        self.flows: dict[int, float] = {}
        self.postgres: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._tick = os.sysconf("SC_CLK_TCK")

    def __enter__(self) -> CpuSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def figures(self) -> dict[str, float]:
        return {
            "flow_runs_cpu_s": round(sum(self.flows.values()), 1),
            "postgres_cpu_s": round(sum(self.postgres.values()), 1),
        }

    def _cpu(self, pid: int) -> tuple[int, float] | None:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return int(fields[1]), (int(fields[11]) + int(fields[12])) / self._tick  # ppid, utime + stime

    def _loop(self) -> None:
        from sqlalchemy import create_engine, text
        from sqlalchemy.engine import make_url
        from sqlalchemy.pool import NullPool

        engine = create_engine(self.url, poolclass=NullPool)
        database = make_url(self.url).database
        query = text("SELECT pid FROM pg_stat_activity WHERE datname = :d AND pid <> pg_backend_pid()")
        try:
            while not self._stop.wait(0.5):
                stats = {int(p): self._cpu(int(p)) for p in os.listdir("/proc") if p.isdigit()}
                mine = set(self.worker_pids)
                changed = True
                while changed:  # the workers' descendants: bash, the flow-run processes
                    found = {pid for pid, st in stats.items() if st and st[0] in mine}
                    changed = not found <= mine
                    mine |= found
                for pid in mine - set(self.worker_pids):
                    if stats.get(pid):
                        self.flows[pid] = max(self.flows.get(pid, 0.0), stats[pid][1])  # type: ignore[index]
                with engine.connect() as c:
                    backends = [int(r[0]) for r in c.execute(query, {"d": database})]
                for pid in backends:
                    if stats.get(pid):
                        self.postgres[pid] = max(self.postgres.get(pid, 0.0), stats[pid][1])  # type: ignore[index]
        finally:
            engine.dispose()


def _online(client: Any) -> int:
    return sum(1 for w in client.read_workers_for_work_pool("posventa") if str(w.status).endswith("ONLINE"))


def _round(
    client: Any, stack: Any, deployment_id: Any, w: int, n: int, url: str, fake: Any
) -> dict[str, Any]:
    run = client.create_flow_run_from_deployment(
        deployment_id, parameters={"shards": w, "now": NOW.isoformat()}
    )

    def finished() -> Any:
        found = client.read_flow_run(run.id)
        return found if found.state and found.state.is_final() else None

    done = stack.wait(f"tick with shards={w}", finished, timeout=max(600.0, n / 10), every=0.5)
    if done.state_type != "COMPLETED":
        raise RuntimeError(f"the tick with shards={w} ended {done.state_type}: {done.state.message}")
    seconds = (done.end_time - done.start_time).total_seconds()
    outcome = outcome_counts(url)
    accepted = fake.stats()["accepted"]
    if outcome["ledger"].get("sent") != n or accepted != n:
        raise RuntimeError(
            f"shards={w}: expected {n} sent, ledger {outcome['ledger']}, fake accepted {accepted}"
        )
    return {
        "workers": w,
        "seconds": round(seconds, 1),
        "steps_per_s": round(n / seconds, 1),
        "shares": _shares(client, run.id, n),
        "message": done.state.message,
    }


def _shares(client: Any, parent_id: Any, n: int) -> list[int]:
    """Enrollments advanced per process: the parent's own share first (n minus the children's)."""
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        ArtifactFilterKey,
        FlowRunFilter,
        FlowRunFilterParentFlowRunId,
    )

    children = client.read_flow_runs(
        flow_run_filter=FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[parent_id]))
    )
    if not children:
        return [n]
    found = client.read_artifacts(
        artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[c.id for c in children]),
            key=ArtifactFilterKey(any_=["sweep-shard"]),
        )
    )
    theirs = [
        sum(r["n"] for r in json.loads(a.data) if r["outcome"] == "enrollments" and not r["reason"])
        for a in found
    ]
    return [n - sum(theirs), *sorted(theirs, reverse=True)]


def print_table(result: dict[str, Any]) -> None:
    print(f"one due set of {result['due']} thank-yous, {result['cpus']} CPUs")
    print(f"{'workers':>8} {'seconds':>9} {'steps/s':>9} {'× one':>7}  enrollments per process")
    for r in result["rows"]:
        figures = f"{r['workers']:>8} {r['seconds']:>9.1f} {r['steps_per_s']:>9.0f} {r['ratio_to_one']:>7.2f}"
        print(f"{figures}  {r['shares']}")


def main() -> int:
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    print_table(run())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
