"""What every repository shares: the session of its transaction, the dialect's INSERT (which knows
``ON CONFLICT``), and argument guards."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Executable, Table, case, false, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import CursorResult, Result
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from infra.db.models import Base
from posventa.errors import ConfigError


class Repo:
    """A repository: the queries of one aggregate, run in the caller's transaction (no commits here)."""

    def __init__(self, s: Session) -> None:
        self.s = s

    @property
    def is_postgres(self) -> bool:
        return self.s.get_bind().dialect.name == "postgresql"

    def insert_into(self, model: type[Base]) -> postgresql.Insert | sqlite.Insert:
        """The dialect's INSERT, which knows ``ON CONFLICT``."""
        return _insert(self.s.get_bind().dialect.name, model)

    def insert_ignoring(
        self, model: type[Base], index_elements: tuple[str, ...] = ("id",), returning: tuple[str, ...] = ()
    ) -> Executable:
        """``INSERT … ON CONFLICT (index_elements) DO NOTHING [RETURNING …]`` (``("*",)``: every column),
        built once per dialect and executed with its values as parameters — cheaper per call than
        ``.values(...)``, whose cache key walks every value. A list of parameter sets is one multi-row
        INSERT when there is a RETURNING (insertmanyvalues), a round trip per row otherwise."""
        return _insert_ignoring(self.s.get_bind().dialect.name, model, index_elements, returning)


def _insert(dialect: str, model: type[Base]) -> postgresql.Insert | sqlite.Insert:
    if dialect == "postgresql":
        return postgresql.insert(table(model))
    if dialect == "sqlite":
        return sqlite.insert(table(model))
    raise ConfigError(f"POSVENTA_DATABASE_URL: Posventa supports PostgreSQL and SQLite, not {dialect}")


@functools.cache
def _insert_ignoring(
    dialect: str, model: type[Base], index_elements: tuple[str, ...], returning: tuple[str, ...]
) -> Executable:
    stmt = _insert(dialect, model).on_conflict_do_nothing(index_elements=list(index_elements))
    if not returning:
        return stmt
    t = table(model)
    return stmt.returning(*(t.columns if returning == ("*",) else [t.c[name] for name in returning]))


def table(model: type[Base]) -> Table:
    return cast(Table, model.__table__)


def rowcount(result: Result[Any]) -> int:
    return cast(CursorResult[Any], result).rowcount


def one_of(value: str | None, allowed: Iterable[str], what: str, *, nullable: bool = False) -> None:
    if value is None and nullable:
        return
    allowed = tuple(allowed)
    if value not in allowed:
        raise ValueError(f"{what} must be one of {', '.join(allowed)}; got {value!r}")


def aware(value: datetime, what: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be an aware datetime")
    return value


def normalise_email(email: str) -> str:
    return email.strip().lower()


def insert_or_update(
    repo: Repo,
    model: Any,
    row_id: str,
    first: dict[str, Any],
    given: dict[str, Any],
    attributes: dict[str, Any],
) -> Any:
    """Insert the row (``first`` are the values only the first sighting sets), or update the fields the
    shop sent this time and merge its custom attributes; return the row as it is now. Safe under
    concurrent upserts of the same id: the row is re-read locked on PostgreSQL (SQLite: the INSERT that
    preceded it already holds the write lock)."""
    s = repo.s
    # A new row comes back from the INSERT itself (as a row of its columns): one round trip.
    stmt = repo.insert_ignoring(model, returning=("*",))
    created = s.execute(stmt, {**first, "attributes": attributes, **given}).first()
    if created is not None:
        return created
    found = select(model).where(model.id == row_id).execution_options(populate_existing=True)
    if repo.is_postgres:
        found = found.with_for_update()
    row = s.scalars(found).one()
    for name, value in given.items():
        setattr(row, name, value)
    if attributes:
        row.attributes = {**row.attributes, **attributes}
    s.flush()
    return row


#: One row of :func:`insert_or_update_many`: (values only the first sighting sets, the fields the shop
#: sent this time, its custom attributes).
Upsert = tuple[dict[str, Any], dict[str, Any], dict[str, Any]]


def insert_or_update_many(repo: Repo, model: Any, rows: Sequence[Upsert]) -> list[Any]:
    """:func:`insert_or_update` of many rows with distinct ids, returning each row as it is now (in no
    particular order).

    PostgreSQL: one ``INSERT … ON CONFLICT (id) DO UPDATE … RETURNING`` per shape (the set of fields
    sent), as a multi-row statement: only the fields sent are overwritten, ``attributes`` are merged key by
    key (``||``, the same shallow merge), and ``updated_at`` moves only when a value changed (as the ORM's
    flush of :func:`insert_or_update` does). SQLite (one writer, no ``||`` on JSON): row by row."""
    if not rows:
        return []
    if not repo.is_postgres:
        return [
            insert_or_update(repo, model, first["id"], first, given, attrs) for first, given, attrs in rows
        ]
    t = table(model)
    shapes: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for first, given, attributes in rows:
        shapes.setdefault(tuple(sorted(given)), []).append({**first, **given, "attributes": attributes})
    out: list[Any] = []
    for shape, params in shapes.items():
        params.sort(key=lambda row: row["id"])  # rows are locked in one order: concurrent batches queue
        stmt = repo.insert_into(model)
        merged = t.c.attributes.op("||", return_type=t.c.attributes.type)(stmt.excluded.attributes)
        changes = [t.c[name].is_distinct_from(stmt.excluded[name]) for name in shape]
        changed = or_(false(), *changes, t.c.attributes.is_distinct_from(merged))
        set_: dict[str, Any] = {name: stmt.excluded[name] for name in shape}
        set_["attributes"] = merged
        set_["updated_at"] = case((changed, stmt.excluded.updated_at), else_=t.c.updated_at)
        upsert = stmt.on_conflict_do_update(index_elements=["id"], set_=set_).returning(*t.columns)
        out.extend(repo.s.execute(upsert, params).all())
    # The session may hold some of these rows as objects read earlier in the transaction (an event applied
    # item by item before this batch): forget their loaded values, so the next read sees these.
    for row in out:
        held = repo.s.identity_map.get(identity_key(model, row.id))
        if held is not None:
            repo.s.expire(held)
    return out
