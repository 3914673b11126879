"""Customers mid-journey through an edit: ``plan`` counts them at the affected steps, ``migrate`` moves
them (a dry run shows who moves where; a removed step needs a mapping), and exactly once survives — no
step is sent again because its version changed. On SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mk_builders import DAY, ROOT, T0, delivered, edit, enrollment, placed, sends, services, settings_for

from app.journey_state import LiveEnrollment
from app.migrate import migrate, parse_mapping, plan_moves
from app.plans import PlanBook
from app.publish import plan_changes, publish
from app.services import Services
from posventa.compile import compile_file, load_plans
from posventa.errors import PosventaError


@pytest.fixture
def svc(url: str, tmp_path: Path, journeys: Path) -> Iterator[Services]:
    s = services(settings_for(url, tmp_path, journeys))
    yield s
    s.store.dispose()  # type: ignore[attr-defined]


#: When the tests edit, publish and migrate: everyone below is somewhere in the middle.
NOW = T0 + 12 * DAY


def _mid_journey(svc: Services) -> None:
    """c1 answered nothing yet (waits at await_answer after the NPS email); c2 never got its parcel;
    c4 answered 10 and waits for content; c3 ordered later; c5 just ordered: its thank-you is decided, not
    yet sent."""
    svc.ingest.apply([placed("c1"), placed("c2"), placed("c4")], "api", T0)
    svc.sweep(T0)
    svc.ingest.apply([delivered("c1", T0 + DAY), delivered("c4", T0 + DAY)], "api", T0 + DAY)
    for day in range(1, 11):
        svc.sweep(T0 + day * DAY)
    answer = {
        "id": "answer-c4",
        "type": "feedback.submitted",
        "occurred_at": (T0 + 10 * DAY + DAY / 12).isoformat(),
        "customer_id": "c4",
        "order_id": "o-c4",
        "data": {"score": 8},  # a passive: straight to the content emails
    }
    svc.ingest.apply([answer, placed("c3", T0 + 11 * DAY)], "api", T0 + 11 * DAY)
    svc.sweep(T0 + 11 * DAY)
    svc.ingest.apply([placed("c5", NOW)], "api", NOW)
    svc.advance.run(NOW)  # c5's thank-you pending (not delivered yet)


def _edit(journeys: Path) -> None:
    """The new version: the answer wait renamed, the survey later, the survey email reworded."""
    yaml = journeys / "post_purchase.yaml"
    edit(yaml, "  - id: await_answer\n", "  - id: await_score\n")
    edit(
        yaml,
        "  - id: wait_before_survey\n    type: wait\n    duration: 6d",
        "  - id: wait_before_survey\n    type: wait\n    duration: 9d",
    )
    edit(journeys / "templates" / "es" / "nps_survey.j2", "{% block subject %}", "{% block subject %}¡")


def _book(svc: Services, journeys: Path) -> PlanBook:
    return PlanBook(svc.store, load_plans(journeys))


def test_plan_counts_customers_mid_journey(svc: Services, journeys: Path) -> None:
    _mid_journey(svc)
    where = {c: enrollment(svc, c).state["step"] for c in ("c1", "c2", "c3", "c4", "c5")}
    assert where["c1"] == "await_answer" and where["c4"] == "content_wait" and where["c3"] == "await_delivery"
    _edit(journeys)
    [d] = plan_changes(svc.store, _book(svc, journeys), ["post_purchase"]).journeys
    steps = {s.step: s for s in d.steps}
    live = d.live_version
    assert (steps["await_answer"].kind, dict(steps["await_answer"].enrollments)) == ("removed", {live: 1})
    assert steps["await_score"].kind == "added"
    assert steps["nps_survey"].templates == ("nps_survey[es]",)
    assert [c.show() for c in steps["wait_before_survey"].fields] == ["duration: 6d → 9d"]
    assert sum(d.enrollments.values()) == 5


def test_migrate_moves_everyone_and_never_resends(svc: Services, journeys: Path) -> None:
    _mid_journey(svc)
    old = svc.plans["post_purchase"].version
    before = {c: sends(svc, c) for c in ("c1", "c2", "c3", "c4", "c5")}
    c1_wait = enrollment(svc, "c1").state["wait_until"]
    _edit(journeys)
    book = _book(svc, journeys)
    new = publish(svc.store, book, NOW).publications[0].version

    # A dry run shows who moves where and that c1's step needs a mapping; nothing changes.
    dry = migrate(svc.store, book, "post_purchase", "live", {}, NOW, dry_run=True)
    assert dry.blocked == {f"await_answer@{old[:12]}": 1}
    assert {(mv.customer_id, mv.from_step, mv.to_step) for mv in dry.moves} >= {
        ("c4", "content_wait", "content_wait")
    }
    with pytest.raises(PosventaError, match="--map await_answer=STEP"):
        migrate(svc.store, book, "post_purchase", "live", {}, NOW)
    assert {enrollment(svc, c).plan_version for c in ("c1", "c4")} == {old}

    done = migrate(
        svc.store, book, "post_purchase", new[:6], parse_mapping(["await_answer=await_score"]), NOW
    )
    assert len(done.moves) == 5 and not done.blocked
    c1 = enrollment(svc, "c1")
    assert (c1.plan_version, c1.state["step"], c1.state["wait_step"]) == (new, "await_score", "await_score")
    assert c1.state["wait_until"] == c1_wait  # the wait c1 started goes on, not restarted
    assert {c: sends(svc, c) for c in before} == before  # ids and keys as they were

    svc.sweep(NOW)
    assert sends(svc, "c5") == [(before["c5"][0][0], "sent")]  # pending before, sent once after
    svc.ingest.apply([delivered("c5", NOW + DAY)], "api", NOW + DAY)
    for day in range(13, 45):
        svc.sweep(T0 + day * DAY)
    for cid in ("c1", "c2", "c3", "c4", "c5"):
        keys = [k for k, _ in sends(svc, cid)]
        assert len(keys) == len(set(keys))  # nobody got a step twice
        assert keys[: len(before[cid])] == [k for k, _ in before[cid]]  # history untouched
        done_steps = [k.split(":")[1] for k in keys]
        assert done_steps.count("thank_you") == 1 and done_steps.count("nps_survey") <= 1
    # c1 timed out at the renamed wait and got the reminder; c5 went the new way (9 days, new subject).
    assert "nps_reminder" in [k.split(":")[1] for k, _ in sends(svc, "c1")]
    assert [k.split(":")[1] for k, s in sends(svc, "c5") if s == "sent"][:3] == [
        "thank_you",
        "delivery_check",
        "nps_survey",
    ]


def test_moving_back_to_a_step_already_done_is_refused(svc: Services, journeys: Path) -> None:
    _mid_journey(svc)
    _edit(journeys)
    book = _book(svc, journeys)
    publish(svc.store, book, NOW)
    back = parse_mapping(["await_answer=nps_survey"])
    dry = migrate(svc.store, book, "post_purchase", "live", back, NOW, dry_run=True)
    [rerun] = dry.reruns
    assert (rerun.customer_id, rerun.to_step) == ("c1", "nps_survey")
    with pytest.raises(PosventaError, match="already passed"):
        migrate(svc.store, book, "post_purchase", "live", back, NOW)
    migrate(svc.store, book, "post_purchase", "live", back, NOW, allow_rerun=True)
    svc.sweep(NOW)
    surveys = [k for k, _ in sends(svc, "c1") if ":nps_survey:" in k]
    assert [k.rsplit(":", 1)[1] for k in surveys] == ["0", "1"]  # asked for: a new occurrence, a new key


def test_bad_mappings_and_versions(svc: Services, journeys: Path) -> None:
    book = _book(svc, journeys)
    with pytest.raises(PosventaError, match="no step nope=x"):
        migrate(svc.store, book, "post_purchase", "live", {"nope": "x"}, T0)
    with pytest.raises(PosventaError, match="no version"):
        migrate(svc.store, book, "post_purchase", "ffff", {}, T0)
    for bad in (["a"], ["=b"], ["a=b", "a=c"]):
        with pytest.raises(PosventaError):
            parse_mapping(bad)


def test_plan_moves_is_pure() -> None:
    plan = compile_file(ROOT / "journeys" / "post_purchase.yaml")
    live: list[Any] = [
        LiveEnrollment(1, "a", "v1", {"step": "content_wait", "visits": {}}, None),
        LiveEnrollment(2, "b", plan.version, {"step": "content_wait"}, None),
        LiveEnrollment(3, "c", "v1", {"step": "gone"}, None),
    ]
    mig = plan_moves("post_purchase", plan.version, plan, live, {})
    assert [(mv.enrollment_id, mv.to_step) for mv in mig.moves] == [(1, "content_wait")]
    assert mig.blocked == {"gone@v1": 1}
