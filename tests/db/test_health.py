"""The read-only figures for ops (``tx.health``) on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from db_builders import T0, enrollment, ledger_row

from infra.db.store import SqlTx


def test_backlog_counts_live_due_enrollments_and_the_oldest(tx: SqlTx) -> None:
    assert tx.health.backlog(T0) == (0, None)
    enrollment(tx, "a", due=T0 - timedelta(hours=3))
    enrollment(tx, "b", due=T0 - timedelta(minutes=5))
    enrollment(tx, "c", due=T0 + timedelta(days=1))  # waiting: not due yet
    enrollment(tx, "d", due=None)  # nothing scheduled
    ended = enrollment(tx, "e", due=T0 - timedelta(days=9))
    tx.enrollments.save_state(ended, {}, "completed", T0 - timedelta(days=9), T0)
    tx.session.commit()
    assert tx.health.backlog(T0) == (2, T0 - timedelta(hours=3))


def test_ledger_counts_and_reasons_grouped_per_step(tx: SqlTx) -> None:
    e = enrollment(tx, "a")
    bad_key = "401: invalid key"
    ledger_row(tx, e, "s1", status="failed", reason=bad_key, updated_at=T0)
    ledger_row(tx, e, "s2", status="failed", reason=bad_key, updated_at=T0)
    ledger_row(tx, e, "s3", status="failed", reason="400: bad address", updated_at=T0 - timedelta(hours=1))
    ledger_row(tx, e, "s4", status="unknown", reason="500: oops", updated_at=T0)
    ledger_row(tx, e, "s5", status="sent", updated_at=T0)
    tx.session.commit()
    assert tx.health.ledger_counts(("unknown", "failed", "pending")) == {
        "unknown": 1,
        "failed": 3,
        "pending": 0,
    }
    # Those that reached their status in the last half hour (a status probe's window).
    recent = tx.health.ledger_counts(("unknown", "failed"), since=T0 - timedelta(minutes=30))
    assert recent == {"unknown": 1, "failed": 2}
    every = tx.health.reasons(("failed", "unknown"))
    assert sorted(every) == sorted(
        [
            ("post_purchase", "s1", "failed", bad_key, 1),
            ("post_purchase", "s2", "failed", bad_key, 1),
            ("post_purchase", "s3", "failed", "400: bad address", 1),
            ("post_purchase", "s4", "unknown", "500: oops", 1),
        ]
    )
    # A run's own rows: those it stamped with its `now`.
    assert {r[1] for r in tx.health.reasons(("failed",), moved_at=T0)} == {"s1", "s2"}
    assert tx.health.reasons(("failed",), moved_at=T0 + timedelta(microseconds=1)) == []
