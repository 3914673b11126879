"""What several workers do at once, on real PostgreSQL (the only backend that supports several)."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from db_builders import PLAN, T0, customer, enrollment
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from infra.db import store
from infra.db.session import session_factory

pytestmark = pytest.mark.postgres


def _no_waiting(s: Session) -> None:
    """Fail fast instead of hanging if a statement would wait on another transaction's lock."""
    s.execute(text("SET LOCAL lock_timeout = '2s'"))


def test_concurrent_claims_are_disjoint(pg_engine: Engine) -> None:
    factory = session_factory(pg_engine)
    with factory() as s:
        ids = {enrollment(s, f"k{i}", due=T0 - timedelta(minutes=i)) for i in range(10)}
        s.commit()

    now = T0 + timedelta(minutes=1)
    with factory() as a, factory() as b:
        _no_waiting(a)
        _no_waiting(b)
        got_a = store.claim_due(a, now, 4, "worker-a")  # a's transaction stays open: rows locked
        got_b = store.claim_due(b, now, 100, "worker-b")  # skips a's rows instead of waiting
        ids_a, ids_b = {e.id for e in got_a}, {e.id for e in got_b}
        assert len(ids_a) == 4 and len(ids_b) == 6
        assert ids_a.isdisjoint(ids_b) and ids_a | ids_b == ids
        # a took the four longest overdue, oldest first.
        due_a = [e.next_due_at for e in got_a]
        assert due_a == [T0 - timedelta(minutes=m) for m in (9, 8, 7, 6)]
        a.commit()
        b.commit()

    with factory() as c:  # every row is leased now
        assert store.claim_due(c, now, 100, "worker-c") == []


def test_concurrent_claims_from_threads(pg_engine: Engine) -> None:
    factory = session_factory(pg_engine)
    with factory() as s:
        ids = {enrollment(s, f"k{i}", due=T0) for i in range(40)}
        s.commit()
    barrier = threading.Barrier(4)
    results: dict[str, list[int]] = {}
    errors: list[BaseException] = []

    def worker(name: str) -> None:
        try:
            with factory() as s:
                _no_waiting(s)
                barrier.wait()
                mine: list[int] = []
                while batch := store.claim_due(s, T0, 3, name):
                    mine.extend(e.id for e in batch)
                    s.commit()
                    _no_waiting(s)
                results[name] = mine
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    claimed = [i for mine in results.values() for i in mine]
    assert sorted(claimed) == sorted(ids)  # each exactly once


def test_entry_rule_holds_between_concurrent_transactions(pg_engine: Engine) -> None:
    factory = session_factory(pg_engine)
    with factory() as s:
        customer(s)
        store.save_plan(s, "post_purchase", "v1", PLAN)
        s.commit()

    def enroll(s: Session) -> int | None:
        return store.create_enrollment(s, "post_purchase", "v1", "c1", "o1", "order:o1", {}, T0, T0)

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


def test_concurrent_reserve_step_yields_one_row(pg_engine: Engine) -> None:
    factory = session_factory(pg_engine)
    with factory() as s:
        eid = enrollment(s, "k1")
        s.commit()
    key = store.ledger_key(eid, "thanks", 0)
    barrier = threading.Barrier(2)
    seen: list[tuple[int, bool]] = []

    def worker() -> None:
        with factory() as s:
            barrier.wait()
            row = store.reserve_step(s, key, eid, "post_purchase", "thanks", 0, "message", {}, "c1")
            moved = store.mark(s, key, "pending", "sending")
            s.commit()
            seen.append((row.id, moved))

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len({row_id for row_id, _ in seen}) == 1
    assert sorted(moved for _, moved in seen) == [False, True]  # exactly one worker sends
