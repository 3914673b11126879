"""Compiling and loading plans: what the runtime pins and loads at start."""

from __future__ import annotations

import json
from dataclasses import FrozenInstanceError
from pathlib import Path

import pytest
from core_helpers import plan_of, write_templates

from posventa.compile import load_plans
from posventa.errors import JourneyError, PosventaError
from posventa.plan import JourneyPlan, version_of

JOURNEY = (
    "name: J\ntrigger: {event: order.placed}\nsteps:\n"
    "  - {id: hi, type: send, template: hello, category: transactional}\n"
)


def test_load_plans_compiles_every_journey_of_a_folder(tmp_path: Path) -> None:
    write_templates(tmp_path / "templates", ["hello"])
    (tmp_path / "welcome.yaml").write_text(JOURNEY, encoding="utf-8")
    (tmp_path / "second.yml").write_text(JOURNEY, encoding="utf-8")
    plans = load_plans(tmp_path)
    assert sorted(plans) == ["second", "welcome"]
    assert plans["welcome"].steps["hi"].successors() == ()


def test_same_journey_id_twice_is_an_error(tmp_path: Path) -> None:
    """returns.yaml and returns.yml would silently replace each other in the runtime."""
    write_templates(tmp_path / "templates", ["hello"])
    (tmp_path / "welcome.yaml").write_text(JOURNEY, encoding="utf-8")
    (tmp_path / "welcome.yml").write_text(JOURNEY.replace("name: J", "name: Other"), encoding="utf-8")
    with pytest.raises(JourneyError) as info:
        load_plans(tmp_path)
    [d] = info.value.diagnostics
    assert (d.path, d.line, d.column, d.code) == (str(tmp_path / "welcome.yml"), 1, 1, "duplicate-journey")
    assert d.message == f"journey 'welcome' is also defined by {tmp_path / 'welcome.yaml'}"


def test_load_plans_reports_the_problems_of_every_file(tmp_path: Path) -> None:
    write_templates(tmp_path / "templates", ["hello"])
    (tmp_path / "a.yaml").write_text(JOURNEY.replace("hello", "helo"), encoding="utf-8")
    (tmp_path / "b.yaml").write_text(JOURNEY.replace("order.placed", "order.place"), encoding="utf-8")
    with pytest.raises(JourneyError) as info:
        load_plans(tmp_path)
    assert [(Path(d.path).name, d.code) for d in info.value.diagnostics] == [
        ("a.yaml", "missing-template"),
        ("b.yaml", "unknown-event"),
    ]


def test_plan_round_trips_through_json(templates_root: Path) -> None:
    plan = plan_of(JOURNEY, templates_root)
    assert JourneyPlan.from_json(plan.to_json()) == plan
    with pytest.raises(PosventaError, match="plan format 2 is not supported"):
        JourneyPlan.from_json({**plan.to_json(), "format": 2})


def test_plan_is_read_only(templates_root: Path) -> None:
    plan = plan_of(JOURNEY, templates_root)
    with pytest.raises(TypeError):
        plan.steps["other"] = plan.steps["hi"]  # type: ignore[index]
    with pytest.raises(FrozenInstanceError):
        plan.steps["hi"].template = "other"  # type: ignore[misc]


FORMAT1 = Path(__file__).parent / "fixtures" / "plans_format1"


@pytest.mark.parametrize("path", sorted(FORMAT1.glob("*.json")), ids=lambda p: p.stem)
def test_stored_format_1_plans_read_back_unchanged(path: Path) -> None:
    """Plans as the runtime stored them before typed plans and the later language features (frozen
    copies, never regenerated): they load, keep their version and write back the same JSON."""
    stored = json.loads(path.read_text(encoding="utf-8"))
    plan = JourneyPlan.from_json(stored)
    assert plan.to_json() == stored
    assert version_of(plan.body()) == stored["version"]
