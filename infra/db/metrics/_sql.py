"""Date arithmetic, JSON arrays and medians that read the same on PostgreSQL and SQLite.

The two backends store instants differently (``timestamptz`` vs naive UTC text, see ``infra.db.types``),
so arithmetic on them is compiled per dialect here, once, as SQLAlchemy constructs (``@compiles``); the
metric queries use these and stay dialect-free. Weeks and calendar days are UTC ones: SQLite has no time
zones, and a report that changed with the server's zone would be worse.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Date, Float, Integer, case, cast, func, text
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import QueryableAttribute, Session
from sqlalchemy.sql import ColumnElement
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.sql.selectable import TableValuedAlias
from sqlalchemy.types import TypeEngine

_UNIX_EPOCH_JULIAN = 2440587.5  # julianday('1970-01-01')
_SQLITE_LN = "posventa_ln"


def _portable(name: str, type_: TypeEngine[Any], **sql: str) -> type[FunctionElement[Any]]:
    """A SQL function written once per dialect: ``sql`` maps a dialect name to a template in which
    ``{0}``, ``{1}``… are the compiled arguments."""
    construct: type[FunctionElement[Any]] = type(
        name, (FunctionElement,), {"type": type_, "inherit_cache": True, "name": name}
    )
    for dialect, template in sql.items():

        def compile_(
            element: FunctionElement[Any], compiler: SQLCompiler, _t: str = template, **kw: Any
        ) -> str:
            return _t.format(*(compiler.process(c, **kw) for c in element.clauses))

        compiles(construct, dialect)(compile_)
    return construct


#: Seconds since 1970-01-01 UTC of an instant column (a float).
epoch_s = _portable(
    "epoch_s",
    Float(),
    postgresql="date_part('epoch', {0})",
    sqlite=f"((julianday({{0}}) - {_UNIX_EPOCH_JULIAN}) * 86400.0)",
)
#: The UTC calendar day of an instant column (a DATE).
utc_day = _portable(
    "utc_day", Date(), postgresql="CAST(({0}) AT TIME ZONE 'UTC' AS DATE)", sqlite="date({0})"
)
#: The Monday (UTC) of the ISO week of an instant column (a DATE). SQLite: 'weekday 0' moves forward to
#: the next Sunday (or stays on one); six days back is that week's Monday.
week_start = _portable(
    "week_start",
    Date(),
    postgresql="CAST(date_trunc('week', ({0}) AT TIME ZONE 'UTC') AS DATE)",
    sqlite="date({0}, 'weekday 0', '-6 days')",
)
#: ``days_between(a, b)``: whole days from DATE ``a`` to DATE ``b`` (negative when b is earlier).
days_between = _portable(
    "days_between",
    Integer(),
    postgresql="(({1}) - ({0}))",
    sqlite="CAST(round(julianday({1}) - julianday({0})) AS INTEGER)",
)
#: The natural logarithm. SQLite has ``ln`` only when built with its math functions, so there it is a
#: Python function that :func:`prepare` registers on the connection.
ln = _portable("ln", Float(), postgresql="ln({0})", sqlite=_SQLITE_LN + "({0})")


def json_array_elements(
    dialect: str, array: ColumnElement[Any] | QueryableAttribute[Any]
) -> TableValuedAlias:
    """A table of the elements of a JSON array column, one ``value`` per element, for a lateral join
    (PostgreSQL ``jsonb_array_elements``, SQLite ``json_each``)."""
    if dialect == "postgresql":
        return func.jsonb_array_elements(array).table_valued("value", joins_implicitly=True).render_derived()
    return func.json_each(array).table_valued("value", joins_implicitly=True)


def _sqlite_ln(value: float | None) -> float | None:
    return None if value is None or value <= 0 else math.log(value)


# --- medians from histograms ------------------------------------------------------------------------------
#: Buckets per unit of ln(seconds): consecutive bucket edges differ by 1%.
BUCKETS_PER_E = 100


def log_bucket(seconds: ColumnElement[float]) -> ColumnElement[int]:
    """The histogram bucket of a non-negative duration: ``floor(ln(max(s, 1)) × 100)``. A median is then
    found from per-bucket counts and sums (:func:`median_of`) with a hash aggregate, where an exact
    ``percentile_cont`` sorts every row (measured: about 1 s more for a million ledger rows)."""
    return cast(func.floor(ln(case((seconds < 1, 1.0), else_=seconds)) * BUCKETS_PER_E), Integer)


def median_of(buckets: Iterable[tuple[int, int, float]]) -> float | None:
    """The median from (bucket, count, sum of values) rows: the mean of the bucket holding the middle
    value (for an even count, the mean of the two middle values' buckets' means). Exact when those
    buckets hold one distinct value each; otherwise within the bucket's 1% width."""
    rows = sorted((b, n, total) for b, n, total in buckets if n)
    n = sum(count for _, count, _ in rows)
    if not n:
        return None
    wanted = [(n + 1) // 2, n // 2 + 1] if n % 2 == 0 else [(n + 1) // 2]
    found = []
    seen = 0
    for _, count, total in rows:
        low, seen = seen, seen + count
        found += [total / count for rank in wanted if low < rank <= seen]
    return sum(found) / len(found)


#: Memory for one sort or hash of a report query on PostgreSQL. The server default (4 MB) makes the
#: funnel's hash aggregates spill to disk at a million ledger rows; this is per transaction (SET LOCAL).
REPORT_WORK_MEM = "128MB"


@contextmanager
def hash_plans(s: Session) -> Iterator[None]:
    """PostgreSQL: plan the statements inside with hash joins and hash aggregates, not sorts.

    The planner cannot know how many distinct values a JSON field or a computed key has (it assumes 200
    each), so the funnel's few hundred groups look like a million to it and it sorts a million rows to
    group them, or merge-joins on a computed key. Measured on the benchmark's million ledger rows: the
    step funnel went from 4.4 + 4.1 s to 1.8 + 1.6 s (a loaded two-core machine). Per transaction, and
    reset after.
    """
    postgres = s.get_bind().dialect.name == "postgresql"
    if postgres:
        s.execute(text("SET LOCAL enable_sort = off"))
        s.execute(text("SET LOCAL enable_mergejoin = off"))
    try:
        yield
    finally:
        if postgres:
            s.execute(text("SET LOCAL enable_sort = on"))
            s.execute(text("SET LOCAL enable_mergejoin = on"))


def prepare(s: Session) -> None:
    """Before a metric query: register SQLite's ``ln``; on PostgreSQL give sorts and hashes memory and
    turn JIT compilation off for the transaction (measured: it adds ~150 ms to each large report query
    and saves nothing on these)."""
    dialect = s.get_bind().dialect.name
    if dialect == "sqlite":
        raw = s.connection().connection.driver_connection
        raw.create_function(_SQLITE_LN, 1, _sqlite_ln, deterministic=True)  # type: ignore[union-attr]
    elif dialect == "postgresql":
        s.execute(text(f"SET LOCAL work_mem = '{REPORT_WORK_MEM}'"))
        s.execute(text("SET LOCAL jit = off"))
