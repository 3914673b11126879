"""The store's repositories on both backends (SQLite file, fresh PostgreSQL database)."""

from __future__ import annotations

from datetime import UTC, timedelta, timezone
from decimal import Decimal

import pytest
from db_builders import PLAN, T0, customer, enrollment, event, ledger_row
from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.orm import Session

from app.records import Move
from infra.db.models import ApiKey, Enrollment, FeedbackResponse, LedgerEntry, Order, StoredEvent
from infra.db.store import SqlTx
from posventa.events import CustomerIn, OrderIn, OrderItem


# --- events, customers, orders --------------------------------------------------------------------------
def test_record_event_is_idempotent(tx: SqlTx, session: Session) -> None:
    e = event("evt-1", occurred_at=T0.astimezone(timezone(timedelta(hours=2))))
    assert tx.events.record(e, "api") is True
    assert tx.events.record(e, "api") is False
    assert tx.events.record(e, "import") is False  # the id decides, not the source
    session.commit()
    rows = session.scalars(select(StoredEvent)).all()
    assert [r.id for r in rows] == ["evt-1"]
    assert rows[0].occurred_at == T0 and rows[0].occurred_at.tzinfo is not None
    assert rows[0].order_id == "o1"


def test_events_for_customers_in_order_within_the_window(tx: SqlTx) -> None:
    tx.events.record(event("b", occurred_at=T0 + timedelta(hours=1)), "api")
    tx.events.record(event("a", occurred_at=T0), "api")
    tx.events.record(event("late", occurred_at=T0 + timedelta(days=2)), "api")
    tx.events.record(event("other", customer_id="c2"), "api")
    found = tx.events.for_customers(["c1", "c2"], T0, T0 + timedelta(days=1))
    assert {cid: [e["id"] for e in evs] for cid, evs in found.items()} == {"c1": ["a", "b"], "c2": ["other"]}
    assert found["c1"][0]["occurred_at"] == T0 and found["c1"][0]["data"] == {}
    later = tx.events.for_customers(["c1"], T0 + timedelta(minutes=1), T0 + timedelta(days=1))
    assert [e["id"] for e in later["c1"]] == ["b"]


def test_event_data_can_be_corrected(tx: SqlTx) -> None:
    tx.events.record(event("s1", "feedback.submitted", data={"score": 3}), "api")
    assert tx.events.data("s1") == {"score": 3, "survey": "nps"}
    tx.events.set_data("s1", {"score": 9})
    assert tx.events.data("s1") == {"score": 9}
    assert tx.events.data("nope") is None


def test_unknown_source_is_refused(tx: SqlTx) -> None:
    with pytest.raises(ValueError, match="event source"):
        tx.events.record(event("x"), "carrier-pigeon")


def test_upsert_customer_updates_only_what_was_sent(tx: SqlTx, session: Session) -> None:
    tx.customers.upsert(CustomerIn(id="c1", email="Ana@Example.com", name="Ana", attributes={"tier": "gold"}))
    c = tx.customers.fact("c1")
    assert c is not None and (c["locale"], c["consent_email"], c["email"]) == ("es", True, "Ana@Example.com")
    session.commit()
    tx.customers.upsert(CustomerIn(id="c1", locale="en", consent_email=False, attributes={"city": "Vigo"}))
    c = tx.customers.fact("c1")
    assert c is not None
    assert (c["name"], c["email"], c["locale"], c["consent_email"]) == ("Ana", "Ana@Example.com", "en", False)
    assert c["attributes"] == {"tier": "gold", "city": "Vigo"}
    tx.customers.merge_attributes("c1", {"nps_segment": "promoter"})
    assert tx.customers.facts(["c1", "ghost"])["c1"]["attributes"]["nps_segment"] == "promoter"
    assert tx.customers.find_by_email(" ANA@example.com") == "c1"
    assert tx.customers.ensure("c1") is False and tx.customers.ensure("c2") is True


def test_upsert_order_and_status_only_advances(tx: SqlTx, session: Session) -> None:
    order = OrderIn(id="o1", total=19.9, currency="eur", items=[OrderItem(sku="CEP-1", consumable=True)])
    tx.orders.upsert("c9", order, T0)  # creates the bare customer c9
    o = tx.orders.fact("o1")
    assert o is not None and o["total"] == 19.9 and o["currency"] == "EUR" and o["status"] == "placed"
    assert o["items"] == [{"sku": "CEP-1", "name": "", "quantity": 1, "consumable": True}]
    assert session.get(Order, "o1").total == Decimal("19.90")  # type: ignore[union-attr]
    session.commit()
    tx.orders.upsert("c9", OrderIn(id="o1", tracking_url="https://t.example/1"), T0 + timedelta(1))
    o = tx.orders.fact("o1")
    assert o is not None and o["placed_at"] == T0.isoformat() and o["tracking_url"] == "https://t.example/1"
    assert tx.orders.set_status("o1", "delivered", T0 + timedelta(days=3)) is True
    assert tx.orders.set_status("o1", "shipped", T0 + timedelta(days=1)) is False  # late event
    tx.orders.upsert("c9", OrderIn(id="o1"), T0)
    o = tx.orders.fact("o1")
    assert o is not None and o["status"] == "delivered"
    assert o["shipped_at"] == (T0 + timedelta(days=1)).isoformat()
    assert o["delivered_at"] == (T0 + timedelta(days=3)).isoformat()
    assert tx.orders.set_status("nope", "shipped", T0) is False
    tx.orders.ensure("o2", "c9", T0)
    tx.orders.set_status("o2", "canceled", T0)
    assert [o["id"] for _, o in tx.orders.live_facts()] == ["o1"]
    assert tx.orders.count_by_customer(["c9", "c1"]) == {"c9": 2}


def test_naive_datetimes_are_refused(tx: SqlTx) -> None:
    customer(tx)
    with pytest.raises((ValueError, StatementError)):
        tx.enrollments.create("j", "v1", "c1", None, "k", {}, None, T0.replace(tzinfo=None))


# --- plans and enrollments ------------------------------------------------------------------------------
def test_save_plan_is_idempotent(tx: SqlTx) -> None:
    assert tx.plans.save("post_purchase", "v1", PLAN) is True
    assert tx.plans.save("post_purchase", "v1", PLAN) is False
    assert tx.plans.save("post_purchase", "v2", {"steps": []}) is True
    assert tx.plans.get("post_purchase", "v1") == PLAN
    assert tx.plans.get("post_purchase", "v9") is None


def test_unique_entry_rule(tx: SqlTx, session: Session) -> None:
    first = enrollment(tx, "order:o1")
    assert tx.enrollments.create("post_purchase", "v1", "c1", "o1", "order:o1", {}, T0, T0) is None
    other = tx.enrollments.create("post_purchase", "v1", "c1", "o2", "order:o2", {}, T0, T0)
    assert other is not None and other != first
    session.commit()
    assert [e.id for e in tx.enrollments.for_customer("c1")] == [first, other]
    assert tx.enrollments.count("post_purchase", "c1") == 2
    assert tx.enrollments.last_entered("post_purchase", "c1") == T0
    assert tx.enrollments.last_entered("birthday", "c1") is None


def test_enrollment_needs_a_saved_plan_and_a_customer(tx: SqlTx, session: Session) -> None:
    """Foreign keys are enforced on both backends (SQLite: PRAGMA foreign_keys=ON)."""
    customer(tx)
    with pytest.raises(IntegrityError):
        tx.enrollments.create("post_purchase", "never-saved", "c1", None, "k", {}, T0, T0)
    session.rollback()
    tx.plans.save("post_purchase", "v1", PLAN)
    with pytest.raises(IntegrityError):
        tx.enrollments.create("post_purchase", "v1", "ghost", None, "k", {}, T0, T0)


def test_claim_due_picks_due_live_rows_in_order(tx: SqlTx, session: Session) -> None:
    later = enrollment(tx, "k-later", due=T0 + timedelta(minutes=5))
    first = enrollment(tx, "k-first", due=T0 - timedelta(hours=1))
    enrollment(tx, "k-future", due=T0 + timedelta(days=1))
    done = enrollment(tx, "k-done", due=T0)
    tx.enrollments.save_state(done, {}, "completed", None, T0)
    enrollment(tx, "k-other-journey", journey_id="birthday", due=T0)
    session.commit()
    now = T0 + timedelta(minutes=10)
    assert [e.id for e in tx.enrollments.claim_due(now, 10, "post_purchase", None, False)] == [first, later]
    assert tx.enrollments.count_due(now, "post_purchase") == 2 and tx.enrollments.count_due(now, None) == 3
    assert [e.journey_id for e in tx.enrollments.claim_due(now, 1, None, None, False)] == ["post_purchase"]
    forced = tx.enrollments.claim_due(now, 10, "post_purchase", "c1", True)
    assert len(forced) == 3  # force: due or not, but live only


def test_wake_makes_live_enrollments_due_now(tx: SqlTx) -> None:
    waiting = enrollment(tx, "k1", due=T0 + timedelta(days=7))
    done = enrollment(tx, "k2", due=None)
    tx.enrollments.save_state(done, {"step": None}, "completed", None, T0)
    tx.enrollments.wake("c1", T0)
    rows = {e.id: e for e in tx.enrollments.for_customer("c1")}
    assert rows[waiting].next_due_at == T0 and rows[done].next_due_at is None


def test_failures_count_and_success_resets(tx: SqlTx) -> None:
    eid = enrollment(tx, "k1")
    tx.enrollments.record_failure(eid, 2, "boom again", "active", T0 + timedelta(minutes=20))
    [row] = tx.enrollments.for_customer("c1")
    assert (row.attempts, row.last_error, row.next_due_at) == (2, "boom again", T0 + timedelta(minutes=20))
    tx.enrollments.save_state(eid, {"step": None}, "completed", None, T0)
    [row] = tx.enrollments.for_customer("c1")
    assert (row.attempts, row.last_error, row.status, row.state) == (0, None, "completed", {"step": None})
    assert tx.session.get(Enrollment, eid).ended_at == T0  # type: ignore[union-attr]


def test_states_for_customer_live_and_ended(tx: SqlTx) -> None:
    live = enrollment(tx, "k1")
    ended = enrollment(tx, "k2")
    tx.enrollments.save_state(live, {"consumed": ["a"]}, "waiting", T0, None)
    tx.enrollments.save_state(ended, {"consumed": ["b"]}, "exited", None, T0)
    states = tx.enrollments.states_for_customer("c1", lock_live=True)
    assert sorted(st["consumed"][0] for st in states) == ["a", "b"]


# --- ledger ----------------------------------------------------------------------------------------------
def test_ledger_insert_twice_keeps_the_first_row(tx: SqlTx, session: Session) -> None:
    eid = enrollment(tx, "k1")
    key = ledger_row(tx, eid, payload={"subject": "Gracias"})
    session.commit()
    ledger_row(tx, eid, payload={"subject": "changed"})  # a recomputed effect: same key, nothing new
    rows = session.scalars(select(LedgerEntry)).all()
    assert [(r.key, r.payload) for r in rows] == [(key, {"subject": "Gracias"})]


def test_claim_pending_marks_sending_and_counts_the_attempt(tx: SqlTx) -> None:
    eid = enrollment(tx, "k1")
    k1 = ledger_row(tx, eid, "a")
    k2 = ledger_row(tx, eid, "b", not_before=T0 + timedelta(hours=1))
    work = tx.ledger.claim_pending(T0, 10, None)
    assert [(w.key, w.kind, w.payload) for w in work] == [(k1, "message", {"locale": "es"})]
    row = tx.ledger.get(k1)
    assert row is not None and row.status == "sending" and row.updated_at == T0
    assert tx.ledger.claim_pending(T0, 10, None) == []  # nothing pending is due any more
    assert [w.key for w in tx.ledger.claim_pending(T0 + timedelta(hours=1), 10, "c1")] == [k2]


def test_guarded_transitions_only_move_forward(tx: SqlTx) -> None:
    eid = enrollment(tx, "k1")
    key = ledger_row(tx, eid)
    assert tx.ledger.mark(key, ["pending"], "sending", now=T0) is True
    assert tx.ledger.mark(key, ["pending"], "sending", now=T0) is False  # a racing worker loses
    assert tx.ledger.mark(key, ["sending"], "sent", provider_message_id="sg-1", now=T0) is True
    row = tx.ledger.get(key)
    assert row is not None and (row.status, row.sent_at) == ("sent", T0)
    # Nothing moves a sent message back or sideways.
    assert tx.ledger.mark(key, ["pending", "sending"], "failed", reason="late", now=T0) is False
    assert tx.ledger.mark(key, ["unknown"], "failed", now=T0) is False
    for src, dst in [("sent", "pending"), ("sent", "sending"), ("failed", "pending")]:
        with pytest.raises(ValueError, match="cannot move"):
            tx.ledger.mark(key, [src], dst, now=T0)
    with pytest.raises(ValueError, match="empty"):
        tx.ledger.mark(key, [], "sent", now=T0)
    assert tx.ledger.get(key).status == "sent"  # type: ignore[union-attr]


def test_reconciling_stuck_and_unknown_rows(tx: SqlTx) -> None:
    eid = enrollment(tx, "k1")
    stuck = ledger_row(tx, eid, "a")
    hook = ledger_row(tx, eid, "hook", kind="action", channel=None, template=None, category=None)
    tx.ledger.claim_pending(T0, 10, None, lease_until=T0 + timedelta(minutes=15))
    tx.ledger.mark(hook, ["sending"], "unknown", reason="webhook: ReadTimeout", now=T0)
    # The worker died mid-call: the row stays "sending" until its lease runs out, then becomes unknown.
    assert tx.ledger.expire_leases(T0 + timedelta(minutes=14)) == 0
    later = T0 + timedelta(minutes=30)
    assert tx.ledger.expire_leases(later) == 1
    assert tx.ledger.get(stuck).status == "unknown"  # type: ignore[union-attr]
    # Unknown rows past the (opt-in) window go back to pending, messages and webhooks alike.
    assert tx.ledger.release_unknown(later - timedelta(hours=1), later) == 0
    assert tx.ledger.release_unknown(later, later) == 1  # the webhook row (unknown since T0)
    assert tx.ledger.get(hook).status == "pending"  # type: ignore[union-attr]
    assert tx.ledger.mark(stuck, ["unknown"], "sent", provider_message_id="sg-found", now=later)


def test_recent_promotional_and_report_rows(tx: SqlTx) -> None:
    eid = enrollment(tx, "k1")
    ledger_row(tx, eid, "promo", category="promotional", created_at=T0 - timedelta(days=2))
    ledger_row(tx, eid, "old", category="promotional", created_at=T0 - timedelta(days=90))
    ledger_row(tx, eid, "skip", category="promotional", status="skipped")
    ledger_row(tx, eid, "tx")
    assert tx.ledger.recent_promotional(["c1", "c2"], T0 - timedelta(days=60)) == {
        "c1": [T0 - timedelta(days=2)]
    }
    assert [r.step_id for r in tx.ledger.for_customer("c1")] == ["promo", "old", "skip", "tx"]
    tx.ledger.claim_pending(T0, 10, None)
    tx.ledger.mark(f"{eid}:tx:0", ["sending"], "sent", now=T0)
    assert [r.step_id for r in tx.ledger.sent_messages()] == ["tx"]


def test_mark_many_moves_only_rows_still_in_the_source_status(tx: SqlTx, session: Session) -> None:
    eid = enrollment(tx, "mm")
    keys = [ledger_row(tx, eid, f"s{i}") for i in range(3)]
    tx.ledger.claim_pending(T0, 10, None)
    assert tx.ledger.mark(keys[2], ["sending"], "sent", provider_message_id="first", now=T0)
    later = T0 + timedelta(minutes=5)
    tx.ledger.mark_many(
        [
            Move(keys[0], "sent", None, "sg-0"),
            Move(keys[1], "pending", "429", None, later),
            Move(keys[2], "sent", None, "sg-2"),  # already sent: untouched
        ],
        ("sending",),
        now=later,
    )
    session.expire_all()
    rows = {r.key: r for r in session.scalars(select(LedgerEntry).where(LedgerEntry.key.in_(keys)))}
    assert (rows[keys[0]].status, rows[keys[0]].provider_message_id, rows[keys[0]].sent_at) == (
        "sent",
        "sg-0",
        later,
    )
    assert (rows[keys[1]].status, rows[keys[1]].reason, rows[keys[1]].not_before) == ("pending", "429", later)
    assert (rows[keys[2]].status, rows[keys[2]].provider_message_id) == ("sent", "first")
    with pytest.raises(ValueError, match="cannot move"):
        tx.ledger.mark_many([Move(keys[0], "pending")], ("sent",), now=later)


# --- suppressions ----------------------------------------------------------------------------------------
def test_suppression_lookup_by_scope(tx: SqlTx) -> None:
    s = tx.suppressions
    customer(tx, "c1", email="Ana@Example.com")
    assert s.suppress("ANA@example.com ", "unsubscribed", scope="promotional", source="link")
    assert s.suppress("ana@example.com", "unsubscribed", scope="promotional") is False
    assert s.is_suppressed("ana@EXAMPLE.com", promotional=True) == "unsubscribed"
    assert s.is_suppressed("ana@example.com", promotional=False) is None
    # Widened to everything, never narrowed back.
    assert s.suppress("ana@example.com", "unsubscribed", scope="all") is True
    assert s.suppress("ana@example.com", "unsubscribed", scope="promotional") is False
    assert s.is_suppressed("ana@example.com", promotional=False) == "unsubscribed"
    assert s.suppress("bob@example.com", "bounced", customer_id="c2", source="sendgrid")
    assert s.is_suppressed("bob@example.com", promotional=False) == "bounced"
    assert s.is_suppressed("carla@example.com", promotional=True) is None
    assert [x.reason for x in s.for_customer("c1")] == ["unsubscribed"]
    assert [x.email for x in s.for_customer("c2")] == ["bob@example.com"]
    assert s.scopes(["Ana@Example.com", "bob@example.com", "x@example.com"]) == {
        "ana@example.com": {"all": "unsubscribed"},
        "bob@example.com": {"all": "bounced"},
    }
    with pytest.raises(ValueError, match="scope"):
        s.suppress("x@example.com", "manual", scope="some")


# --- feedback --------------------------------------------------------------------------------------------
def test_feedback_answering_twice_updates(tx: SqlTx, session: Session) -> None:
    f = tx.feedback
    first = f.save("c1", "o1", "nps", 6, "meh")
    session.commit()
    second = f.save("c1", "o1", "nps", 9, "better now")
    assert (second.score, second.comment) == (9, "better now") and first.score == 6
    f.save("c1", "o1", "product", 10, None)
    f.save("c1", None, "service", 3, "slow")
    no_order_again = f.save("c1", None, "service", 7, None)
    assert no_order_again.score == 7 and f.get("c1", None, "service") == no_order_again
    assert len(session.scalars(select(FeedbackResponse)).all()) == 3
    assert f.get("c1", "o9", "nps") is None
    assert f.for_customers(["c1"])[("c1", None)] == {"score": 7, "comment": None, "survey": "service"}
    with pytest.raises(ValueError, match="score"):
        f.save("c1", "o1", "nps", 11, None)


# --- tickets ---------------------------------------------------------------------------------------------
def test_tickets(tx: SqlTx) -> None:
    t = tx.tickets
    assert t.has_open_complaint("c1") is False
    assert t.open("zd-1", "c1", "o1", "Broken", "complaint", "external", T0)
    assert t.open("zd-1", "c1", "o1", "Broken", "complaint", "external", T0) is False
    assert t.open("zd-2", "c2", None, "How to", "support", "external")
    assert t.has_open_complaint("c1") is True and t.open_complaints(["c1", "c2"]) == {"c1"}
    assert t.resolve("zd-1", T0 + timedelta(hours=3)) is True
    assert t.resolve("zd-1", T0 + timedelta(hours=4)) is False
    assert t.has_open_complaint("c1") is False


# --- referrals -------------------------------------------------------------------------------------------
def test_referral_attribution_is_idempotent_and_not_self(tx: SqlTx, session: Session) -> None:
    r = tx.referrals
    customer(tx, "c1")
    code = r.code_for("c1", "post_purchase")
    assert len(code) == 8 and code.isalnum() and code.isupper()
    assert r.code_for("c1", "another_journey") == code
    assert r.code_for("c2", None) != code
    session.commit()
    assert r.owner(code.lower()) == "c1"
    assert r.attribute(code.lower(), "o-100", "c7") is True
    assert r.attribute(code, "o-100", "c7") is False  # same order again
    assert r.attribute(code, "o-101", "c1") is False  # self-referral
    assert r.attribute("NOPE2345", "o-102", "c8") is False  # unknown code
    figures = r.figures()
    assert figures.conversions_by_code == {code: (1, 0.0)} and len(figures.codes) == 2


# --- webhooks and API keys -------------------------------------------------------------------------------
def test_provider_events_are_deduplicated(tx: SqlTx) -> None:
    args = ("delivered", "1:thanks:0", "Ana@Example.com", T0, {"sg_message_id": "x"})
    assert tx.provider_events.record("sg-evt-1", *args) is True
    assert tx.provider_events.record("sg-evt-1", *args) is False


def test_api_key_is_stored_hashed(tx: SqlTx, session: Session) -> None:
    key = tx.api_keys.create("tienda-1", "ERP")
    assert key.startswith("pv_") and len(key) > 40
    assert tx.api_keys.check(key) == "tienda-1"
    assert tx.api_keys.check(key + "x") is None
    stored = session.scalars(select(ApiKey)).one()
    assert stored.key_hash != key and len(stored.key_hash) == 64 and key not in stored.key_hash
    assert tx.api_keys.revoke(key) is True
    assert tx.api_keys.check(key) is None


# --- types -----------------------------------------------------------------------------------------------
def test_instants_come_back_aware_in_utc(engine: Engine, tx: SqlTx, session: Session) -> None:
    madrid_summer = timezone(timedelta(hours=2))
    eid = enrollment(tx, "k1", due=T0.astimezone(madrid_summer))
    session.commit()
    session.expunge_all()
    row = session.get(Enrollment, eid)
    assert row is not None and row.next_due_at is not None
    assert row.next_due_at == T0 and row.next_due_at.utcoffset() == timedelta(0)
    assert row.next_due_at.tzinfo in (UTC, timezone.utc)  # noqa: UP017
