"""Journey webhooks (the ``webhook`` action) are delivered like messages: outside any database transaction,
several at once, and an unanswered one is reconciled like an ambiguous email."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from uc_builders import T0, Endpoint, journey, ledger, make_services, order_placed

CRM = """
name: CRM notification
trigger: {{event: order.placed}}
entry: {{once_per: order}}
steps:
  - {{id: notify, type: action, webhook: {{url: "{url}", event: order_seen}}}}
"""


def test_webhooks_go_out_concurrently_with_the_ledger_key(
    sqlite_url: str, tmp_path: Path, endpoint: Endpoint
) -> None:
    """Two webhooks due together are in flight at once (the endpoint answers only when both arrived:
    posted one after the other, the first would give up waiting and answer 500)."""
    plan = journey(CRM.format(url=endpoint.url), "crm")
    svc = make_services(sqlite_url, tmp_path, {plan.id: plan}, webhook_concurrency=2)
    svc.ingest.apply([order_placed("ana"), order_placed("luis")], "api", T0)
    endpoint.together = 2
    stats = svc.sweep(T0)
    assert stats.rows[("crm", "notify", "sent")] == 2
    assert endpoint.max_in_flight == 2
    rows = ledger(svc, step_id="notify")
    assert [(r.status, r.reason) for r in rows] == [("sent", "HTTP 200")] * 2
    keys = sorted(headers["idempotency-key"] for headers, _ in endpoint.requests)
    assert keys == sorted(r.key for r in rows)
    assert all(body["event"] == "order_seen" for _, body in endpoint.requests)
    svc.store.dispose()  # type: ignore[attr-defined]


def test_concurrency_is_bounded(sqlite_url: str, tmp_path: Path, endpoint: Endpoint) -> None:
    plan = journey(CRM.format(url=endpoint.url), "crm")
    svc = make_services(sqlite_url, tmp_path, {plan.id: plan}, webhook_concurrency=2)
    svc.ingest.apply([order_placed(f"c{i}") for i in range(6)], "api", T0)
    assert svc.sweep(T0).rows[("crm", "notify", "sent")] == 6
    assert 1 <= endpoint.max_in_flight <= 2
    svc.store.dispose()  # type: ignore[attr-defined]


def test_an_unanswered_webhook_stays_unknown_until_an_operator_requeues_it(
    sqlite_url: str, tmp_path: Path, endpoint: Endpoint
) -> None:
    from app.records import RequeueFilter

    plan = journey(CRM.format(url=endpoint.url), "crm")
    svc = make_services(sqlite_url, tmp_path, {plan.id: plan})
    svc.ingest.apply([order_placed("ana")], "api", T0)
    endpoint.drop = True  # the request arrives; the answer never comes back
    svc.sweep(T0)
    [row] = ledger(svc, step_id="notify")
    assert row.status == "unknown" and row.reason.startswith("webhook: ")
    # However long it waits, nothing is resent without a decision: the endpoint may have processed it.
    for minutes in (30, 61, 24 * 60):
        svc.reconcile.run(T0 + timedelta(minutes=minutes))
        svc.sweep(T0 + timedelta(minutes=minutes))
    assert len(endpoint.requests) == 1
    # An operator requeues it: posted again, under the same idempotency key.
    endpoint.drop = False
    with svc.store.begin() as tx:
        assert tx.ledger.requeue(RequeueFilter(status="unknown"), T0 + timedelta(days=1), "test") == 1
    svc.sweep(T0 + timedelta(days=1))
    [row] = ledger(svc, step_id="notify")
    assert row.status == "sent"
    assert [h["idempotency-key"] for h, _ in endpoint.requests] == [row.key, row.key]
    svc.store.dispose()  # type: ignore[attr-defined]


@pytest.mark.postgres
def test_a_slow_webhook_holds_no_database_transaction(
    pg_url: str, tmp_path: Path, endpoint: Endpoint
) -> None:
    """While the endpoint takes its time, the delivering worker has no transaction open (no snapshot, no
    lock, no connection held 'idle in transaction'), and another worker can update the row."""
    from infra.db.session import make_engine
    from infra.db.testing import clear_tables

    engine = make_engine(pg_url)
    clear_tables(engine)
    plan = journey(CRM.format(url=endpoint.url), "crm")
    svc = make_services(pg_url, tmp_path, {plan.id: plan})
    svc.ingest.apply([order_placed("ana")], "api", T0)
    svc.advance.run(T0)
    endpoint.hold()
    worker = threading.Thread(target=svc.deliver.run, args=(T0,))
    worker.start()
    try:
        assert endpoint.arrived.wait(30), "the webhook was never posted"
        with engine.connect() as probe:
            idle = probe.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND state LIKE 'idle in transaction%' AND pid <> pg_backend_pid()"
                )
            ).scalar_one()
            assert idle == 0
            probe.execute(text("SET lock_timeout = '2s'"))
            probe.execute(text("UPDATE ledger SET attempts = attempts WHERE step_id = 'notify'"))
            probe.rollback()
    finally:
        endpoint.release()
        worker.join(30)
    [row] = ledger(svc, step_id="notify")
    assert row.status == "sent"
    svc.store.dispose()  # type: ignore[attr-defined]
    engine.dispose()
