"""``serve`` (``posventa serve``) as a process: settings from the environment, redacted access log."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from web_builders import JOURNEYS, REPO, wait_until_serving

from infra.settings import make_settings
from web.app import create_app

pytestmark = pytest.mark.postgres


def test_docs_need_no_database() -> None:
    """Creating the app (and rendering its OpenAPI) connects to nothing: services are built on first use."""
    app = create_app(settings=make_settings(database_url="postgresql+psycopg2://nobody@127.0.0.1:1/none"))
    client = TestClient(app)
    assert client.get("/openapi.json").status_code == 200
    assert client.get("/v1/event-types").status_code == 200


def test_serve_runs_the_app_from_the_environment(db_url: str, tmp_path: Path) -> None:
    journeys = tmp_path / "journeys"  # post_purchase only: journeys being written elsewhere may not compile
    journeys.mkdir()
    shutil.copy(JOURNEYS / "post_purchase.yaml", journeys)
    (journeys / "templates").symlink_to(JOURNEYS / "templates")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSVENTA_") and "proxy" not in k.lower()}
    env.update(
        POSVENTA_DATABASE_URL=db_url,
        POSVENTA_JOURNEYS_DIR=str(journeys),
        POSVENTA_SECRET_KEY="s" * 40,
        POSVENTA_OUTBOX_DIR=str(tmp_path / "outbox"),
        PYTHONPATH=str(REPO),
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", f"from web.app import serve; serve('127.0.0.1', {port})"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(proc, base, lambda: proc.communicate()[0])
        r = httpx.get(f"{base}/s/secret-capability-token", trust_env=False)
        assert r.status_code == 400 and "server" not in r.headers
        r = httpx.post(f"{base}/v1/events", json={}, trust_env=False)
        assert r.status_code == 401
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            output = proc.communicate(timeout=15)[0]
        except subprocess.TimeoutExpired:
            proc.kill()
            output = proc.communicate()[0]
    assert "GET /s/… 400" in output
    assert "secret-capability-token" not in output
