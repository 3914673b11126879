"""Fixtures for the use cases on PostgreSQL: a real database, the real SendGrid client and the loopback
fake SendGrid."""

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

from rt_helpers import ROOT, make_services

from app.services import Services
from infra.db.testing import clear_tables, fresh_postgres_database
from infra.email.fake_sendgrid import FakeSendGrid
from posventa.compile import compile_file


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
def svc(pg_url: str, fake: FakeSendGrid, plans: dict[str, Any], tmp_path: Path) -> Iterator[Services]:
    services = make_services(pg_url, fake, plans, tmp_path)
    clear_tables(services.store.factory.kw["bind"])  # type: ignore[attr-defined]
    services.plans.publish()
    yield services
    services.store.dispose()  # type: ignore[attr-defined]
