"""Sessions that see one snapshot of the database, so the results report's metrics can run at the same
time on several PostgreSQL connections and still agree with each other.

Why: the report is a dozen aggregate queries; on PostgreSQL each connection is its own server process, so
two connections use two cores where one session would use one (measured on the report benchmark's
million ledger rows: the whole report 2.1 s on one session, see ``benchmarks/bench_report.py`` for the
concurrent figure). Numbers computed on separate connections could disagree — an NPS answer counted in
one query and not in the next — unless they share a snapshot: the first session exports its snapshot
(``pg_export_snapshot``) and the others import it (``SET TRANSACTION SNAPSHOT``), all REPEATABLE READ
and READ ONLY, so every query sees the database as of one instant, as one transaction would.

These sessions do not see a caller's uncommitted writes: the report asks for them only when it owns
its read (``build_report(…, parallel=True)``). SQLite (one writer, the demo) gets one session: nothing
to share.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

_READ_ONLY = "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"
_SNAPSHOT_ID = re.compile(r"^[0-9A-F]+-[0-9A-F]+-[0-9]+$")


@contextmanager
def shared_snapshot(engine: Engine, n: int) -> Iterator[list[Session]]:
    """``n`` read-only sessions on ``engine`` that see the same snapshot (PostgreSQL); one session
    elsewhere. Each session is for one thread at a time; all are rolled back and closed at the end."""
    count = n if engine.dialect.name == "postgresql" else 1
    sessions = [Session(bind=engine) for _ in range(max(1, count))]
    try:
        if len(sessions) > 1:
            first = sessions[0]
            first.execute(text(_READ_ONLY))
            snapshot = first.execute(text("SELECT pg_export_snapshot()")).scalar_one()
            if not _SNAPSHOT_ID.match(snapshot):  # inlined below: SET TRANSACTION SNAPSHOT takes no parameter
                raise ValueError(f"unexpected snapshot id {snapshot!r}")
            for other in sessions[1:]:
                other.execute(text(_READ_ONLY))
                other.execute(text(f"SET TRANSACTION SNAPSHOT '{snapshot}'"))
            for s in sessions:  # the sessions are the parallelism: one core each, no parallel workers
                s.execute(text("SET LOCAL max_parallel_workers_per_gather = 0"))
        yield sessions
    finally:
        for s in sessions:
            s.rollback()
            s.close()
