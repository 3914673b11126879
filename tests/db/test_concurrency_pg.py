"""What several workers do at once, on real PostgreSQL (the only backend that supports several): the
claims the sweep really makes (``FOR UPDATE SKIP LOCKED``), the entry rule, and racing ledger inserts."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from db_builders import PLAN, T0, customer, enrollment, ledger_row
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from infra.db.models import LedgerEntry
from infra.db.session import session_factory
from infra.db.store import SqlStore, SqlTx

pytestmark = pytest.mark.postgres


def _no_waiting(s: Session) -> None:
    """Fail fast instead of hanging if a statement would wait on another transaction's lock."""
    s.execute(text("SET LOCAL lock_timeout = '2s'"))


def test_concurrent_due_claims_are_disjoint(pg_engine: Engine) -> None:
    store = SqlStore(session_factory(pg_engine))
    with store.begin() as tx:
        ids = {enrollment(tx, f"k{i}", due=T0 - timedelta(minutes=i)) for i in range(10)}
    now = T0 + timedelta(minutes=1)
    with store.factory() as a, store.factory() as b:
        _no_waiting(a)
        _no_waiting(b)
        got_a = SqlTx(a).enrollments.claim_due(now, 4, None, None, False)  # a's rows stay locked
        got_b = SqlTx(b).enrollments.claim_due(now, 100, None, None, False)  # skipped, not waited for
        ids_a, ids_b = {e.id for e in got_a}, {e.id for e in got_b}
        assert len(ids_a) == 4 and len(ids_b) == 6
        assert ids_a.isdisjoint(ids_b) and ids_a | ids_b == ids
        # a took the four longest overdue, oldest first.
        assert [e.next_due_at for e in got_a] == [T0 - timedelta(minutes=m) for m in (9, 8, 7, 6)]
        a.commit()
        b.commit()
    # The locks were the claim: once the transactions end, the rows are claimable again.
    with store.begin() as tx:
        assert len(tx.enrollments.claim_due(now, 100, None, None, False)) == 10


def test_concurrent_pending_claims_from_threads_are_disjoint(pg_engine: Engine) -> None:
    store = SqlStore(session_factory(pg_engine))
    with store.begin() as tx:
        eid = enrollment(tx, "k1")
        keys = {ledger_row(tx, eid, f"s{i}") for i in range(40)}
    barrier = threading.Barrier(4)
    results: dict[str, list[str]] = {}
    errors: list[BaseException] = []

    def worker(name: str) -> None:
        try:
            mine: list[str] = []
            barrier.wait()
            while True:
                with store.begin() as tx:
                    _no_waiting(tx.session)
                    batch = tx.ledger.claim_pending(T0, 3, None)
                if not batch:
                    break
                mine.extend(w.key for w in batch)
            results[name] = mine
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    claimed = [k for mine in results.values() for k in mine]
    assert sorted(claimed) == sorted(keys)  # each exactly once


def test_entry_rule_holds_between_concurrent_transactions(pg_engine: Engine) -> None:
    factory = session_factory(pg_engine)
    with factory() as s:
        customer(SqlTx(s))
        SqlTx(s).plans.save("post_purchase", "v1", PLAN)
        s.commit()

    def enroll(s: Session) -> int | None:
        return SqlTx(s).enrollments.create("post_purchase", "v1", "c1", "o1", "order:o1", {}, T0, T0)

    with factory() as a:
        assert enroll(a) is not None
        outcome: list[int | None] = []

        def second() -> None:
            with factory() as b:  # blocks on a's uncommitted row, then sees it
                outcome.append(enroll(b))
                b.commit()

        t = threading.Thread(target=second)
        t.start()
        t.join(0.5)
        assert t.is_alive(), "the second insert should wait for the first transaction"
        a.commit()
        t.join(10)
    assert outcome == [None]


def test_racing_ledger_inserts_of_one_effect_yield_one_row(pg_engine: Engine) -> None:
    """Two workers that computed the same effect (the same derived key) insert it at once: one row, and
    only one of them can move it to ``sending``."""
    factory = session_factory(pg_engine)
    with factory.begin() as s:
        eid = enrollment(SqlTx(s), "k1")
    barrier = threading.Barrier(2)
    moved: list[bool] = []

    def worker() -> None:
        with factory() as s:
            tx = SqlTx(s)
            barrier.wait()
            key = ledger_row(tx, eid)
            s.commit()
            moved.append(tx.ledger.mark(key, ["pending"], "sending", now=T0))
            s.commit()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    with factory() as s:
        assert s.scalar(select(func.count()).select_from(LedgerEntry)) == 1
    assert sorted(moved) == [False, True]  # exactly one worker sends
