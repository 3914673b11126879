"""The minimal loopback HTTP sink of the sweep benchmarks: it reads each request's body and answers
``202 Accepted`` with an ``X-Message-Id``, nothing else (no validation, nothing stored) — the cheapest
provider a sweep can talk to, so the measured process's cost is the sweep's own.

It runs in another process (as a remote SendGrid would) and counts, for the benchmark's check, the
requests and the personalizations they carried (occurrences of the ``posventa_key`` custom argument,
which every message has). Controlled over a pipe: ``stats`` / ``reset`` / ``stop``, through
:func:`server_process`, which ``bench_sweep``'s fake SendGrid child uses too.
"""

from __future__ import annotations

import itertools
import multiprocessing as mp
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
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


class ServerProcess:
    """A server running in a child process, asked for its figures over a pipe (``stats``, ``reset``,
    ``stop``); ``what`` names it in errors."""

    def __init__(self, conn: Connection, url: str, what: str) -> None:
        self._conn, self.url, self._what = conn, url, what

    def _ask(self, cmd: str) -> Any:
        self._conn.send(cmd)
        if not self._conn.poll(60):
            raise TimeoutError(f"{self._what} did not answer {cmd!r}")
        return self._conn.recv()

    def stats(self) -> dict[str, Any]:
        return dict(self._ask("stats"))

    def reset(self) -> None:
        self._ask("reset")


@contextmanager
def server_process(
    target: Callable[[Connection, float], None], lifetime_s: float, *, name: str, what: str
) -> Iterator[ServerProcess]:
    """Start ``target(conn, lifetime_s)`` in a spawned process (it sends its URL first, then answers the
    pipe's commands), yield its :class:`ServerProcess`, stop it (or terminate it) on the way out."""
    ctx = mp.get_context("spawn")
    mine, theirs = ctx.Pipe()
    proc = ctx.Process(target=target, args=(theirs, lifetime_s), name=name, daemon=True)
    proc.start()
    theirs.close()
    try:
        if not mine.poll(60):
            raise TimeoutError(f"{what} did not start within 60 s")
        yield ServerProcess(mine, mine.recv(), what)
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


def sink_process(lifetime_s: float) -> AbstractContextManager[ServerProcess]:
    return server_process(_serve, lifetime_s, name="bench-http-sink", what="the HTTP sink")
