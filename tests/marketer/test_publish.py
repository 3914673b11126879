"""Drafts and live versions: what runs is what was published; ``plan`` names every change and the
enrollments it touches; ``publish`` makes it live for new entrants, and workers see it without a
restart. SQLite (the embedded default)."""

from __future__ import annotations

from pathlib import Path

from mk_builders import DAY, T0, delivered, edit, enrollment, placed, rows, services, settings_for

from app.control import journey_controls
from app.plans import PlanBook
from app.ports import Store
from app.publish import FILE_REMOVED, JourneyDiff, diff_values, plan_changes, publish
from infra.db import models as m
from posventa.compile import load_plans


def _plan(store: Store, journeys: Path) -> dict[str, JourneyDiff]:
    """``posventa plan`` on the journey files in ``journeys``, by journey."""
    return {d.journey_id: d for d in plan_changes(store, PlanBook(store, load_plans(journeys))).journeys}


def test_first_run_publishes_the_files_then_edits_stay_drafts(
    sqlite_url: str, tmp_path: Path, journeys: Path
) -> None:
    settings = settings_for(sqlite_url, tmp_path, journeys)
    first = services(settings)
    live = {j: c.live_version for j, c in journey_controls(first.store).items()}
    assert live["post_purchase"] == first.plans["post_purchase"].version
    [pub] = [p for p in rows(first, m.JourneyPublication) if p.journey_id == "post_purchase"]
    assert pub.kind == "first_run"

    edit(journeys / "post_purchase.yaml", "duration: 6d", "duration: 9d")  # wait_before_survey
    second = services(settings)  # a worker restarting with the edited file: still the published version
    assert second.plans["post_purchase"].version != live["post_purchase"]
    second.ingest.apply([placed("c1")], "api", T0)
    assert enrollment(second, "c1").plan_version == live["post_purchase"]
    assert len(rows(second, m.JourneyPublication)) == 5  # no second first run


def test_auto_publish_can_be_turned_off(sqlite_url: str, tmp_path: Path) -> None:
    svc = services(settings_for(sqlite_url, tmp_path, auto_publish_first_run=False))
    svc.ingest.apply([placed("c1")], "api", T0)
    assert rows(svc, m.Enrollment) == []  # nothing published: nothing runs
    svc.plans.publish(["post_purchase"])
    svc.ingest.apply([placed("c2")], "api", T0)
    assert [e.customer_id for e in rows(svc, m.Enrollment)] == ["c2"]


def test_plan_names_each_change_and_the_enrollments_at_it(
    sqlite_url: str, tmp_path: Path, journeys: Path
) -> None:
    svc = services(settings_for(sqlite_url, tmp_path, journeys))
    svc.ingest.apply([placed("c1"), placed("c2"), placed("c3")], "api", T0)
    svc.ingest.apply([delivered("c1", T0 + DAY), delivered("c2", T0 + DAY)], "api", T0 + DAY)
    svc.sweep(T0 + DAY)  # c1, c2 wait at delivered_check; c3 waits for its delivery
    assert _plan(svc.store, journeys)["post_purchase"].status == "unchanged"

    yaml = journeys / "post_purchase.yaml"
    edit(
        yaml,
        "  - id: delivered_check\n    type: wait\n    duration: 1d",
        "  - id: delivered_check\n    type: wait\n    duration: 2d",
    )
    edit(yaml, 'when: "event.data.score >= 9"', 'when: "event.data.score >= 10"')
    edit(yaml, "on_timeout: nps_reminder", "on_timeout: nps_reminder_v2")
    edit(yaml, "  - id: nps_reminder\n", "  - id: nps_reminder_v2\n")
    edit(journeys / "templates" / "es" / "thank_you.j2", "con cariño", "con mucho cariño")
    d = _plan(svc.store, journeys)["post_purchase"]

    assert d.status == "changed" and d.pending
    steps = {s.step: s for s in d.steps}
    assert steps["nps_reminder_v2"].kind == "added"
    assert steps["nps_reminder"].kind == "removed"
    check = steps["delivered_check"]
    assert [c.show() for c in check.fields] == ["duration: 1d → 2d"]
    assert check.waiting == 2  # c1 and c2 sit there now
    assert (
        steps["by_score"].fields[0].show()
        == 'cases[0].when: "event.data.score >= 9" → "event.data.score >= 10"'
    )
    assert steps["thank_you"].templates == ("thank_you[es]",) and steps["thank_you"].fields == ()
    assert [c.show() for c in steps["await_answer"].fields] == [
        'on_timeout: "nps_reminder" → "nps_reminder_v2"'
    ]
    assert sum(d.enrollments.values()) == 3
    assert "await_answer_again" not in steps  # unchanged steps are not listed


def test_publish_serves_new_entrants_and_workers_see_it_without_restart(
    sqlite_url: str, tmp_path: Path, journeys: Path
) -> None:
    settings = settings_for(sqlite_url, tmp_path, journeys)
    worker = services(settings)  # running since before the edit
    old = worker.plans["post_purchase"].version
    worker.ingest.apply([placed("c1")], "api", T0)

    edit(journeys / "post_purchase.yaml", "duration: 6d", "duration: 9d")
    book = PlanBook(worker.store, load_plans(journeys))  # `posventa publish`, another process
    done = publish(worker.store, book, T0 + DAY)
    [pub] = done.publications
    assert (pub.journey_id, pub.previous_version, pub.kind) == ("post_purchase", old, "publish")

    worker.ingest.apply([placed("c2", T0 + DAY)], "api", T0 + DAY)  # the same worker, next batch
    assert enrollment(worker, "c2").plan_version == pub.version
    assert enrollment(worker, "c1").plan_version == old  # pinned: publishing reroutes nobody
    assert publish(worker.store, book, T0 + 2 * DAY).publications == ()  # idempotent
    assert _plan(worker.store, journeys)["post_purchase"].status == "unchanged"


def test_a_removed_journey_file_stops_entries_on_publish(
    sqlite_url: str, tmp_path: Path, journeys: Path
) -> None:
    svc = services(settings_for(sqlite_url, tmp_path, journeys))
    (journeys / "birthday.yaml").unlink()
    book = PlanBook(svc.store, load_plans(journeys))
    assert {d.journey_id: d.status for d in plan_changes(svc.store, book).journeys}["birthday"] == "removed"
    done = publish(svc.store, book, T0)
    assert done.drained == ("birthday",) and done.publications == ()
    with svc.store.read() as tx:
        control = tx.journeys.control("birthday")
    assert control is not None and (control.state, control.reason) == ("draining", FILE_REMOVED)
    report = plan_changes(svc.store, book)
    assert report.pending == [] and {d.journey_id: d.status for d in report.journeys}["birthday"] == "retired"


def test_plan_on_a_database_never_migrated(journeys: Path) -> None:
    report = plan_changes(None, PlanBook(None, load_plans(journeys)))  # type: ignore[arg-type]
    assert {d.status for d in report.journeys} == {"new"} and len(report.pending) == 5


def test_diff_values_paths() -> None:
    old = {"a": 1, "cases": [{"when": "x"}], "weekdays": [1, 2]}
    new = {"a": 1, "cases": [{"when": "y"}], "weekdays": [1, 2, 3]}
    assert [(c.path, c.old, c.new) for c in diff_values(old, new)] == [
        ("cases[0].when", "x", "y"),
        ("weekdays", [1, 2], [1, 2, 3]),
    ]
    assert diff_values(old, new)[1].show() == "weekdays: [tue, wed] → [tue, wed, thu]"
