"""Fixtures for the marketer's loop: a migrated SQLite file per test, a PostgreSQL database per module, a
copy of the shipped journeys a test may edit, the loopback fake SendGrid.

No ``__init__.py`` (like ``tests/usecases``): helpers live in ``mk_builders.py``, a unique module name.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

from mk_builders import ROOT

from infra.db.session import make_engine
from infra.db.testing import clear_tables, fresh_postgres_database, migrated_sqlite_url
from infra.email.fake_sendgrid import FakeSendGrid
from infra.settings import get_settings


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return migrated_sqlite_url(tmp_path)


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest) -> str:
    """Each test that takes ``url`` runs on a fresh SQLite file and on the module's PostgreSQL database
    (emptied first)."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    pg: str = request.getfixturevalue("pg_url")
    engine = make_engine(pg)
    clear_tables(engine)
    engine.dispose()
    return pg


@pytest.fixture
def journeys(tmp_path: Path) -> Path:
    """A copy of the shipped journeys and templates: the test's drafts, to edit."""
    target = tmp_path / "journeys"
    shutil.copytree(ROOT / "journeys", target)
    return target


@pytest.fixture
def fake() -> Iterator[FakeSendGrid]:
    with FakeSendGrid(api_key="SG.test") as server:
        yield server


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, journeys: Path) -> Iterator[dict[str, str]]:
    """Settings for the ``posventa`` command run in this process (``main([...])``): a SQLite file not yet
    migrated, the editable journeys, the outbox in the test's folder, English text."""
    values = {
        "POSVENTA_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "POSVENTA_JOURNEYS_DIR": str(journeys),
        "POSVENTA_OUTBOX_DIR": str(tmp_path / "outbox"),
        "POSVENTA_SECRET_KEY": "k" * 40,
        "POSVENTA_LANG": "en",
    }
    for key in [k for k in os.environ if k.startswith("POSVENTA_") and k not in values]:
        monkeypatch.delenv(key)
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)  # no .env of the developer's
    get_settings.cache_clear()
    yield values
    get_settings.cache_clear()
