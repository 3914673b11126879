"""Database helpers for tests: throwaway PostgreSQL databases and migrated SQLite files.

Fixtures live in ``tests/db/conftest.py``; other test folders reuse them by importing these helpers
(``from infra.db.testing import fresh_postgres_database``…). Needs pytest only when PostgreSQL is
unreachable: outside CI the test is skipped with the reason, in CI (``CI=true``) it fails, so a broken
CI database never passes as "skipped".
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

from sqlalchemy import Engine, create_engine, delete, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from infra.db.migrate import upgrade
from infra.db.models import Base

DEFAULT_TEST_DATABASE_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"


def postgres_url() -> str:
    """The PostgreSQL used by tests (``POSVENTA_TEST_DATABASE_URL``)."""
    return os.environ.get("POSVENTA_TEST_DATABASE_URL") or DEFAULT_TEST_DATABASE_URL


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def unavailable(reason: str) -> NoReturn:
    """Skip the test (developer machine) or fail it (CI) because a service is missing."""
    import pytest

    if in_ci():
        pytest.fail(f"{reason} (CI=true: integration tests must run, not skip)", pytrace=False)
    pytest.skip(reason)


def _admin_engine(url: str) -> Engine:
    admin_url = make_url(url).set(database="postgres")
    return create_engine(
        admin_url, isolation_level="AUTOCOMMIT", poolclass=NullPool, connect_args={"connect_timeout": 5}
    )


@contextmanager
def fresh_postgres_database(base_url: str | None = None, *, migrate: bool = True) -> Iterator[str]:
    """Create a uniquely named database on the server of ``base_url``, yield its URL, drop it after.

    CREATE/DROP DATABASE cannot run in a transaction, hence the AUTOCOMMIT connection to ``postgres``.
    """
    base = make_url(base_url or postgres_url())
    admin = _admin_engine(base.render_as_string(hide_password=False))
    name = f"posventa_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as exc:
        admin.dispose()
        where = base.render_as_string(hide_password=True)
        unavailable(f"PostgreSQL is not reachable at {where}: {str(exc.orig).strip().splitlines()[0]}")
    url = base.set(database=name).render_as_string(hide_password=False)
    try:
        if migrate:
            upgrade(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def migrated_sqlite_url(folder: Path, name: str = "posventa.db") -> str:
    """A SQLite file in ``folder`` migrated to head."""
    url = f"sqlite:///{folder / name}"
    upgrade(url)
    return url


def clear_tables(engine: Engine) -> None:
    """Delete every row (children first), keeping the schema: cheaper than a new database per test."""
    with engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(delete(table))
