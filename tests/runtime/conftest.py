"""Runtime fixtures: a real PostgreSQL database, the real SendGrid client and the loopback fake SendGrid."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
# Prefect logs "Stopping temporary server" at exit, after pytest closed its capture streams.
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

from rt_helpers import ROOT, make_runtime

from infra.db.testing import clear_tables, fresh_postgres_database
from infra.email.fake_sendgrid import FakeSendGrid
from infra.runtime import Runtime
from posventa.plan import compile_file


@pytest.fixture(scope="session")
def plans() -> dict[str, Any]:
    # The journey these tests exercise, compiled from the shipped file (other journeys have their own tests).
    plan = compile_file(ROOT / "journeys" / "post_purchase.yaml")
    return {plan.id: plan}


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture
def fake() -> Iterator[FakeSendGrid]:
    with FakeSendGrid(api_key="SG.test") as server:
        yield server


@pytest.fixture
def runtime(pg_url: str, fake: FakeSendGrid, plans: dict[str, Any], tmp_path: Path) -> Runtime:
    rt = make_runtime(pg_url, fake, plans, tmp_path)
    clear_tables(rt.factory.kw["bind"])
    rt.publish_plans()
    return rt
