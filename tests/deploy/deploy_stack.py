"""A real Prefect deployment stack for the end-to-end test: server, work pool, deployments, worker.

Every process is started in its own session so that it and its children (the worker's flow-run
processes, the server's services) are stopped together, also when a test fails half-way. Their output
goes to log files whose tails are attached to every assertion message.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from infra.email.fake_sendgrid import FakeSendGrid

ROOT = Path(__file__).resolve().parents[2]
#: The README's commands say ``.venv/bin/…``; here they run with the interpreter running the tests.
BIN = Path(sys.executable).parent

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def clean_environment() -> dict[str, str]:
    """The test process's environment without its Prefect and Posventa settings (the stack sets its own)."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "POSVENTA_"))}


@dataclass
class Stack:
    """Processes and commands of one deployment, all with the same environment and working directory."""

    tmp: Path
    env: dict[str, str]
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    stopped: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def command(self, readme_line: str) -> str:
        return re.sub(r"(?<![\w/.])\.venv/bin/", f"{BIN}/", readme_line)

    def run(
        self, readme_line: str, *, check: bool = True, timeout: float = 90
    ) -> subprocess.CompletedProcess[str]:
        """Run a README command line through bash from the repository root (so ``$PWD`` is the root)."""
        done = subprocess.run(
            ["bash", "-c", self.command(readme_line)],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"`{readme_line}` exited {done.returncode}\n{done.stdout}\n{done.stderr}{self.logs()}"
            )
        return done

    def start(self, name: str, readme_line: str, **extra_env: str) -> None:
        log = (self.tmp / f"{name}.log").open("wb")
        self.procs[name] = subprocess.Popen(
            ["bash", "-c", f"exec {self.command(readme_line)}"],
            cwd=ROOT,
            env={**self.env, **extra_env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

    def stop(self, *names: str) -> None:
        """SIGTERM each process group (those of ``names``, else all), then SIGKILL what is left after 15 s."""
        procs = [self.procs[n] for n in names] if names else list(self.procs.values())
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for proc in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            # The leader may be gone while a child (a flow run) still lives in its group.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        for name in names:  # stopped on purpose: no longer watched by wait()
            self.stopped[name] = self.procs.pop(name)

    def logs(self, lines: int = 40) -> str:
        out = []
        for name in self.procs:
            path = self.tmp / f"{name}.log"
            text = path.read_text(errors="replace") if path.exists() else ""
            tail = "\n".join(text.splitlines()[-lines:])
            out.append(f"\n--- {name} log (last {lines} lines) ---\n{tail}")
        return "".join(out)

    def wait(self, what: str, probe: Callable[[], T | None], timeout: float, every: float = 1.0) -> T:
        """Poll ``probe`` until it returns something truthy; fail with the logs after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise AssertionError(
                        f"{name} exited ({proc.returncode}) while waiting for {what}{self.logs()}"
                    )
            result = probe()
            if result:
                return result
            if time.monotonic() > deadline:
                raise AssertionError(f"no {what} after {timeout:.0f} s{self.logs()}")
            time.sleep(every)


def stack_environment(
    tmp: Path, api: str, database_url: str, sendgrid_url: str, **posventa: str
) -> dict[str, str]:
    """What every process of a stack shares: its own Prefect home and API, Posventa's database and the
    loopback SendGrid; ``posventa`` adds or overrides ``POSVENTA_<NAME>`` settings."""
    return (
        clean_environment()
        | {
            "PREFECT_HOME": str(tmp / "prefect-home"),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_API_URL": api,
            "POSVENTA_PREFECT_API_URL": api,
            "POSVENTA_DATABASE_URL": database_url,
            "POSVENTA_SENDGRID_API_KEY": API_KEY,
            "POSVENTA_SENDGRID_HOST": sendgrid_url,
            "POSVENTA_SECRET_KEY": "deploy-test-" + "k" * 32,
            "POSVENTA_OUTBOX_DIR": str(tmp / "outbox"),
        }
        | {f"POSVENTA_{name.upper()}": value for name, value in posventa.items()}
    )


def start_server(stack: Stack, api: str, prefect_database_url: str, **env: str) -> None:
    """``prefect server start`` on its own PostgreSQL database (asyncpg), at ``api``'s port."""
    from sqlalchemy.engine import make_url

    server_db = make_url(prefect_database_url).set(drivername="postgresql+asyncpg")
    port = api.rsplit(":", 1)[1].split("/")[0]
    stack.start(
        "server",
        f".venv/bin/prefect server start --host 127.0.0.1 --port {port}",
        PREFECT_API_DATABASE_CONNECTION_URL=server_db.render_as_string(hide_password=False),
        **env,
    )


def wait_healthy(stack: Stack, api: str, timeout: float = 90) -> None:
    import httpx

    def up() -> bool:
        try:
            return httpx.get(f"{api}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    stack.wait("healthy Prefect server", up, timeout)


def created_run_id(output: str) -> str:
    """The flow run id printed by ``prefect deployment run``."""
    found = re.search(r"UUID: ([0-9a-f-]{36})", output)
    assert found, f"no flow run id in:\n{output}"
    return found.group(1)


# The README's commands, run verbatim (`.venv/bin/` is the interpreter running the tests); the test
# module checks that the README still says exactly these.
MIGRATE = ".venv/bin/posventa db upgrade"
INGEST = ".venv/bin/posventa ingest events.jsonl"
POOL = ".venv/bin/prefect work-pool create posventa --type process"
DEPLOY = "POSVENTA_HOME=$PWD .venv/bin/prefect deploy --all"
WORKER = ".venv/bin/prefect worker start --pool posventa"

SERVER_START_TIMEOUT = 90  # about 6 s on an idle machine, 15–30 s on a busy one
API_KEY = "SG.deploy-test"


@dataclass
class Deployed:
    stack: Stack
    api_url: str
    client: Any  # prefect.client.orchestration.SyncPrefectClient
    fake: FakeSendGrid

    def ingest(self, *events: dict[str, Any]) -> None:
        path = self.stack.tmp / "events.jsonl"
        path.write_text("".join(json.dumps(e) + "\n" for e in events))
        self.stack.run(INGEST.replace("events.jsonl", str(path)))

    def sent_to(self, email: str) -> int:
        return sum(1 for m in self.fake.messages if m.to == email)

    def deployment(self, name: str) -> Any:
        return self.client.read_deployment_by_name(name)

    def runs(self, deployment: str, *states: str) -> list[Any]:
        from prefect.client.schemas.filters import (
            DeploymentFilter,
            DeploymentFilterId,
            FlowRunFilter,
            FlowRunFilterState,
            FlowRunFilterStateType,
        )
        from prefect.client.schemas.objects import StateType
        from prefect.client.schemas.sorting import FlowRunSort

        run_filter = None
        if states:
            kinds = FlowRunFilterStateType(any_=[StateType(s) for s in states])
            run_filter = FlowRunFilter(state=FlowRunFilterState(type=kinds))
        runs: list[Any] = self.client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[self.deployment(deployment).id])),
            flow_run_filter=run_filter,
            sort=FlowRunSort.EXPECTED_START_TIME_ASC,
        )
        return runs

    def finished(self, run_id: str, timeout: float = 120) -> Any:
        """Wait for a flow run to reach a final state; return it."""

        def probe() -> Any:
            run = self.client.read_flow_run(run_id)
            return run if run.state and run.state.is_final() else None

        return self.stack.wait(f"final state for flow run {run_id}", probe, timeout)

    def logs(self, run_id: Any) -> list[tuple[int, str]]:
        """A flow run's log lines as the server stored them: (level, message)."""
        from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

        found = self.client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id])))
        return [(log.level, log.message) for log in found]

    def describe(self, run: Any) -> str:
        return (
            f"run {run.name!r}: {run.state_type} {run.state.message if run.state else ''}{self.stack.logs()}"
        )


def order_placed(customer: str, email: str, locale: str = "es") -> dict[str, Any]:
    """An order placed now, delivery promised in four days: its thank-you is due at once."""
    now = datetime.now(UTC)
    return {
        "id": f"evt-{customer}",
        "type": "order.placed",
        "occurred_at": now.isoformat(),
        "customer": {
            "id": customer,
            "email": email,
            "name": customer,
            "locale": locale,
            "timezone": "Europe/Madrid",
        },
        "order": {
            "id": f"o-{customer}",
            "total": 59.9,
            "currency": "EUR",
            "promised_delivery_date": (now + timedelta(days=4)).date().isoformat(),
            "items": [{"sku": "CEP-01", "name": "Cepillo", "quantity": 1, "price": 59.9}],
        },
    }


class Receiver:
    """A loopback HTTP endpoint that records the JSON bodies POSTed to it (a notification target)."""

    def __init__(self) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        bodies: list[dict[str, Any]] = []
        self.bodies = bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                bodies.append(json.loads(raw or b"{}"))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/notify"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
