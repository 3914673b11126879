"""Report fixtures: ``engine`` / ``session`` over SQLite and PostgreSQL (each test runs on both), migrated
fresh, and the shipped journeys' compiled plans. Helpers live in ``report_builders.py``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from report_builders import ROOT
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from infra.db.session import make_engine, session_factory
from infra.db.testing import clear_tables, fresh_postgres_database, migrated_sqlite_url
from posventa.compile import load_plans
from posventa.plan import JourneyPlan


@pytest.fixture(scope="session")
def plans() -> dict[str, JourneyPlan]:
    return load_plans(ROOT / "journeys")


@pytest.fixture(scope="module")
def _pg_engine() -> Iterator[Engine]:
    with fresh_postgres_database() as url:
        engine = make_engine(url)
        yield engine
        engine.dispose()


@pytest.fixture
def pg_engine(_pg_engine: Engine) -> Engine:
    clear_tables(_pg_engine)
    return _pg_engine


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(migrated_sqlite_url(tmp_path))
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest) -> Engine:
    """Each test that takes ``engine`` (or ``session``) runs once per backend."""
    result: Engine = request.getfixturevalue("sqlite_engine" if request.param == "sqlite" else "pg_engine")
    return result


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with session_factory(engine)() as s:
        yield s
