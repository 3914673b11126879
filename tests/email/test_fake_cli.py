"""``posventa fake-sendgrid``: the fake SendGrid as a command for trying the production path locally —
its help, and a real run on loopback that the real ``sendgrid`` client sends to."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path

from infra.email.message import OutgoingEmail
from infra.email.sendgrid_sender import SendGridSender

ROOT = Path(__file__).resolve().parents[2]
POSVENTA = [sys.executable, "-m", "posventa"]


def _posventa(*argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "POSVENTA_LANG": "en"}
    return subprocess.run([*POSVENTA, *argv], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def test_help_says_what_it_is_and_how_to_point_posventa_at_it() -> None:
    done = _posventa("fake-sendgrid", "--help")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "SendGrid-compatible fake server on loopback" in out
    assert "--port PORT        port to listen on (3030)" in out
    assert "the API key clients must send (POSVENTA_SENDGRID_API_KEY)" in out
    assert "POSVENTA_SENDGRID_HOST=http://127.0.0.1:3030 POSVENTA_SENDGRID_API_KEY=SG.fake" in out
    assert "GET /fake/messages" in out
    es = " ".join(_posventa("--lang", "es", "fake-sendgrid", "--help").stdout.split())
    assert "puerto en el que escucha (3030)" in es and "Nada sale de la máquina" in es


def test_it_runs_takes_a_real_send_and_stops_on_sigterm(make_message: Callable[..., OutgoingEmail]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "POSVENTA_LANG": "en", "PYTHONUNBUFFERED": "1"}
    argv = [*POSVENTA, "fake-sendgrid", "--port", str(port), "--api-key", "SG.local"]
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(4)]
        url = f"http://127.0.0.1:{port}"
        assert lines[0].startswith(f"fake SendGrid on {url} ")
        assert lines[1].strip() == (
            f"point Posventa at it: POSVENTA_SENDGRID_HOST={url} POSVENTA_SENDGRID_API_KEY=SG.local"
        )
        assert lines[2].startswith("POSVENTA_SENDGRID_WEBHOOK_PUBLIC_KEY=")
        sender = SendGridSender(api_key="SG.local", from_email="tienda@posventa.example", host=url, timeout=5)
        [result] = sender.send([make_message(1)])
        assert result.outcome == "sent", result
        with urllib.request.urlopen(f"{url}/fake/messages", timeout=5) as answer:  # loopback only
            [stored] = json.loads(answer.read())
        assert stored["to"] == "cliente1@example.com"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
