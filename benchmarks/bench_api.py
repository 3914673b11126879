"""Events accepted per second into PostgreSQL through ``POST /v1/events``: one event per request vs
batches of 100.

Why: shops send events one by one from webhooks or in batches from back-office jobs; this shows what a
batch saves (HTTP round trips, auth, JSON framing, and in ``Ingest.apply`` (``app.ingest``) one set-based
statement per step for the whole batch: record, upsert customers and orders, enroll, wake) against what a
single event costs (its own transaction and a statement per step). Each phase also reports the SQL
statements the server sent per event (auth lookups included, BEGIN/COMMIT not).

The app runs under uvicorn on loopback in a **separate process** (so the client's CPU is not the
server's), on a fresh migrated PostgreSQL database (``POSVENTA_TEST_DATABASE_URL``'s server), with the
``post_purchase`` journey: every event is an ``order.placed`` for a new customer and enrolls them. The
client is ``httpx`` with keep-alive. Both phases are bounded in count and in time; rates count events
the server reported ``accepted``. Run: ``python -m benchmarks.bench_api [n_single] [n_batched]``.
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
JOURNEY_FILE = ROOT / "journeys" / "post_purchase.yaml"
# Recent events: the server's clock is the wall clock, and events older than a journey's stale_after
# (7 days) would enroll nobody.
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


def _event(run: str, i: int) -> dict[str, Any]:
    at = (T0 + timedelta(seconds=i)).isoformat()
    return {
        "id": f"bench-{run}-{i}",
        "type": "order.placed",
        "occurred_at": at,
        "customer": {
            "id": f"{run}-c{i}",
            "email": f"{run}-c{i}@example.com",
            "name": "Cliente",
            "locale": "es",
        },
        "order": {
            "id": f"{run}-o{i}",
            "total": 59.9,
            "currency": "EUR",
            "promised_delivery_date": "2026-03-05",
            "items": [{"sku": "TB-01", "name": "Cepillo", "quantity": 1, "price": 59.9}],
        },
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _check_postgres(url: str) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import OperationalError
    from sqlalchemy.pool import NullPool

    engine = create_engine(make_url(url).set(database="postgres"), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except OperationalError as exc:
        raise SystemExit(f"bench_api needs PostgreSQL (POSVENTA_TEST_DATABASE_URL): {exc.orig}") from None
    finally:
        engine.dispose()


@contextmanager
def _server(url: str) -> Iterator[str]:
    """``python -m benchmarks.bench_api --serve URL PORT`` in a child process; yields its base URL."""
    port = _free_port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    child = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.bench_api", "--serve", url, str(port)], cwd=ROOT, env=env
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if child.poll() is not None:
                raise RuntimeError(f"the API server exited with status {child.returncode}")
            try:
                if httpx.get(f"{base}/v1/event-types", timeout=1, trust_env=False).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the API server did not start within 60 s")
            time.sleep(0.1)
        yield base
    finally:
        child.terminate()
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def _serve(url: str, port: int) -> None:
    import uvicorn

    from infra.settings import make_settings
    from infra.wiring import build_services
    from posventa.compile import compile_file
    from web.app import create_app
    from web.limits import Limits

    settings = make_settings(
        database_url=url,
        journeys_dir=str(ROOT / "journeys"),
        outbox_dir=tempfile.mkdtemp(prefix="bench-api-outbox-"),
        secret_key="bench-" * 8,
    )
    services = build_services(settings, plans={"post_purchase": compile_file(JOURNEY_FILE)})
    app = create_app(
        services, settings=settings, limits=Limits(api_rate=1e9, api_burst=1e9)
    )  # measure the API, not the limiter
    sent = _count_round_trips(services.store.factory.kw["bind"])  # type: ignore[attr-defined]
    app.add_api_route("/bench/round-trips", lambda: {"statements": sent[0]}, methods=["GET"])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def _count_round_trips(engine: Any) -> list[int]:
    """SQL statements the server sends (auth lookups included; BEGIN and COMMIT not): a multi-row INSERT
    (insertmanyvalues) is one, a plain executemany is one per row — what the wire sees."""
    from sqlalchemy import event
    from sqlalchemy.engine.interfaces import ExecuteStyle

    sent = [0]

    def count(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        style = getattr(context, "execute_style", None)
        sent[0] += len(params) if style is ExecuteStyle.EXECUTEMANY else 1

    event.listen(engine, "before_cursor_execute", count)
    return sent


def _statements(client: httpx.Client) -> int:
    return int(client.get("/bench/round-trips").json()["statements"])


def _phase(client: httpx.Client, bodies: Iterator[tuple[int, Any]], max_seconds: float) -> dict[str, Any]:
    accepted = requests = 0
    statements = _statements(client)
    latencies: list[float] = []
    started = time.perf_counter()
    for expected, body in bodies:
        t = time.perf_counter()
        r = client.post("/v1/events", json=body)
        latencies.append(time.perf_counter() - t)
        if r.status_code != 200 or r.json()["accepted"] != expected:
            raise RuntimeError(f"unexpected answer {r.status_code}: {r.text[:300]}")
        accepted += expected
        requests += 1
        if time.perf_counter() - started > max_seconds:
            break
    seconds = time.perf_counter() - started
    statements = _statements(client) - statements
    return {
        "statements_per_event": round(statements / max(accepted, 1), 2),
        "events": accepted,
        "requests": requests,
        "seconds": round(seconds, 2),
        "events_per_s": round(accepted / seconds, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 1),
    }


def run(
    n_single: int = 300, n_batched: int = 3000, batch: int = 100, max_seconds: float = 30.0
) -> dict[str, Any]:
    """Post ``n_single`` events one per request, then ``n_batched`` in batches of ``batch`` (each phase stops
    early after ``max_seconds``); return both rates and the ratio."""
    if n_single < 1 or n_batched < batch or batch < 1:
        raise ValueError("need n_single >= 1 and n_batched >= batch >= 1")
    from infra.db.session import make_engine, session_factory
    from infra.db.store import SqlStore
    from infra.db.testing import fresh_postgres_database, postgres_url

    _check_postgres(postgres_url())
    with fresh_postgres_database() as url:
        engine = make_engine(url)
        with SqlStore(session_factory(engine)).begin() as tx:
            key = tx.api_keys.create("bench")
        engine.dispose()
        with (
            _server(url) as base,
            httpx.Client(
                base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=60, trust_env=False
            ) as client,
        ):
            _phase(client, iter([(1, _event("warm", i)) for i in range(20)]), max_seconds)
            single = _phase(client, ((1, _event("single", i)) for i in range(n_single)), max_seconds)
            batched = _phase(
                client,
                (
                    (batch, {"events": [_event("batch", i + j) for j in range(batch)]})
                    for i in range(0, n_batched - batch + 1, batch)
                ),
                max_seconds,
            )
    result = {
        "single_events_per_s": single["events_per_s"],
        "single_events": single["events"],
        "single_p50_ms": single["p50_ms"],
        "batched_events_per_s": batched["events_per_s"],
        "batched_events": batched["events"],
        "batch_size": batch,
        "batched_p50_ms_per_request": batched["p50_ms"],
        "ratio": round(batched["events_per_s"] / single["events_per_s"], 2),
        "single_statements_per_event": single["statements_per_event"],
        "batched_statements_per_event": batched["statements_per_event"],
        "load_average_1m": round(os.getloadavg()[0], 2),
    }
    print(
        f"api: single {single['events']} events in {single['requests']} requests: "
        f"{single['events_per_s']:.0f} events/s (p50 {single['p50_ms']} ms/request, "
        f"{single['statements_per_event']} SQL statements/event)"
    )
    print(
        f"api: batched {batched['events']} events in {batched['requests']} requests of {batch}: "
        f"{batched['events_per_s']:.0f} events/s (p50 {batched['p50_ms']} ms/request, "
        f"{batched['statements_per_event']} SQL statements/event)"
    )
    load = result["load_average_1m"]
    print(f"api: batches of {batch} / single = {result['ratio']:.2f}x (load average {load})")
    return result


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--serve":
        _serve(sys.argv[2], int(sys.argv[3]))
    else:
        args = [int(a) for a in sys.argv[1:3]]
        run(*args)
