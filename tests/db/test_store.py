"""The store functions on both backends (SQLite file, fresh PostgreSQL database)."""

from __future__ import annotations

from datetime import UTC, timedelta, timezone
from decimal import Decimal

import pytest
from db_builders import PLAN, T0, customer, enrollment, event
from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.orm import Session

from infra.db import store
from infra.db.models import ApiKey, Enrollment, FeedbackResponse, LedgerEntry
from posventa.events import CustomerIn, OrderIn, OrderItem


# --- events, customers, orders --------------------------------------------------------------------------
def test_record_event_is_idempotent(session: Session) -> None:
    e = event("evt-1", occurred_at=T0.astimezone(timezone(timedelta(hours=2))))
    assert store.record_event(session, e, "api") is True
    assert store.record_event(session, e, "api") is False
    assert store.record_event(session, e, "import") is False  # the id decides, not the source
    session.commit()
    rows = store.events_for(session, "c1")
    assert [r.id for r in rows] == ["evt-1"]
    assert rows[0].occurred_at == T0 and rows[0].occurred_at.tzinfo is not None
    assert rows[0].order_id == "o1"
    assert [r.id for r in store.unprocessed_events(session)] == ["evt-1"]
    assert store.mark_event_processed(session, "evt-1", T0) is True
    assert store.mark_event_processed(session, "evt-1", T0) is False
    assert store.unprocessed_events(session) == []


def test_events_for_orders_by_occurrence_and_filters_since(session: Session) -> None:
    store.record_event(session, event("b", occurred_at=T0 + timedelta(hours=1)), "api")
    store.record_event(session, event("a", occurred_at=T0), "api")
    store.record_event(session, event("other", customer_id="c2"), "api")
    assert [r.id for r in store.events_for(session, "c1")] == ["a", "b"]
    assert [r.id for r in store.events_for(session, "c1", since=T0 + timedelta(minutes=1))] == ["b"]


def test_unknown_source_is_refused(session: Session) -> None:
    with pytest.raises(ValueError, match="event source"):
        store.record_event(session, event("x"), "carrier-pigeon")


def test_upsert_customer_updates_only_what_was_sent(session: Session) -> None:
    c = store.upsert_customer(
        session, CustomerIn(id="c1", email="Ana@Example.com", name="Ana", attributes={"tier": "gold"})
    )
    assert (c.locale, c.consent_email, c.email) == ("es", True, "Ana@Example.com")
    session.commit()
    c = store.upsert_customer(
        session, CustomerIn(id="c1", locale="en", consent_email=False, attributes={"city": "Vigo"})
    )
    assert (c.name, c.email, c.locale, c.consent_email) == ("Ana", "Ana@Example.com", "en", False)
    assert c.attributes == {"tier": "gold", "city": "Vigo"}


def test_upsert_order_and_status_only_advances(session: Session) -> None:
    order = OrderIn(id="o1", total=19.9, currency="eur", items=[OrderItem(sku="CEP-1", consumable=True)])
    o = store.upsert_order(session, "c9", order, T0)  # creates the bare customer c9
    assert o.total == Decimal("19.90") and o.currency == "EUR" and o.status == "placed"
    assert o.items == [{"sku": "CEP-1", "name": "", "quantity": 1, "consumable": True}]
    session.commit()
    o = store.upsert_order(
        session, "c9", OrderIn(id="o1", tracking_url="https://t.example/1"), T0 + timedelta(1)
    )
    assert o.placed_at == T0 and o.tracking_url == "https://t.example/1" and o.total == Decimal("19.90")
    assert store.set_order_status(session, "o1", "delivered", T0 + timedelta(days=3)) is True
    assert store.set_order_status(session, "o1", "shipped", T0 + timedelta(days=1)) is False  # late event
    o = store.upsert_order(session, "c9", OrderIn(id="o1"), T0)
    assert o.status == "delivered"
    assert o.shipped_at == T0 + timedelta(days=1) and o.delivered_at == T0 + timedelta(days=3)
    assert store.set_order_status(session, "nope", "shipped", T0) is False


def test_naive_datetimes_are_refused(session: Session) -> None:
    customer(session)
    with pytest.raises((ValueError, StatementError)):
        store.create_enrollment(session, "j", "v1", "c1", None, "k", {}, None, T0.replace(tzinfo=None))


# --- plans and enrollments ------------------------------------------------------------------------------
def test_save_plan_is_idempotent(session: Session) -> None:
    assert store.save_plan(session, "post_purchase", "v1", PLAN) is True
    assert store.save_plan(session, "post_purchase", "v1", PLAN) is False
    assert store.save_plan(session, "post_purchase", "v2", '{"steps": []}') is True
    assert store.get_plan(session, "post_purchase", "v1") == PLAN
    assert store.get_plan(session, "post_purchase", "v9") is None


def test_unique_entry_rule(session: Session) -> None:
    first = enrollment(session, "order:o1")
    again = store.create_enrollment(session, "post_purchase", "v1", "c1", "o1", "order:o1", {}, T0, T0)
    assert again is None
    other = store.create_enrollment(session, "post_purchase", "v1", "c1", "o2", "order:o2", {}, T0, T0)
    assert other is not None and other != first
    session.commit()
    assert len(store.enrollments_for(session, "c1")) == 2


def test_enrollment_needs_a_saved_plan_and_a_customer(session: Session) -> None:
    """Foreign keys are enforced on both backends (SQLite: PRAGMA foreign_keys=ON)."""
    customer(session)
    with pytest.raises(IntegrityError):
        store.create_enrollment(session, "post_purchase", "never-saved", "c1", None, "k", {}, T0, T0)
    session.rollback()
    store.save_plan(session, "post_purchase", "v1", PLAN)
    with pytest.raises(IntegrityError):
        store.create_enrollment(session, "post_purchase", "v1", "ghost", None, "k", {}, T0, T0)


def test_claim_due_picks_due_live_rows_in_order(session: Session) -> None:
    later = enrollment(session, "k-later", due=T0 + timedelta(minutes=5))
    first = enrollment(session, "k-first", due=T0 - timedelta(hours=1))
    enrollment(session, "k-future", due=T0 + timedelta(days=1))
    enrollment(session, "k-done", status="active", due=T0)
    done_id = store.enrollments_for(session, "c1")[-1].id
    store.release(session, done_id, {}, "completed", None)
    enrollment(session, "k-other-journey", journey_id="birthday", due=T0)
    session.commit()

    now = T0 + timedelta(minutes=10)
    claimed = store.claim_due(session, now, 10, "w1", journey_id="post_purchase")
    assert [e.id for e in claimed] == [first, later]
    assert all(e.claimed_by == "w1" and e.claimed_until == now + timedelta(minutes=10) for e in claimed)
    session.commit()
    # Leased: nobody else gets them until the lease runs out.
    assert store.claim_due(session, now, 10, "w2", journey_id="post_purchase") == []
    assert [e.journey_id for e in store.claim_due(session, now, 10, "w2")] == ["birthday"]
    session.commit()


def test_expired_lease_is_reclaimable(session: Session) -> None:
    eid = enrollment(session, "k1")
    session.commit()
    assert [e.id for e in store.claim_due(session, T0, 5, "dead-worker", lease=timedelta(minutes=1))] == [eid]
    session.commit()
    assert store.claim_due(session, T0 + timedelta(seconds=59), 5, "w2") == []
    session.commit()
    reclaimed = store.claim_due(session, T0 + timedelta(minutes=2), 5, "w2")
    assert [(e.id, e.claimed_by) for e in reclaimed] == [(eid, "w2")]
    session.commit()
    # The dead worker comes back: its release no longer applies.
    assert store.release(session, eid, {"x": 1}, "waiting", T0, worker_id="dead-worker") is False
    assert store.release(session, eid, {"x": 2}, "waiting", T0 + timedelta(days=7), worker_id="w2") is True
    session.commit()
    row = session.get(Enrollment, eid)
    assert row is not None
    assert (row.state, row.status, row.claimed_by, row.claimed_until) == ({"x": 2}, "waiting", None, None)
    assert row.next_due_at == T0 + timedelta(days=7)


def test_release_counts_errors_and_ends(session: Session) -> None:
    eid = enrollment(session, "k1")
    store.release(session, eid, {}, "active", T0, error="boom")
    store.release(session, eid, {}, "active", T0, error="boom again")
    row = session.get(Enrollment, eid)
    assert row is not None and (row.attempts, row.last_error, row.ended_at) == (2, "boom again", None)
    store.release(session, eid, {}, "completed", None, now=T0)
    assert (row.attempts, row.last_error, row.status, row.ended_at) == (0, None, "completed", T0)


# --- ledger ----------------------------------------------------------------------------------------------
def _reserve(s: Session, eid: int, payload: dict[str, object] | None = None) -> LedgerEntry:
    return store.reserve_step(
        s, store.ledger_key(eid, "thanks", 0), eid, "post_purchase", "thanks", 0, "message",
        payload or {"subject": "Gracias"}, "c1", to_email="c1@example.com", channel="email",
        template="thanks", category="transactional",
    )  # fmt: skip


def test_reserve_step_twice_returns_the_same_row(session: Session) -> None:
    eid = enrollment(session, "k1")
    first = _reserve(session, eid)
    session.commit()
    again = _reserve(session, eid, {"subject": "changed"})
    assert again.id == first.id and again.status == "pending" and again.payload == {"subject": "Gracias"}
    assert session.scalars(select(LedgerEntry)).all() == [again]
    with pytest.raises(ValueError, match="not derived"):
        store.reserve_step(session, "random-key", eid, "post_purchase", "thanks", 0, "message", {}, "c1")


def test_guarded_transitions_only_move_forward(session: Session) -> None:
    eid = enrollment(session, "k1")
    key = _reserve(session, eid).key
    assert store.mark(session, key, ["pending"], "sending") is True
    assert store.mark(session, key, ["pending"], "sending") is False  # a racing worker loses
    assert store.mark(session, key, "sending", "sent", provider_message_id="sg-1", now=T0) is True
    row = store.get_ledger_entry(session, key)
    assert row is not None
    assert (row.status, row.attempts, row.provider_message_id, row.sent_at) == ("sent", 1, "sg-1", T0)
    # Nothing moves a sent message back or sideways.
    assert store.mark(session, key, ["pending", "sending"], "failed", reason="late") is False
    assert store.mark(session, key, ["unknown"], "failed") is False
    backwards = [("sent", "pending"), ("sent", "sending"), ("failed", "pending")]
    for src, dst in backwards:
        with pytest.raises(ValueError, match="cannot move"):
            store.mark(session, key, [src], dst)
    assert store.get_ledger_entry(session, key).status == "sent"  # type: ignore[union-attr]


def test_ambiguous_and_retry_paths(session: Session) -> None:
    eid = enrollment(session, "k1")
    key = _reserve(session, eid).key
    store.mark(session, key, "pending", "sending", now=T0)
    # A definite transient refusal (429): back to pending, not before the retry time.
    retry_at = T0 + timedelta(minutes=5)
    assert store.mark(session, key, "sending", "pending", reason="429", not_before=retry_at, now=T0)
    assert store.mark(session, key, "pending", "sending", now=retry_at)
    row = store.get_ledger_entry(session, key)
    assert row is not None and (row.attempts, row.not_before) == (2, retry_at)
    # The worker dies mid-call: the row stays "sending" and is found as stale, then marked unknown.
    assert [r.key for r in store.stale_sending(session, T0 + timedelta(minutes=30))] == [key]
    assert store.stale_sending(session, retry_at) == []
    assert store.mark(session, key, "sending", "unknown", reason="worker lost", now=T0 + timedelta(hours=1))
    assert [r.key for r in store.unknown_older_than(session, T0 + timedelta(hours=2))] == [key]
    assert store.mark(session, key, "unknown", "sent", provider_message_id="sg-found")
    assert store.unknown_older_than(session, T0 + timedelta(days=1)) == []


def test_skipped_and_ledger_counts(session: Session) -> None:
    e1, e2 = enrollment(session, "k1"), enrollment(session, "k2")
    k1, k2 = _reserve(session, e1).key, _reserve(session, e2).key
    store.mark(session, k1, "pending", "sending")
    store.mark(session, k1, "sending", "skipped", reason="suppressed:unsubscribed")  # checked at send time
    store.mark(session, k2, "pending", "sending")
    store.mark(session, k2, "sending", "sent")
    counts = store.ledger_counts(session)
    assert counts == [
        store.LedgerCount("post_purchase", "thanks", "sent", None, 1),
        store.LedgerCount("post_purchase", "thanks", "skipped", "suppressed:unsubscribed", 1),
    ]
    assert store.ledger_counts(session, journey_id="birthday") == []


# --- suppressions ----------------------------------------------------------------------------------------
def test_suppression_lookup_by_scope(session: Session) -> None:
    customer(session, "c1", email="Ana@Example.com")
    assert store.suppress(session, "ANA@example.com ", "unsubscribed", scope="promotional", source="link")
    assert store.suppress(session, "ana@example.com", "unsubscribed", scope="promotional") is False
    assert store.is_suppressed(session, "ana@EXAMPLE.com", promotional=True) == "unsubscribed"
    assert store.is_suppressed(session, "ana@example.com", promotional=False) is None
    # Widened to everything, never narrowed back.
    assert store.suppress(session, "ana@example.com", "unsubscribed", scope="all") is True
    assert store.suppress(session, "ana@example.com", "unsubscribed", scope="promotional") is False
    assert store.is_suppressed(session, "ana@example.com", promotional=False) == "unsubscribed"
    assert store.suppress(session, "bob@example.com", "bounced", customer_id="c2", source="sendgrid")
    assert store.is_suppressed(session, "bob@example.com", promotional=False) == "bounced"
    assert store.is_suppressed(session, "carla@example.com", promotional=True) is None
    assert [x.reason for x in store.suppressions_for(session, "c1")] == ["unsubscribed"]
    assert [x.email for x in store.suppressions_for(session, "c2")] == ["bob@example.com"]
    with pytest.raises(ValueError, match="scope"):
        store.suppress(session, "x@example.com", "manual", scope="some")


# --- feedback --------------------------------------------------------------------------------------------
def test_feedback_answering_twice_updates(session: Session) -> None:
    first = store.save_feedback(session, "c1", "o1", "nps", 6, "meh")
    session.commit()
    second = store.save_feedback(session, "c1", "o1", "nps", 9, "better now")
    assert second.id == first.id and (second.score, second.comment) == (9, "better now")
    other_survey = store.save_feedback(session, "c1", "o1", "product", 10, None)
    no_order = store.save_feedback(session, "c1", None, "service", 3, "slow")
    no_order_again = store.save_feedback(session, "c1", None, "service", 7, None)
    assert no_order_again.id == no_order.id and no_order_again.score == 7
    assert other_survey.id not in (first.id, no_order.id)
    assert len(session.scalars(select(FeedbackResponse)).all()) == 3
    with pytest.raises(ValueError, match="score"):
        store.save_feedback(session, "c1", "o1", "nps", 11, None)


# --- tickets ---------------------------------------------------------------------------------------------
def test_tickets(session: Session) -> None:
    assert store.has_open_complaint(session, "c1") is False
    assert store.open_ticket(session, "zd-1", "c1", "o1", "Broken", "complaint", "external", T0)
    assert store.open_ticket(session, "zd-1", "c1", "o1", "Broken", "complaint", "external", T0) is False
    assert store.open_ticket(session, "zd-2", "c1", None, "How to", "support", "external")
    assert store.has_open_complaint(session, "c1") is True
    assert store.resolve_ticket(session, "zd-1", T0 + timedelta(hours=3)) is True
    assert store.resolve_ticket(session, "zd-1", T0 + timedelta(hours=4)) is False
    assert store.has_open_complaint(session, "c1") is False


# --- referrals -------------------------------------------------------------------------------------------
def test_referral_attribution_is_idempotent_and_not_self(session: Session) -> None:
    customer(session, "c1")
    code = store.referral_code_for(session, "c1", "post_purchase")
    assert len(code) == 8 and code.isalnum() and code.isupper()
    assert store.referral_code_for(session, "c1", "another_journey") == code
    assert store.referral_code_for(session, "c2", None) != code
    session.commit()
    assert store.attribute_referral(session, code.lower(), "o-100", "c7") is True
    assert store.attribute_referral(session, code, "o-100", "c7") is False  # same order again
    assert store.attribute_referral(session, code, "o-101", "c1") is False  # self-referral
    assert store.attribute_referral(session, "NOPE2345", "o-102", "c8") is False  # unknown code


# --- webhooks and API keys -------------------------------------------------------------------------------
def test_webhook_events_are_deduplicated(session: Session) -> None:
    args = ("delivered", "1:thanks:0", "Ana@Example.com", T0, {"sg_message_id": "x"})
    assert store.record_webhook_event(session, "sg-evt-1", *args) is True
    assert store.record_webhook_event(session, "sg-evt-1", *args) is False


def test_api_key_is_stored_hashed(session: Session) -> None:
    key = store.create_api_key(session, "tienda-1", "ERP")
    assert key.startswith("pv_") and len(key) > 40
    assert store.check_api_key(session, key) == "tienda-1"
    assert store.check_api_key(session, key + "x") is None
    stored = session.scalars(select(ApiKey)).one()
    assert stored.key_hash != key and len(stored.key_hash) == 64 and key not in stored.key_hash
    assert store.revoke_api_key(session, key) is True
    assert store.check_api_key(session, key) is None


# --- types -----------------------------------------------------------------------------------------------
def test_instants_come_back_aware_in_utc(engine: Engine, session: Session) -> None:
    madrid_summer = timezone(timedelta(hours=2))
    eid = enrollment(session, "k1", due=T0.astimezone(madrid_summer))
    session.commit()
    session.expunge_all()
    row = session.get(Enrollment, eid)
    assert row is not None and row.next_due_at is not None
    assert row.next_due_at == T0 and row.next_due_at.utcoffset() == timedelta(0)
    assert row.next_due_at.tzinfo in (UTC, timezone.utc)  # noqa: UP017


def test_mark_many_moves_only_rows_still_in_the_source_status(session: Session) -> None:
    keys = []
    for i in range(3):
        eid = enrollment(session, f"mm{i}")
        row = store.reserve_step(
            session, store.ledger_key(eid, "thanks", 0), eid, "post_purchase", "thanks", 0, "message", {},
            "c1", to_email="c1@example.com", channel="email", template="thanks", category="transactional",
        )  # fmt: skip
        keys.append(row.key)
        assert store.mark(session, row.key, "pending", "sending", now=T0)
    assert store.mark(session, keys[2], "sending", "sent", provider_message_id="first", now=T0)
    later = T0 + timedelta(minutes=5)
    store.mark_many(
        session,
        [
            store.Move(keys[0], "sent", None, "sg-0"),
            store.Move(keys[1], "pending", "429", None, later),
            store.Move(keys[2], "sent", None, "sg-2"),  # already sent: untouched
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
        store.mark_many(session, [store.Move(keys[0], "pending")], ("sent",), now=later)
