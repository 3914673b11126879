"""Engines and sessions for PostgreSQL (production, several workers) and SQLite (embedded, one worker).

No personal data in errors: every engine is created with ``hide_parameters=True`` (a failed statement's
error text names the statement, never the bound values: addresses, names, comments), and
:func:`withhold_values` removes what the database itself quotes back (PostgreSQL's ``DETAIL: Key
(email)=(ana@example.com) already exists``, ``Failing row contains (…)``, the value in a data error) from
the driver's exception and SQLAlchemy's wrapper, so a logged traceback cannot carry them either.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, ExceptionContext, make_url
from sqlalchemy.exc import DBAPIError
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
    kwargs.setdefault("hide_parameters", True)
    kwargs.setdefault("json_serializer", _json_dumps)
    if u.get_backend_name() == "sqlite":
        engine = _sqlite_engine(u, **kwargs)
    else:
        kwargs.setdefault("pool_pre_ping", True)
        engine = create_engine(u, **kwargs)
    event.listen(engine, "handle_error", withhold_values)
    return engine


def _json_dumps(value: Any) -> str:
    """JSON columns (enrollment state, ledger payloads, events) are encoded by orjson: measured on the
    sweep benchmark, ``json.dumps`` was four calls and ~4% of every step. What orjson refuses and
    ``json`` writes (an integer beyond 64 bits, a lone surrogate in a webhook's text — both seen from the
    fuzzer) goes through ``json`` as before, so nothing stored before is refused now; int keys become
    strings as with ``json``. Decoding stays ``json.loads``: orjson reads an integer beyond 64 bits as
    a float, which would change a stored value."""
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:  # orjson.JSONEncodeError
        return json.dumps(value)


#: SQLSTATE classes whose primary message may quote a value: data exceptions (``invalid input syntax for
#: type date: "…"``) and integrity violations.
_QUOTING_CLASSES = ("22", "23")


def safe_db_message(orig: BaseException) -> str | None:
    """The driver error's text without any value it quotes, or None when it quotes none (SQLite's messages
    name the constraint, never the row). For PostgreSQL: the primary message line without ``DETAIL`` or
    ``HINT``, and for data and integrity errors only the SQLSTATE and the names of the table, column and
    constraint involved."""
    sqlstate = getattr(orig, "pgcode", None)
    if not isinstance(sqlstate, str):
        return None
    text = str(orig).strip().splitlines()
    first = text[0] if text else ""
    if not sqlstate.startswith(_QUOTING_CLASSES):
        return first
    diag = getattr(orig, "diag", None)
    where = [
        f'{what} "{name}"'
        for what, name in (
            ("table", getattr(diag, "table_name", None)),
            ("column", getattr(diag, "column_name", None)),
            ("constraint", getattr(diag, "constraint_name", None)),
        )
        if name
    ]
    kind = type(orig).__name__
    return (
        f"{kind} (SQLSTATE {sqlstate})"
        + (f" on {', '.join(where)}" if where else "")
        + ("; the database's own text is withheld: it may quote personal data")
    )


def withhold_values(context: ExceptionContext) -> None:
    """``handle_error`` listener: rewrite the driver's exception (and SQLAlchemy's wrapper of it) to
    :func:`safe_db_message`. Type, SQLSTATE and ``diag`` are kept, so code that inspects them still works."""
    orig = context.original_exception
    text = safe_db_message(orig)
    if text is None:
        return
    with contextlib.suppress(
        AttributeError, TypeError
    ):  # a driver's exceptions may refuse: the wrapper won't
        orig.args = (text,)
    wrapper = context.sqlalchemy_exception
    if isinstance(wrapper, DBAPIError):
        wrapper.args = (f"({type(orig).__module__}.{type(orig).__name__}) {text}",)


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
