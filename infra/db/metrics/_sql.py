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

from sqlalchemy import Date, Float, Integer, String, case, cast, func, text
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import QueryableAttribute, Session
from sqlalchemy.sql import ColumnElement
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.sql.selectable import TableValuedAlias

_UNIX_EPOCH_JULIAN = 2440587.5  # julianday('1970-01-01')


class epoch_s(FunctionElement[float]):
    """Seconds since 1970-01-01 UTC of an instant column (a float)."""

    type = Float()
    inherit_cache = True
    name = "epoch_s"


@compiles(epoch_s, "postgresql")
def _epoch_pg(element: epoch_s, compiler: SQLCompiler, **kw: Any) -> str:
    return f"date_part('epoch', {compiler.process(element.clauses, **kw)})"


@compiles(epoch_s, "sqlite")
def _epoch_sqlite(element: epoch_s, compiler: SQLCompiler, **kw: Any) -> str:
    return f"((julianday({compiler.process(element.clauses, **kw)}) - {_UNIX_EPOCH_JULIAN}) * 86400.0)"


class utc_day(FunctionElement[Any]):
    """The UTC calendar day of an instant column (a DATE)."""

    type = Date()
    inherit_cache = True
    name = "utc_day"


@compiles(utc_day, "postgresql")
def _day_pg(element: utc_day, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST(({compiler.process(element.clauses, **kw)}) AT TIME ZONE 'UTC' AS DATE)"


@compiles(utc_day, "sqlite")
def _day_sqlite(element: utc_day, compiler: SQLCompiler, **kw: Any) -> str:
    return f"date({compiler.process(element.clauses, **kw)})"


class week_start(FunctionElement[Any]):
    """The Monday (UTC) of the ISO week of an instant column (a DATE)."""

    type = Date()
    inherit_cache = True
    name = "week_start"


@compiles(week_start, "postgresql")
def _week_pg(element: week_start, compiler: SQLCompiler, **kw: Any) -> str:
    inner = compiler.process(element.clauses, **kw)
    return f"CAST(date_trunc('week', ({inner}) AT TIME ZONE 'UTC') AS DATE)"


@compiles(week_start, "sqlite")
def _week_sqlite(element: week_start, compiler: SQLCompiler, **kw: Any) -> str:
    # 'weekday 0' moves forward to the next Sunday (or stays on one); six days back is that week's Monday.
    return f"date({compiler.process(element.clauses, **kw)}, 'weekday 0', '-6 days')"


class days_between(FunctionElement[int]):
    """``days_between(a, b)``: whole days from DATE ``a`` to DATE ``b`` (negative when b is earlier)."""

    type = Integer()
    inherit_cache = True
    name = "days_between"


@compiles(days_between, "postgresql")
def _days_pg(element: days_between, compiler: SQLCompiler, **kw: Any) -> str:
    a, b = (compiler.process(c, **kw) for c in element.clauses)
    return f"(({b}) - ({a}))"


@compiles(days_between, "sqlite")
def _days_sqlite(element: days_between, compiler: SQLCompiler, **kw: Any) -> str:
    a, b = (compiler.process(c, **kw) for c in element.clauses)
    return f"CAST(round(julianday({b}) - julianday({a})) AS INTEGER)"


def json_array_elements(
    dialect: str, array: ColumnElement[Any] | QueryableAttribute[Any]
) -> TableValuedAlias:
    """A table of the elements of a JSON array column, one ``value`` per element, for a lateral join
    (PostgreSQL ``jsonb_array_elements``, SQLite ``json_each``)."""
    if dialect == "postgresql":
        return func.jsonb_array_elements(array).table_valued("value", joins_implicitly=True).render_derived()
    return func.json_each(array).table_valued("value", joins_implicitly=True)


class ln(FunctionElement[float]):
    """The natural logarithm. SQLite has ``ln`` only when built with its math functions, so there it is a
    Python function that :func:`prepare` registers on the connection."""

    type = Float()
    inherit_cache = True
    name = "ln"


_SQLITE_LN = "posventa_ln"


@compiles(ln, "postgresql")
def _ln_pg(element: ln, compiler: SQLCompiler, **kw: Any) -> str:
    return f"ln({compiler.process(element.clauses, **kw)})"


@compiles(ln, "sqlite")
def _ln_sqlite(element: ln, compiler: SQLCompiler, **kw: Any) -> str:
    return f"{_SQLITE_LN}({compiler.process(element.clauses, **kw)})"


def _sqlite_ln(value: float | None) -> float | None:
    return None if value is None or value <= 0 else math.log(value)


class key_enrollment(FunctionElement[str]):
    """The enrollment id part of a ledger key ``<enrollment id>:<step id>:<occurrence>``, as text (a key
    that is not one of ours then matches no enrollment instead of failing a cast)."""

    type = String()
    inherit_cache = True
    name = "key_enrollment"


@compiles(key_enrollment, "postgresql")
def _key_enrollment_pg(element: key_enrollment, compiler: SQLCompiler, **kw: Any) -> str:
    return f"split_part({compiler.process(element.clauses, **kw)}, ':', 1)"


@compiles(key_enrollment, "sqlite")
def _key_enrollment_sqlite(element: key_enrollment, compiler: SQLCompiler, **kw: Any) -> str:
    k = compiler.process(element.clauses, **kw)
    return f"substr({k}, 1, instr({k}, ':') - 1)"


class key_step(FunctionElement[str]):
    """The step id part of a ledger key (step ids are ``[a-z][a-z0-9_]*``, occurrences digits)."""

    type = String()
    inherit_cache = True
    name = "key_step"


@compiles(key_step, "postgresql")
def _key_step_pg(element: key_step, compiler: SQLCompiler, **kw: Any) -> str:
    return f"split_part({compiler.process(element.clauses, **kw)}, ':', 2)"


@compiles(key_step, "sqlite")
def _key_step_sqlite(element: key_step, compiler: SQLCompiler, **kw: Any) -> str:
    k = compiler.process(element.clauses, **kw)
    # "step:occurrence" → strip the occurrence's digits, then the colon
    return f"rtrim(rtrim(substr({k}, instr({k}, ':') + 1), '0123456789'), ':')"


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
