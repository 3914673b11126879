"""The report's metric queries on several PostgreSQL connections at once (``build_report(parallel=True)``):
the same numbers as on one session, computed on separate server processes that share one snapshot."""

from __future__ import annotations

import contextlib
import random
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from report_builders import DAY, HOUR, T0, World, at
from sqlalchemy import Engine, event, func, insert, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from infra.db import models as m
from infra.db.metrics.snapshot import shared_snapshot
from infra.db.session import make_engine, session_factory
from infra.db.testing import fresh_postgres_database
from infra.report import assemble
from infra.report.assemble import build_report
from posventa.plan import JourneyPlan

STEPS = ("thank_you", "delivery_check", "nps_survey", "review_request", "referral_ask")
EVENTS = ("delivered", "open", "click", "bounce", "unsubscribe")


def _world(s: Session, plans: dict[str, JourneyPlan], n: int = 60) -> None:
    """``n`` customers with orders, enrollments (some converted, some in a split arm), ledger rows with
    webhook events, NPS answers: every metric has something to count."""
    rng = random.Random(7)
    w = World(s, plans)
    for i in range(1, n + 1):
        cid, entered = f"c{i}", at(rng.random() * 20)
        w.order(f"o{i}", cid, entered, f"{20 + i}.00", status="delivered", delivered_at=entered + 2 * DAY)
        status = rng.choice(("active", "waiting", "completed", "converted", "exited"))
        ended = entered + 10 * DAY if status in ("converted", "completed", "exited") else None
        variant = rng.choice((None, "plain", "incentive", "holdout"))
        w.enrollment(i, cid, entered, order_id=f"o{i}", status=status, variant=variant, ended_at=ended)
        if status == "converted":
            w.order(f"r{i}", cid, entered + 5 * DAY, "15.00", status="delivered")
        for k, step in enumerate(STEPS[: rng.randint(1, len(STEPS))]):
            # the first step an hour and i seconds in: one histogram bucket (1% wide) with different values,
            # from enrollments of both parities (a parallel pass is cut by enrollment id)
            reached = entered + k * DAY + HOUR + timedelta(seconds=0 if k else i % 20)
            key = w.ledger(i, step, reached, status=rng.choice(("sent", "sent", "skipped")))
            for j, kind in enumerate(EVENTS):
                if rng.random() < 0.4:
                    w.webhook(key, kind, f"sg-{i}-{k}-{j}")
            if step == "nps_survey" and rng.random() < 0.5:
                w.answer(cid, f"o{i}", rng.randint(0, 10), entered + (k + 1) * DAY, via=key)
    s.commit()


@pytest.mark.parametrize("journey", [None, "post_purchase"])
def test_parallel_report_equals_the_one_session_report(
    engine: Engine, plans: dict[str, JourneyPlan], journey: str | None
) -> None:
    """On both backends (SQLite runs it on the one session): every number, every row, in the same order."""
    factory = session_factory(engine)
    with factory() as s:
        _world(s, plans)
    now = at(40)
    with factory() as s:
        alone = build_report(s, journey=journey, now=now, plans=plans).to_dict()
    with factory() as s:
        together = build_report(s, journey=journey, now=now, plans=plans, parallel=True).to_dict()
    assert alone["funnel"] and alone["nps"]["overall"]["responses"]
    assert together == alone


@pytest.mark.postgres
def test_parallel_queries_run_at_once_on_separate_connections_with_one_snapshot(pg_engine: Engine) -> None:
    """Two queries meet at a barrier (they would time out if they ran one after the other), from two server
    processes, and both see the snapshot of the moment the sessions were opened."""
    meet = threading.Barrier(2, timeout=30)

    def probe(s: Session) -> tuple[int, str]:
        pid = s.execute(select(func.pg_backend_pid())).scalar_one()
        snapshot = s.execute(text("SELECT pg_current_snapshot()::text")).scalar_one()
        meet.wait()
        return pid, snapshot

    with session_factory(pg_engine)() as s:
        found = assemble._run(s, {"a": probe, "b": probe}, parallel=True)
    (pid_a, snap_a), (pid_b, snap_b) = found["a"], found["b"]
    assert pid_a != pid_b
    assert snap_a == snap_b


@pytest.mark.postgres
def test_shared_snapshot_sessions_read_one_instant_and_write_nothing(pg_engine: Engine) -> None:
    with shared_snapshot(pg_engine, 2) as sessions:
        assert len(sessions) == 2
        before = [s.execute(select(func.count()).select_from(m.Customer)).scalar_one() for s in sessions]
        with pg_engine.begin() as conn:  # committed after the snapshot was taken
            conn.execute(insert(m.Customer).values(id="late", email="late@example.com"))
        after = [s.execute(select(func.count()).select_from(m.Customer)).scalar_one() for s in sessions]
        assert after == before == [0, 0]
        with pytest.raises(DBAPIError, match="read-only transaction"):
            sessions[1].execute(insert(m.Customer).values(id="x", email="x@example.com"))
    with session_factory(pg_engine)() as s:
        assert s.execute(select(func.count()).select_from(m.Customer)).scalar_one() == 1


def test_sqlite_gets_one_session(sqlite_engine: Engine) -> None:
    with shared_snapshot(sqlite_engine, 2) as sessions:
        assert len(sessions) == 1


def test_a_parallel_report_sees_the_period_it_is_asked_for(
    engine: Engine, plans: dict[str, JourneyPlan]
) -> None:
    """Filters reach every connection: a period that holds nobody is empty on all of them."""
    factory = session_factory(engine)
    with factory() as s:
        _world(s, plans, n=10)
    with factory() as s:
        report = build_report(
            s, since=T0 - timedelta(days=9), until=T0 - timedelta(days=8), now=at(40), parallel=True
        )
    assert all(j.entered == 0 and not j.steps for j in report.funnel)
    assert report.nps.overall.responses == 0


@pytest.mark.postgres
def test_concurrent_parallel_reports_do_not_starve_a_small_pool() -> None:
    """Two admin page loads at once on a pool of four: each holds its own session's connection, and a
    parallel report takes two more. Both at once would hold two and wait for the rest until the pool timed
    out (found in review); one of them runs on its own session instead, and both answer."""
    with fresh_postgres_database() as url:
        engine = make_engine(url, pool_size=4, max_overflow=0, pool_timeout=3)
        meet = threading.Barrier(2, timeout=5)

        def hold(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            if "pg_export_snapshot" in statement or "FROM customers" in statement:
                with contextlib.suppress(threading.BrokenBarrierError):
                    meet.wait()

        event.listen(engine, "before_cursor_execute", hold)
        factory = session_factory(engine)

        def page_load(_: int) -> Any:
            with factory() as s:
                return build_report(s, now=at(40), parallel=True)  # as the admin: plans read on s

        try:
            with ThreadPoolExecutor(2) as pool:
                futures = [pool.submit(page_load, i) for i in range(2)]
                errors = [f.exception() for f in futures]
        finally:
            engine.dispose()
    assert errors == [None, None], [repr(e)[:160] for e in errors]
