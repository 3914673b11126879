"""Fixtures for the web app: a fresh migrated PostgreSQL per module, services on the post-purchase journey,
the app on a virtual clock, a TestClient, an API key, and SendGrid's webhook signer.

No ``__init__.py`` here (like ``tests/email``): helpers live in ``web_builders.py``, a unique module name.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session
from web_builders import T0, Clock, make_services, web_settings

from app.services import Services
from infra.db.session import make_engine
from infra.db.testing import clear_tables, fresh_postgres_database
from infra.email.fake_sendgrid import FakeSendGrid
from infra.settings import Settings
from web.app import create_app


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture
def db_url(pg_url: str) -> str:
    """The module's database, emptied before the test."""
    engine = make_engine(pg_url)
    try:
        clear_tables(engine)
    finally:
        engine.dispose()
    return pg_url


@pytest.fixture(scope="session")
def signer() -> FakeSendGrid:
    """Signs Event Webhook requests exactly as SendGrid does (not started: no server needed)."""
    return FakeSendGrid()


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def settings(db_url: str, tmp_path: Path, signer: FakeSendGrid) -> Settings:
    return web_settings(db_url, tmp_path / "outbox", "http://testserver", signer.webhook_public_key_b64)


@pytest.fixture
def svc(settings: Settings) -> Iterator[Services]:
    services = make_services(settings)
    yield services
    services.store.dispose()  # type: ignore[attr-defined]


@pytest.fixture
def app(svc: Services, settings: Settings, clock: Clock) -> FastAPI:
    return create_app(svc, settings=settings, clock=clock)


@pytest.fixture
def client(app: FastAPI) -> TestClient:
    return TestClient(app)


@pytest.fixture
def api_key(svc: Services) -> str:
    with svc.store.begin() as tx:
        return tx.api_keys.create("shop-1", "tests")


@pytest.fixture
def auth(api_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"}


@pytest.fixture
def session(svc: Services) -> Iterator[Session]:
    with svc.store.factory() as s:  # type: ignore[attr-defined]
        yield s
