"""The minimal loopback HTTP sink of the sweep benchmarks: it reads each request's body and answers
``202 Accepted`` with an ``X-Message-Id``, nothing else (no validation, nothing stored) — the cheapest
provider a sweep can talk to, so the measured process's cost is the sweep's own.

It runs in another process (as a remote SendGrid would) and counts, for the benchmark's check, the
requests and the personalizations they carried (occurrences of the ``posventa_key`` custom argument,
which every message has). Controlled over a pipe: ``stats`` / ``reset`` / ``stop``; the same interface
as ``bench_sweep.FakeProcess``.
"""

from __future__ import annotations

import itertools
import multiprocessing as mp
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from multiprocessing.connection import Connection
from typing import Any

_KEY = b'"posventa_key"'


def _serve(conn: Connection, lifetime_s: float) -> None:
    lock = threading.Lock()
    counts = {"requests": 0, "accepted": 0}
    ids = itertools.count(1)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with lock:
                counts["requests"] += 1
                counts["accepted"] += body.count(_KEY)
                mid = f"sink-{next(ids)}"
            self.send_response(202)
            self.send_header("X-Message-Id", mid)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="sink", daemon=True).start()
    conn.send(f"http://127.0.0.1:{server.server_address[1]}")
    deadline = time.monotonic() + lifetime_s
    try:
        while time.monotonic() < deadline:
            try:
                if not conn.poll(1.0):
                    continue
                cmd = conn.recv()
            except (EOFError, OSError):
                return  # the parent is gone
            if cmd == "stats":
                with lock:
                    conn.send({**counts, "statuses": {202: counts["requests"]}})
            elif cmd == "reset":
                with lock:
                    counts.update(requests=0, accepted=0)
                conn.send("ok")
            elif cmd == "stop":
                conn.send("ok")
                return
    finally:
        server.shutdown()


class SinkProcess:
    def __init__(self, conn: Connection, url: str) -> None:
        self._conn, self.url = conn, url

    def _ask(self, cmd: str) -> Any:
        self._conn.send(cmd)
        if not self._conn.poll(60):
            raise TimeoutError(f"the HTTP sink did not answer {cmd!r}")
        return self._conn.recv()

    def stats(self) -> dict[str, Any]:
        return dict(self._ask("stats"))

    def reset(self) -> None:
        self._ask("reset")


@contextmanager
def sink_process(lifetime_s: float) -> Iterator[SinkProcess]:
    ctx = mp.get_context("spawn")
    mine, theirs = ctx.Pipe()
    proc = ctx.Process(target=_serve, args=(theirs, lifetime_s), name="bench-http-sink", daemon=True)
    proc.start()
    theirs.close()
    try:
        if not mine.poll(60):
            raise TimeoutError("the HTTP sink did not start within 60 s")
        yield SinkProcess(mine, mine.recv())
    finally:
        try:
            mine.send("stop")
            mine.poll(10)
        except (OSError, EOFError):
            pass
        proc.join(10)
        if proc.is_alive():
            proc.terminate()
            proc.join(5)
