"""Engines and sessions for PostgreSQL (production, several workers) and SQLite (embedded, one worker)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry, StaticPool

#: How long a SQLite writer waits for another one before "database is locked".
SQLITE_BUSY_TIMEOUT_MS = 15_000


def make_engine(url: str | URL, **kwargs: Any) -> Engine:
    """An engine configured for Posventa's access patterns.

    SQLite: usable from several threads (web app + worker), WAL so readers do not block the writer,
    a busy timeout so writers queue instead of failing, foreign keys enforced. The folder of a file
    database is created. PostgreSQL: ``pool_pre_ping`` so a restarted server does not fail the first
    query of every pooled connection.
    """
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        return _sqlite_engine(u, **kwargs)
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(u, **kwargs)


def _sqlite_engine(u: URL, **kwargs: Any) -> Engine:
    memory = u.database in (None, "", ":memory:") or "mode=memory" in str(u)
    connect_args = dict(kwargs.pop("connect_args", {}))
    connect_args.setdefault("check_same_thread", False)
    if memory:
        kwargs.setdefault("poolclass", StaticPool)  # one shared connection, or each would be a new db
    else:
        assert u.database is not None
        Path(u.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(u, connect_args=connect_args, **kwargs)

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        cursor = dbapi_connection.cursor()
        try:
            if not memory:
                cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()

    return engine


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions whose loaded rows stay readable after commit. Transactions are opened by
    :class:`infra.db.store.SqlStore` (``begin``: commit on success, roll back on any exception)."""
    return sessionmaker(bind=engine, expire_on_commit=False)
