"""The post-sale practices the shipped journeys carry out, in the runtime on SQLite: a detractor hears from
us again once support has resolved their case (and not before), and the offer after the content series
differs for first-time and repeat buyers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from test_journey_rules import DAY, happen, run_until
from uc_builders import T0, ledger, make_services, order_placed

from app.services import Services
from infra.db import models as m


@pytest.fixture
def svc(sqlite_url: str, tmp_path: Path, shipped: dict[str, Any]) -> Iterator[Services]:
    services = make_services(sqlite_url, tmp_path, {"post_purchase": shipped["post_purchase"]})
    yield services
    services.store.dispose()  # type: ignore[attr-defined]


def sent(svc: Services, cid: str) -> list[tuple[str, datetime]]:
    return [(r.step_id, r.created_at) for r in ledger(svc, customer_id=cid) if r.status == "sent"]


def delivered(cid: str, at: datetime) -> dict[str, Any]:
    return {
        "id": f"dl-{cid}",
        "type": "order.delivered",
        "occurred_at": at.isoformat(),
        "customer_id": cid,
        "order_id": f"o-{cid}",
    }


def answer(cid: str, score: int, at: datetime) -> dict[str, Any]:
    return {
        "id": f"fb-{cid}",
        "type": "feedback.submitted",
        "occurred_at": at.isoformat(),
        "customer_id": cid,
        "order_id": f"o-{cid}",
        "data": {"score": score, "survey": "nps"},
    }


def tickets(svc: Services, cid: str) -> list[str]:
    with svc.store.factory() as s:  # type: ignore[attr-defined]
        return list(s.scalars(select(m.SupportTicket.id).where(m.SupportTicket.customer_id == cid)))


def test_a_detractor_is_asked_again_only_after_support_resolved_the_case(svc: Services) -> None:
    svc.ingest.apply([order_placed("ana"), order_placed("luis")], "api", T0)
    happen(svc, T0 + 3 * DAY, delivered("ana", T0 + 3 * DAY), delivered("luis", T0 + 3 * DAY))
    happen(svc, T0 + 12 * DAY, answer("ana", 3, T0 + 12 * DAY), answer("luis", 2, T0 + 12 * DAY))
    assert [s for s, _ in sent(svc, "ana")][-1] == "detractor_apology"
    [ticket] = tickets(svc, "ana")
    resolved = T0 + 17 * DAY
    happen(
        svc,
        resolved,
        {
            "id": "res-ana",
            "type": "ticket.resolved",
            "occurred_at": resolved.isoformat(),
            "customer_id": "ana",
            "data": {"ticket_id": ticket},
        },
    )
    run_until(svc, T0 + 60 * DAY)
    step, when = sent(svc, "ana")[-1]
    assert step == "detractor_followup"
    assert timedelta(days=2) <= when.replace(tzinfo=resolved.tzinfo) - resolved < timedelta(days=3)
    # Luis's case is still open at day 60: no "is it settled?" email, the journey ended quietly at day 42
    assert "detractor_followup" not in [s for s, _ in sent(svc, "luis")]
    assert [(r.step_id, r.reason) for r in ledger(svc, customer_id="luis") if r.kind == "message"][-1][0] == (
        "detractor_apology"
    )


def test_after_the_content_series_the_offer_depends_on_the_segment(svc: Services) -> None:
    """Passives (7) get three different content emails, then one offer: a first-time buyer is invited back,
    a customer with an earlier order is thanked as a regular."""
    earlier = order_placed("luis", "o-luis-old", T0 - 200 * DAY)
    # imported today: older than stale_after, it enrolls nobody but counts in customer.orders_count
    svc.ingest.apply([earlier, order_placed("ana"), order_placed("luis")], "api", T0)
    happen(svc, T0 + 3 * DAY, delivered("ana", T0 + 3 * DAY), delivered("luis", T0 + 3 * DAY))
    happen(svc, T0 + 12 * DAY, answer("ana", 7, T0 + 12 * DAY), answer("luis", 7, T0 + 12 * DAY))
    run_until(svc, T0 + 200 * DAY)
    ana, luis = [s for s, _ in sent(svc, "ana")], [s for s, _ in sent(svc, "luis")]
    assert ana.count("content_tip") == 3 and luis.count("content_tip") == 3
    assert ana[-1] == "first_time_offer" and "repeat_buyer_offer" not in ana
    assert luis[-1] == "repeat_buyer_offer" and "first_time_offer" not in luis
    # the series varies: each content email is rendered for its own visit (the template differs by visit)
    visits = [r.payload.get("visit") for r in ledger(svc, customer_id="ana") if r.step_id == "content_tip"]
    assert visits == [1, 2, 3]


def test_a_good_score_brings_a_review_request_and_a_bad_one_support(svc: Services) -> None:
    """Product feedback (a public review) is asked only of promoters; a detractor's answer goes to support."""
    svc.ingest.apply([order_placed("ana"), order_placed("luis")], "api", T0)
    happen(svc, T0 + 3 * DAY, delivered("ana", T0 + 3 * DAY), delivered("luis", T0 + 3 * DAY))
    happen(svc, T0 + 12 * DAY, answer("ana", 10, T0 + 12 * DAY), answer("luis", 4, T0 + 12 * DAY))
    run_until(svc, T0 + 20 * DAY)
    ana, luis = [s for s, _ in sent(svc, "ana")], [s for s, _ in sent(svc, "luis")]
    assert ana[ana.index("nps_survey") + 1] == "review_request"
    assert "review_request" not in luis and luis[-1] == "detractor_apology"
    assert tickets(svc, "ana") == [] and len(tickets(svc, "luis")) == 1
