"""Issue 13: the results report (``infra.report.assemble.build_report``) on PostgreSQL at scale.

A fresh, migrated PostgreSQL database is seeded with set-based SQL (``generate_series``, seeded
``random()``): ``POSVENTA_BENCH_REPORT_ENROLLMENTS`` enrollments (default 100,000) over the five shipped
journeys (their real compiled plans), ten ledger rows each (1,000,000), the SendGrid webhook events of
the sent messages (processed for each, delivered 95%, open 45%, click 10%, bounce 2%, unsubscribe 0.5%,
spam report 0.1%: 1.7 million) and the matching ``email.*`` events, deferrals (a fifth of the promotional
messages waited for quiet hours, one in twenty for a complaint hold), the orders behind the enrollments
plus repeat orders, NPS answers given through survey emails, referral codes, clicks and conversions, and
support tickets.
Then ``VACUUM ANALYZE`` (what autovacuum does for a live database).

Timed, in the same process and connection pool: the baseline ``SELECT count(*) FROM ledger``; the whole
report as the product runs it (``parallel=True``: the metric queries on two connections sharing one
snapshot) and on one session, each warm (best of ``POSVENTA_BENCH_REPORT_REPEAT``, default 3, after one
untimed run); and each metric alone. The verdict compares the report with the issue's bound (2 s); the
ratio to the baseline says how much work it is beyond reading the ledger once.

Run: ``python -m benchmarks.bench_report``; ``--explain`` prints EXPLAIN (ANALYZE, BUFFERS) of the
funnel queries.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)  # a Monday
NOW = T0 + timedelta(days=210)
LEDGER_PER_ENROLLMENT = 10
BOUND_S = 2.0
#: journey → share of enrollments (in twentieths)
MIX = (("post_purchase", 12), ("warranty", 3), ("replenishment", 2), ("returns", 2), ("birthday", 1))


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw else default


def _steps() -> list[tuple[str, int, str, bool, str]]:
    """(journey, index, step id, after a split, kind) for every send/action step of the shipped plans."""
    from posventa.compile import load_plans

    plans = load_plans(ROOT / "journeys")
    out = []
    for journey, _ in MIX:
        plan = plans[journey]
        after = False
        index = 0
        for sid in plan.order:
            kind = plan.steps[sid].TYPE
            after = after or kind == "split"
            if kind in ("send", "action"):
                out.append((journey, index, sid, after, "message" if kind == "send" else "action"))
                index += 1
    return out


SEED_SQL = """
SELECT setseed(0.42);
CREATE TEMP TABLE mix AS
  SELECT * FROM (VALUES {mix}) AS t(journey_id, lo, hi);
CREATE TEMP TABLE steps AS
  SELECT * FROM (VALUES {steps}) AS t(journey_id, idx, step_id, after_split, kind);
CREATE TEMP TABLE step_count AS SELECT journey_id, count(*)::int AS n FROM steps GROUP BY journey_id;

INSERT INTO customers (id, email, name, locale, consent_email, attributes, created_at, updated_at)
SELECT 'c' || i, 'c' || i || '@example.com', 'Customer ' || i, CASE WHEN i % 3 = 0 THEN 'en' ELSE 'es' END,
       true, '{{}}', :t0, :t0
FROM generate_series(1, :customers) AS i;

-- one order per enrollment (the order that started it) and some repeat orders (ids above :n)
INSERT INTO orders (id, customer_id, placed_at, status, total, currency, promised_delivery_date,
                    delivered_at, items, attributes, created_at, updated_at)
SELECT 'o' || i, 'c' || (1 + (i * 7919) % :customers), p.placed,
       CASE WHEN i % 50 = 0 THEN 'canceled' WHEN i % 10 = 0 THEN 'shipped' ELSE 'delivered' END,
       round((20 + random() * 180)::numeric, 2), 'EUR', (p.placed + interval '3 days')::date,
       CASE WHEN i % 10 IN (0) OR i % 50 = 0 THEN NULL
            ELSE p.placed + (1 + floor(random() * 5)) * interval '1 day' END,
       jsonb_build_array(jsonb_build_object('sku', 'SKU-' || (i % 40), 'name', 'Product ' || (i % 40),
                                            'quantity', 1, 'price', 25.0)),
       '{{}}', p.placed, p.placed
FROM generate_series(1, :n + :n / 3) AS i
CROSS JOIN LATERAL (SELECT :t0 + (i % 180) * interval '1 day' + (i % 600) * interval '1 minute' AS placed) p;

INSERT INTO enrollments (id, journey_id, plan_version, customer_id, order_id, entry_key, status, state,
                         next_due_at, attempts, entered_at, updated_at, ended_at)
SELECT i, x.journey_id, pl.version, o.customer_id, o.id, 'order:' || o.id, st.status,
       jsonb_build_object('step', CASE WHEN st.status IN ('active', 'waiting', 'held')
                                       THEN (SELECT step_id FROM steps s WHERE s.journey_id = x.journey_id
                                             ORDER BY s.idx LIMIT 1 OFFSET i % 2) END,
                          'status', st.status, 'entered_at', o.placed_at, 'visits', '{{}}'::jsonb,
                          'variant', v.variant, 'consumed', '[]'::jsonb),
       CASE WHEN st.status IN ('active', 'waiting', 'held') THEN :now + interval '1 day' END,
       0, o.placed_at + interval '1 minute', o.placed_at,
       CASE WHEN st.status = 'converted' THEN o.placed_at + interval '150 days'
            WHEN st.status IN ('completed', 'exited') THEN o.placed_at + interval '20 days' END
FROM generate_series(1, :n) AS i
JOIN orders o ON o.id = 'o' || i
JOIN mix x ON i % 20 >= x.lo AND i % 20 < x.hi
JOIN journey_plans pl ON pl.journey_id = x.journey_id
CROSS JOIN LATERAL (SELECT CASE WHEN i % 7 = 0 THEN 'converted' WHEN i % 7 = 1 THEN 'exited'
                                WHEN i % 7 = 2 THEN 'waiting' WHEN i % 7 = 3 THEN 'active'
                                ELSE 'completed' END AS status) st
CROSS JOIN LATERAL (SELECT CASE WHEN x.journey_id NOT IN ('post_purchase', 'warranty') OR i % 3 <> 0 THEN NULL
                                WHEN i % 30 = 0 THEN 'holdout'
                                WHEN x.journey_id = 'warranty'
                                     THEN (ARRAY['peace_of_mind', 'repair_cost'])[1 + i % 2]
                                ELSE (ARRAY['plain', 'incentive'])[1 + i % 2] END AS variant) v;
SELECT setval(pg_get_serial_sequence('enrollments', 'id'), :n);

INSERT INTO ledger (id, key, enrollment_id, journey_id, step_id, occurrence, kind, channel, template,
                    category,
                    customer_id, to_email, status, reason, provider_message_id, attempts, payload,
                    created_at, updated_at, sent_at)
SELECT (e.id - 1) * {per} + k + 1, e.id || ':' || s.step_id || ':' || (k / sc.n), e.id, e.journey_id,
       s.step_id,
       k / sc.n, s.kind, CASE WHEN s.kind = 'message' THEN 'email' END, s.step_id,
       CASE WHEN s.kind = 'message' THEN CASE WHEN s.idx < 2 THEN 'transactional' ELSE 'promotional' END END,
       e.customer_id, e.customer_id || '@example.com',
       r.status, CASE WHEN r.status = 'skipped' THEN 'suppressed: bounced' END,
       CASE WHEN r.status = 'sent' THEN 'sg-' || e.id || '-' || k END, 1,
       jsonb_build_object('locale', 'es', 'order_id', e.order_id, 'sendgrid_template_id', NULL,
                          'event', jsonb_build_object('id', 'ev-' || e.id, 'type', 'order.placed'),
                          'variant', CASE WHEN s.after_split AND e.state->>'variant' <> 'holdout'
                                          THEN e.state->>'variant' END),
       e.entered_at + k * interval '2 days' + (e.id % 97) * interval '1 minute',
       e.entered_at + k * interval '2 days' + (e.id % 97) * interval '1 minute',
       CASE WHEN r.status = 'sent' THEN e.entered_at + k * interval '2 days' END
FROM enrollments e
JOIN step_count sc ON sc.journey_id = e.journey_id
CROSS JOIN generate_series(0, {per} - 1) AS k
JOIN steps s ON s.journey_id = e.journey_id AND s.idx = k % sc.n
CROSS JOIN LATERAL (SELECT CASE WHEN (e.id * 31 + k * 17) % 100 < 85 THEN 'sent'
                                WHEN (e.id * 31 + k * 17) % 100 < 92 THEN 'skipped'
                                WHEN (e.id * 31 + k * 17) % 100 < 96 THEN 'pending'
                                ELSE 'failed' END AS status) r;
SELECT setval(pg_get_serial_sequence('ledger', 'id'), (SELECT max(id) FROM ledger));

CREATE TEMP TABLE sg AS
SELECT l.key, l.customer_id, l.to_email, l.sent_at, ev.event
FROM ledger l
CROSS JOIN LATERAL (VALUES ('processed', 1.0), ('delivered', 0.95), ('open', 0.45), ('click', 0.10),
                           ('bounce', 0.02),
                           ('unsubscribe', 0.005), ('spamreport', 0.001)) AS ev(event, p)
WHERE l.kind = 'message' AND l.status = 'sent' AND (hashtext(l.key || ev.event) & 1023) < ev.p * 1024;

INSERT INTO webhook_events (sg_event_id, event, ledger_key, email, occurred_at, received_at, data)
SELECT 'sg-' || event || '-' || key, event, key, to_email, sent_at + interval '1 hour',
       sent_at + interval '1 hour',
       jsonb_build_object('event', event, 'sg_event_id', 'sg-' || event || '-' || key, 'posventa_key', key,
                          'timestamp', extract(epoch FROM sent_at)::bigint)
FROM sg;

-- what the webhook path does per event: the event's bit on its message's ledger row (ledger.evidence)
UPDATE ledger l SET evidence = b.bits
FROM (SELECT key, bit_or(CASE event WHEN 'delivered' THEN 1 WHEN 'bounce' THEN 2 WHEN 'dropped' THEN 4
                                    WHEN 'open' THEN 8 WHEN 'click' THEN 16 WHEN 'unsubscribe' THEN 32
                                    WHEN 'spamreport' THEN 64 ELSE 0 END) AS bits
      FROM sg GROUP BY key) AS b
WHERE l.key = b.key;

INSERT INTO events (id, type, customer_id, order_id, occurred_at, received_at, source, data)
SELECT 'sg:sg-' || event || '-' || key,
       CASE event WHEN 'delivered' THEN 'email.delivered' WHEN 'open' THEN 'email.opened'
                  WHEN 'click' THEN 'email.clicked' WHEN 'bounce' THEN 'email.bounced'
                  ELSE 'customer.unsubscribed' END,
       customer_id, NULL, sent_at + interval '1 hour', sent_at + interval '1 hour', 'webhook',
       jsonb_build_object('ledger_key', key)
FROM sg WHERE event NOT IN ('spamreport', 'processed');

INSERT INTO events (id, type, customer_id, order_id, occurred_at, received_at, source, data)
SELECT 'order:' || id, 'order.placed', customer_id, id, placed_at, placed_at, 'api', '{{}}'
FROM orders;

-- NPS answers through the survey email: a third of the post-purchase enrollments
INSERT INTO events (id, type, customer_id, order_id, occurred_at, received_at, source, data)
SELECT 'survey:' || l.key, 'feedback.submitted', l.customer_id, e.order_id, l.created_at + interval '1 day',
       l.created_at + interval '1 day', 'api', jsonb_build_object('score', (e.id * 13) % 11, 'survey', 'nps')
FROM ledger l JOIN enrollments e ON e.id = l.enrollment_id
WHERE l.step_id = 'nps_survey' AND l.occurrence = 0 AND e.id % 3 = 0;

INSERT INTO feedback_responses (customer_id, order_id, survey, score, comment, created_at, updated_at)
SELECT customer_id, order_id, 'nps', (data->>'score')::int,
       CASE WHEN random() < 0.2 THEN 'Comentario ' || id END, occurred_at, occurred_at
FROM events WHERE type = 'feedback.submitted'
ON CONFLICT DO NOTHING;

-- deferrals: a fifth of the promotional messages waited for quiet hours (one sweep), one in twenty through
-- twenty sweeps of a complaint hold
INSERT INTO deferrals (enrollment_id, step_id, occurrence, reason, journey_id, first_at, last_at, until,
                       ticks)
SELECT l.enrollment_id, l.step_id, l.occurrence, r.reason, l.journey_id, l.created_at - interval '10 hours',
       l.created_at - interval '1 hour', l.created_at, r.ticks
FROM ledger l CROSS JOIN (VALUES ('quiet_hours', 0.2, 1), ('complaint_hold', 0.05, 20)) AS r(reason, p, ticks)
WHERE l.category = 'promotional' AND (hashtext(l.key || r.reason) & 1023) < r.p * 1024;

INSERT INTO referral_codes (code, customer_id, journey_id, created_at)
SELECT 'R' || lpad(i::text, 7, '0'), 'c' || i, 'post_purchase', :t0 + (i % 180) * interval '1 day'
FROM generate_series(1, :customers / 8) AS i;

INSERT INTO events (id, type, customer_id, order_id, occurred_at, received_at, source, data)
SELECT 'referral:' || i, 'referral.clicked', 'c' || (1 + i % (:customers / 8)), NULL,
       :t0 + (i % 200) * interval '1 day', :t0 + (i % 200) * interval '1 day', 'api',
       jsonb_build_object('code', 'R' || lpad((1 + i % (:customers / 8))::text, 7, '0'))
FROM generate_series(1, :customers / 6) AS i;

INSERT INTO referral_conversions (code, order_id, referred_customer_id, created_at)
SELECT 'R' || lpad((1 + i % (:customers / 8))::text, 7, '0'), 'o' || (:n + i), 'c' || (:customers - i), :t0
FROM generate_series(1, :n / 60) AS i;

INSERT INTO support_tickets (id, customer_id, order_id, subject, category, status, source, opened_at,
                             resolved_at)
SELECT 't' || i, 'c' || (1 + i % :customers), 'o' || i, 'Ticket ' || i,
       (ARRAY['complaint', 'support', 'return', 'warranty'])[1 + i % 4],
       CASE WHEN i % 5 = 0 THEN 'open' ELSE 'resolved' END, 'journey',
       :t0 + (i % 200) * interval '1 day',
       CASE WHEN i % 5 <> 0 THEN :t0 + (i % 200) * interval '1 day' + (1 + i % 72) * interval '1 hour' END
FROM generate_series(1, :n / 20) AS i;
"""


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


def _seed(url: str, n: int) -> dict[str, int]:
    from sqlalchemy import text

    from infra.db.session import make_engine, session_factory
    from infra.db.store import SqlTx
    from posventa.compile import load_plans

    engine = make_engine(url)
    try:
        with session_factory(engine).begin() as s:
            for plan in load_plans(ROOT / "journeys").values():
                SqlTx(s).plans.save(plan.id, plan.version, plan.to_json())
        mix, lo = [], 0
        for journey, share in MIX:
            mix.append(f"({_literal(journey)}, {lo}, {lo + share})")
            lo += share
        steps = ", ".join("(" + ", ".join(_literal(v) for v in row) + ")" for row in _steps())
        sql = SEED_SQL.format(mix=", ".join(mix), steps=steps, per=LEDGER_PER_ENROLLMENT)
        params = {"n": n, "customers": max(10, n * 3 // 5), "t0": T0, "now": NOW}
        with engine.begin() as conn:
            for statement in (part.strip() for part in sql.split(";\n")):
                if statement:
                    conn.execute(text(statement), {k: v for k, v in params.items() if f":{k}" in statement})
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
            counts = {
                table: int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())
                for table in (
                    "enrollments",
                    "ledger",
                    "deferrals",
                    "webhook_events",
                    "events",
                    "orders",
                    "feedback_responses",
                )
            }
    finally:
        engine.dispose()
    return counts


def _best(fn: Callable[[], Any], repeat: int) -> tuple[float, list[float]]:
    fn()  # warm: caches, plans, the first connection
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times), times


METRICS = (
    "step_funnel",
    "journey_totals",
    "positions",
    "splits",
    "nps",
    "on_time_delivery",
    "repeat_purchase",
    "churn",
    "referral",
    "complaints",
)


def _measure(factory: Any, repeat: int, explain: bool) -> dict[str, Any]:
    from sqlalchemy import text

    from infra.db import metrics
    from infra.report.assemble import build_report

    def report() -> Any:
        with factory() as s:  # as the CLI, the nightly artifact and the admin run it
            return build_report(s, now=NOW, parallel=True)

    def report_one_session() -> Any:
        with factory() as s:  # every query in one transaction, one after the other
            return build_report(s, now=NOW)

    def count() -> Any:
        with factory() as s:
            return s.execute(text("SELECT count(*) FROM ledger")).scalar_one()

    baseline_s, _ = _best(count, repeat)
    report_s, runs = _best(report, repeat)
    one_session_s, _ = _best(report_one_session, repeat)
    scope = metrics.Scope(None, None, None, NOW)
    parts = {}
    for name in METRICS:
        fn = getattr(metrics, name)

        def one(fn: Callable[..., Any] = fn) -> Any:
            with factory() as s:
                return fn(s, scope)

        parts[name] = _best(one, 1)[0]
    if explain:
        with factory() as s:
            _explain(s, scope)
    return {
        "baseline_count_s": round(baseline_s, 4),
        "report_s": round(report_s, 3),
        "report_runs_s": [round(t, 3) for t in runs],
        "report_to_baseline_ratio": round(report_s / baseline_s, 1),
        "report_one_session_s": round(one_session_s, 3),
        "verdict": "PASS" if report_s < BOUND_S else "OVER THE BOUND",
        "metrics_s": {k: round(v, 3) for k, v in sorted(parts.items(), key=lambda kv: -kv[1])},
    }


def run(n: int | None = None, *, explain: bool = False) -> dict[str, Any]:

    from infra.db.session import make_engine, session_factory
    from infra.db.testing import fresh_postgres_database
    from infra.report.assemble import build_report

    n = n or _env_int("POSVENTA_BENCH_REPORT_ENROLLMENTS", 100_000)
    repeat = max(1, _env_int("POSVENTA_BENCH_REPORT_REPEAT", 3))
    with fresh_postgres_database() as url:
        started = time.perf_counter()
        counts = _seed(url, n)
        seed_s = time.perf_counter() - started
        print(f"seeded in {seed_s:.1f} s: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()), flush=True)
        engine = make_engine(url)
        factory = session_factory(engine)
        try:
            measured = _measure(factory, repeat, explain)
            print(f"measured: {json.dumps(measured)}", flush=True)
            with factory() as s:
                report = build_report(s, now=NOW)
        finally:
            engine.dispose()
    return {
        "enrollments": counts["enrollments"],
        "ledger_rows": counts["ledger"],
        "webhook_events": counts["webhook_events"],
        "events": counts["events"],
        "seed_s": round(seed_s, 1),
        "bound_s": BOUND_S,
        **measured,
        "funnel_rows": sum(len(j.steps) for j in report.funnel),
        "sent": sum(r.sent for j in report.funnel for r in j.steps),
        "opened": sum(r.opened or 0 for j in report.funnel for r in j.steps),
        "nps": report.nps.overall.nps,
    }


def _explain(s: Any, scope: Any) -> None:
    """EXPLAIN (ANALYZE, BUFFERS) of the two funnel queries, as executed (parameters inlined)."""
    from sqlalchemy import text

    from infra.db.metrics import funnel

    captured: list[str] = []
    real_execute = s.execute

    def capture(stmt: Any, *args: Any, **kwargs: Any) -> Any:
        if hasattr(stmt, "compile"):
            captured.append(str(stmt.compile(s.get_bind(), compile_kwargs={"literal_binds": True})))
        return real_execute(stmt, *args, **kwargs)

    s.execute = capture
    try:
        funnel.step_funnel(s, scope)
    finally:
        s.execute = real_execute
    for sql in captured:
        if not sql.lstrip().upper().startswith("SELECT"):
            s.execute(text(sql))
            continue
        plan = s.execute(text("EXPLAIN (ANALYZE, BUFFERS) " + sql)).scalars().all()
        print("\n".join(plan), "\n", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_report", description=__doc__.splitlines()[0]
    )
    parser.add_argument("enrollments", nargs="?", type=int, default=None)
    parser.add_argument("--explain", action="store_true", help="print EXPLAIN ANALYZE of the funnel queries")
    args = parser.parse_args(argv)
    print(json.dumps(run(args.enrollments, explain=args.explain), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
