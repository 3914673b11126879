"""The ledger's attempts, leases, history and operator requeues, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from db_builders import T0, enrollment, ledger_row

from app.records import Move, RequeueFilter
from infra.db.store import SqlTx


def _statuses(tx: SqlTx, key: str) -> list[tuple[str, str]]:
    return [(h.status, h.actor) for h in tx.ledger.history(key)]


def test_an_attempts_definitive_answer_wins_over_an_expired_lease(tx: SqlTx) -> None:
    eid = enrollment(tx, "k1")
    sent, failed, ambiguous = (ledger_row(tx, eid, step) for step in ("a", "b", "c"))
    tx.ledger.claim_pending(T0, 10, None, attempt="att-1", lease_until=T0 + timedelta(minutes=5))
    assert tx.ledger.expire_leases(T0 + timedelta(minutes=4)) == 0  # a live attempt is never touched
    assert tx.ledger.expire_leases(T0 + timedelta(minutes=6)) == 3
    # The answers arrive after all: definitive ones are recorded, the ambiguous one stays unknown.
    later = T0 + timedelta(minutes=7)
    moves = [Move(sent, "sent", None, "sg-1"), Move(failed, "failed", "401: revoked key")]
    tx.ledger.mark_many(moves, ("sending", "unknown"), now=later, attempt="att-1")
    tx.ledger.mark_many([Move(ambiguous, "unknown", "500")], ("sending",), now=later, attempt="att-1")
    rows = {k: tx.ledger.get(k) for k in (sent, failed, ambiguous)}
    assert {k: r.status for k, r in rows.items() if r} == {
        sent: "sent",
        failed: "failed",
        ambiguous: "unknown",
    }
    assert _statuses(tx, sent) == [("sending", "deliver"), ("unknown", "reconcile"), ("sent", "deliver")]
    assert [h.attempt_id for h in tx.ledger.history(sent)] == ["att-1"] * 3


def test_a_late_answer_of_an_older_attempt_changes_nothing(tx: SqlTx) -> None:
    eid = enrollment(tx, "k1")
    key = ledger_row(tx, eid)
    tx.ledger.claim_pending(T0, 10, None, attempt="old", lease_until=T0 + timedelta(minutes=1))
    tx.ledger.expire_leases(T0 + timedelta(minutes=2))
    later = T0 + timedelta(hours=1)
    assert tx.ledger.requeue(RequeueFilter(status="unknown"), later, "test") == 1
    tx.ledger.claim_pending(later, 10, None, attempt="new", lease_until=later + timedelta(minutes=5))
    # The first attempt's answer comes back now: it names an attempt the row no longer belongs to.
    tx.ledger.mark_many([Move(key, "failed", "400")], ("sending", "unknown"), now=later, attempt="old")
    assert not tx.ledger.mark(key, ["sending"], "sent", now=later, attempt="old", actor="deliver")
    row = tx.ledger.get(key)
    assert row is not None and row.status == "sending"
    tx.ledger.mark_many([Move(key, "sent", None, "sg-2")], ("sending", "unknown"), now=later, attempt="new")
    assert tx.ledger.get(key).status == "sent"  # type: ignore[union-attr]


def test_lease_renewal_keeps_a_live_attempt_out_of_reach(tx: SqlTx) -> None:
    eid = enrollment(tx, "k1")
    key = ledger_row(tx, eid)
    tx.ledger.claim_pending(T0, 10, None, attempt="att", lease_until=T0 + timedelta(minutes=2))
    assert tx.ledger.renew_lease("att", T0 + timedelta(minutes=10)) == 1
    assert tx.ledger.renew_lease("someone-else", T0 + timedelta(hours=9)) == 0
    assert tx.ledger.expire_leases(T0 + timedelta(minutes=9)) == 0
    assert tx.ledger.expire_leases(T0 + timedelta(minutes=11)) == 1
    assert tx.ledger.get(key).status == "unknown"  # type: ignore[union-attr]
    assert tx.ledger.renew_lease("att", T0 + timedelta(hours=1)) == 0  # no longer sending: no lease


def test_failed_to_pending_is_an_operators_move_only(tx: SqlTx) -> None:
    eid = enrollment(tx, "k1")
    key = ledger_row(tx, eid)
    tx.ledger.claim_pending(T0, 10, None)
    tx.ledger.mark_many([Move(key, "failed", "401: bad key")], ("sending",), now=T0)
    with pytest.raises(ValueError, match="except by an operator"):
        tx.ledger.mark(key, ["failed"], "pending", now=T0, actor="deliver")
    with pytest.raises(ValueError, match="unknown ledger actor"):
        tx.ledger.mark(key, ["failed"], "pending", now=T0, actor="someone")
    assert tx.ledger.mark(key, ["failed"], "pending", now=T0, actor="operator")


def test_requeue_takes_only_rejections_before_acceptance(tx: SqlTx) -> None:
    eid = enrollment(tx, "k1")
    other = enrollment(tx, "k2", customer_id="c2", journey_id="birthday")
    rejected = [ledger_row(tx, eid, f"r{i}") for i in range(3)]
    bounced, delivered, ambiguous = (ledger_row(tx, eid, s) for s in ("bounced", "delivered", "ambiguous"))
    elsewhere = ledger_row(tx, other, "r0", journey_id="birthday")
    tx.ledger.claim_pending(T0, 20, None)
    at = T0 + timedelta(minutes=1)
    tx.ledger.mark_many(
        [Move(k, "failed", "401: The provided authorization grant is invalid") for k in rejected]
        + [Move(elsewhere, "failed", "403: access forbidden")]
        + [Move(k, "sent", None, "sg") for k in (bounced, delivered)]
        + [Move(ambiguous, "unknown", "500: Internal Server Error")],
        ("sending",),
        now=at,
    )
    # The provider had accepted this one after all, and reported a bounce: never requeued.
    tx.ledger.mark(ambiguous, ["unknown"], "failed", "bounce: 550 no such user", now=at)  # webhook evidence
    groups = tx.ledger.requeue_candidates(RequeueFilter())
    assert [(g.journey_id, g.step_id, g.reason, g.count) for g in groups] == [
        ("birthday", "r0", "403: access forbidden", 1),
        *[
            ("post_purchase", f"r{i}", "401: The provided authorization grant is invalid", 1)
            for i in range(3)
        ],
    ]
    assert all(g.oldest == at for g in groups)
    # Filters: journey and step exact, reason a case-insensitive substring, since by status time.
    assert sum(g.count for g in tx.ledger.requeue_candidates(RequeueFilter(journey="birthday"))) == 1
    assert sum(g.count for g in tx.ledger.requeue_candidates(RequeueFilter(step="r0"))) == 2
    assert sum(g.count for g in tx.ledger.requeue_candidates(RequeueFilter(reason="AUTHORIZATION"))) == 3
    assert sum(g.count for g in tx.ledger.requeue_candidates(RequeueFilter(reason="40"))) == 4
    assert sum(g.count for g in tx.ledger.requeue_candidates(RequeueFilter(reason="%"))) == 0  # literal
    assert tx.ledger.requeue_candidates(RequeueFilter(since=at + timedelta(seconds=1))) == []
    later = T0 + timedelta(hours=2)
    assert tx.ledger.requeue(RequeueFilter(reason="401"), later, "posventa retry --reason 401 by ops") == 3
    assert tx.ledger.requeue(RequeueFilter(reason="401"), later, "again") == 0  # each once
    row = tx.ledger.get(rejected[0])
    assert row is not None and (row.status, row.reason) == ("pending", "requeued by an operator (was failed)")
    last = tx.ledger.history(rejected[0])[-1]
    assert (last.status, last.actor) == ("pending", "operator")
    assert last.reason == (
        "posventa retry --reason 401 by ops; was failed: 401: The provided authorization grant is invalid"
    )
    assert [w.key for w in tx.ledger.claim_pending(later, 20, None)] == rejected  # due now
    assert tx.ledger.get(bounced).status == "sent"  # type: ignore[union-attr]
    assert tx.ledger.get(ambiguous).status == "failed"  # type: ignore[union-attr]


def test_unknown_rows_are_counted_and_requeued_only_when_asked(tx: SqlTx) -> None:
    eid = enrollment(tx, "k1")
    keys = [ledger_row(tx, eid, f"s{i}") for i in range(3)]
    tx.ledger.claim_pending(T0, 10, None)
    tx.ledger.mark_many(
        [Move(k, "unknown", "500: Internal Server Error") for k in keys[:2]], ("sending",), now=T0
    )
    assert tx.ledger.count_by_status() == {"unknown": 2, "sending": 1}
    assert tx.ledger.count_by_status(kind="action") == {}
    summary = tx.ledger.unknown_summary()
    assert [(g.journey_id, g.step_id, g.reason, g.count, g.oldest) for g in summary] == [
        ("post_purchase", f"s{i}", "500: Internal Server Error", 1, T0) for i in range(2)
    ]
    assert tx.ledger.requeue_candidates(RequeueFilter()) == []  # failed only by default
    assert tx.ledger.requeue(RequeueFilter(status="unknown", step="s1"), T0, "test") == 1
    assert tx.ledger.count_by_status() == {"unknown": 1, "sending": 1, "pending": 1}
    with pytest.raises(ValueError, match="only failed and unknown"):
        tx.ledger.requeue(RequeueFilter(status="sent"), T0, "test")
