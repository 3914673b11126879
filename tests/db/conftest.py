"""Database fixtures: a fresh migrated PostgreSQL database per test module, a migrated SQLite file per
test, and ``engine`` / ``session`` parametrised over both backends."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from infra.db.session import make_engine, session_factory
from infra.db.store import SqlTx
from infra.db.testing import clear_tables, fresh_postgres_database, migrated_sqlite_url


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    """A PostgreSQL database migrated to head, private to the test module, dropped afterwards."""
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite file migrated to head, private to the test."""
    return migrated_sqlite_url(tmp_path)


@pytest.fixture(scope="module")
def _pg_engine(pg_url: str) -> Iterator[Engine]:
    engine = make_engine(pg_url)
    yield engine
    engine.dispose()


@pytest.fixture
def pg_engine(_pg_engine: Engine) -> Engine:
    """The module's PostgreSQL engine, emptied before the test."""
    clear_tables(_pg_engine)
    return _pg_engine


@pytest.fixture
def sqlite_engine(sqlite_url: str) -> Iterator[Engine]:
    engine = make_engine(sqlite_url)
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest) -> Engine:
    """Each test that takes ``engine`` runs once per backend."""
    name = "sqlite_engine" if request.param == "sqlite" else "pg_engine"
    result: Engine = request.getfixturevalue(name)
    return result


@pytest.fixture
def factory(engine: Engine) -> sessionmaker[Session]:
    return session_factory(engine)


@pytest.fixture
def session(factory: sessionmaker[Session]) -> Iterator[Session]:
    with factory() as s:
        yield s


@pytest.fixture
def tx(session: Session) -> SqlTx:
    """The store's repositories on the test's session (commit with ``session.commit()``)."""
    return SqlTx(session)
