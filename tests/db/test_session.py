"""Engine set-up per backend, the transaction helper, and migrations over a passed-in connection."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa
from alembic import command
from db_builders import customer

from infra.db.migrate import alembic_config
from infra.db.models import Customer
from infra.db.session import SQLITE_BUSY_TIMEOUT_MS, is_postgres, is_sqlite, make_engine, session_factory
from infra.db.store import SqlStore


def test_sqlite_pragmas(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == SQLITE_BUSY_TIMEOUT_MS
    assert is_sqlite(engine) and not is_postgres(engine)
    engine.dispose()


@pytest.mark.postgres
def test_postgres_engine(pg_url: str) -> None:
    engine = make_engine(pg_url)
    assert is_postgres(engine) and engine.pool._pre_ping
    engine.dispose()


def test_store_transaction_commits_or_rolls_back(sqlite_url: str) -> None:
    store = SqlStore(session_factory(make_engine(sqlite_url)))
    with store.begin() as tx:
        customer(tx, "kept")
    with pytest.raises(RuntimeError), store.begin() as tx:
        customer(tx, "dropped")
        raise RuntimeError("boom")
    with store.read() as tx:
        customer(tx, "never-committed")
    with store.factory() as s:
        assert s.scalars(sa.select(Customer.id)).all() == ["kept"]


def test_savepoint_rolls_back_only_its_block(sqlite_url: str) -> None:
    store = SqlStore(session_factory(make_engine(sqlite_url)))
    with store.begin() as tx:
        customer(tx, "outer")
        with pytest.raises(RuntimeError), tx.savepoint():
            customer(tx, "inner")
            raise RuntimeError("boom")
    with store.factory() as s:
        assert s.scalars(sa.select(Customer.id)).all() == ["outer"]


def test_in_memory_sqlite_is_shared_between_threads() -> None:
    engine = make_engine("sqlite://")
    with engine.begin() as conn:
        command.upgrade(alembic_config(connection=conn), "head")  # env.py uses the passed connection
    factory = session_factory(engine)
    with SqlStore(factory).begin() as tx:
        customer(tx, "c1")

    seen: list[str] = []

    def read() -> None:
        with factory() as s:
            seen.extend(s.scalars(sa.select(Customer.id)))

    t = threading.Thread(target=read)
    t.start()
    t.join(5)
    assert seen == ["c1"]
