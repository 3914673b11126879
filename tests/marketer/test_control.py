"""Pause, resume, drain and stop: a paused journey admits nobody and sends nothing, its due steps wait
(never dropped) and its waits keep counting; draining lets those inside finish; stopping ends everyone
with a reason. On SQLite and on PostgreSQL (where the claims skip locked rows)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from mk_builders import DAY, T0, delivered, enrollment, placed, rows, sends, services, settings_for

from app.control import journey_controls, set_state, stop
from app.services import Services
from infra.db import models as m
from posventa.errors import PosventaError


@pytest.fixture
def svc(url: str, tmp_path: Path) -> Iterator[Services]:
    s = services(settings_for(url, tmp_path))
    yield s
    s.store.dispose()  # type: ignore[attr-defined]


def _outbox(tmp_path: Path) -> set[str]:
    return {p.name for p in (tmp_path / "outbox").glob("*.eml")} if (tmp_path / "outbox").exists() else set()


def test_paused_holds_due_work_and_admits_nobody_then_resumes(svc: Services, tmp_path: Path) -> None:
    svc.ingest.apply([placed("c1")], "api", T0)
    svc.sweep(T0)  # c1: thank-you sent, waits for the delivery
    svc.ingest.apply([delivered("c1", T0 + DAY), placed("c3", T0 + DAY)], "api", T0 + DAY)
    svc.advance.run(T0 + DAY)  # c1 now waits a day (delivered_check); c3's thank-you is pending
    assert enrollment(svc, "c1").state["step"] == "delivered_check"
    assert sends(svc, "c3") == [(f"{enrollment(svc, 'c3').id}:thank_you:0", "pending")]
    sent_before = _outbox(tmp_path)

    set_state(svc.store, svc.plans, "post_purchase", "paused", "wrong coupon", T0 + DAY)
    assert journey_controls(svc.store)["post_purchase"].state == "paused"
    svc.ingest.apply([placed("c4", T0 + DAY)], "api", T0 + DAY)
    stats = svc.sweep(T0 + 5 * DAY)
    forced = svc.advance.run(T0 + 5 * DAY, customer="c1", force=True)  # `posventa run --customer`
    assert (stats.enrollments, forced.enrollments, sum(stats.rows.values())) == (0, 0, 0)
    assert rows(svc, m.Enrollment, customer_id="c4") == []  # admits nobody
    assert sends(svc, "c3")[0][1] == "pending"  # held, not dropped
    assert _outbox(tmp_path) == sent_before  # nothing sent

    set_state(svc.store, svc.plans, "post_purchase", "running", None, T0 + 5 * DAY)
    svc.sweep(T0 + 5 * DAY)
    assert sends(svc, "c3")[0][1] == "sent"
    # The day's wait started before the pause and kept counting: delivery_check goes at once.
    assert [k.split(":")[1] for k, s in sends(svc, "c1") if s == "sent"] == ["thank_you", "delivery_check"]
    assert rows(svc, m.Enrollment, customer_id="c4") == []  # entries missed while paused are not replayed


def test_draining_admits_nobody_and_lets_those_inside_finish(svc: Services) -> None:
    svc.ingest.apply([placed("c1")], "api", T0)
    set_state(svc.store, svc.plans, "post_purchase", "draining", "retiring", T0)
    svc.ingest.apply([placed("c2")], "api", T0)
    svc.sweep(T0)
    assert rows(svc, m.Enrollment, customer_id="c2") == []
    assert sends(svc, "c1")[0][1] == "sent"


def test_stop_exit_ends_everyone_and_skips_what_was_not_sent(svc: Services, tmp_path: Path) -> None:
    svc.ingest.apply([placed("c1"), placed("c2")], "api", T0)
    svc.sweep(T0)
    svc.ingest.apply([placed("c3", T0 + DAY)], "api", T0 + DAY)
    svc.advance.run(T0 + DAY)  # c3's thank-you pending
    sent_before = _outbox(tmp_path)

    done = stop(svc.store, svc.plans, "post_purchase", "wrong prices", T0 + DAY)
    assert (done.enrollments, done.messages, done.control.state) == (3, 1, "stopped")
    for cid in ("c1", "c2", "c3"):
        e = enrollment(svc, cid)
        assert (e.status, e.state["reason"], e.state["step"], e.next_due_at) == (
            "exited",
            "wrong prices",
            None,
            None,
        )
    [(_, status)] = sends(svc, "c3")
    assert status == "skipped"
    assert rows(svc, m.LedgerEntry, customer_id="c3")[0].reason == "journey stopped: wrong prices"
    svc.ingest.apply([placed("c4", T0 + DAY)], "api", T0 + DAY)
    svc.sweep(T0 + 30 * DAY)
    assert rows(svc, m.Enrollment, customer_id="c4") == [] and _outbox(tmp_path) == sent_before
    with pytest.raises(PosventaError, match="reason"):
        stop(svc.store, svc.plans, "post_purchase", " ", T0)


def test_pausing_twice_keeps_the_first_pause(svc: Services) -> None:
    """A second pause changes nothing: since when and why stay the first pause's."""
    first = set_state(svc.store, svc.plans, "post_purchase", "paused", "wrong coupon", T0)
    again = set_state(svc.store, svc.plans, "post_purchase", "paused", "other reason", T0 + DAY)
    assert (again.state, again.reason, again.changed_at) == ("paused", "wrong coupon", first.changed_at)


def test_unknown_journeys_are_refused(svc: Services) -> None:
    with pytest.raises(PosventaError, match="no journey 'nope'"):
        set_state(svc.store, svc.plans, "nope", "paused", None, T0)
    assert "nope" not in journey_controls(svc.store)
