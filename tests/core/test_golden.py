"""The compiled plan of every shipped journey, checked in as JSON.

A plan is what enrollments pin, so any change to it — a step, a default, a template's digest — must be
seen in review. Journeys are compiled from the repository root, so ``source`` is ``journeys/<id>.yaml``
on every machine. After an intended change:

    pytest tests/core/test_golden.py --update-goldens
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path

import pytest
from core_helpers import REPO

from posventa.compile import compile_file
from posventa.errors import JourneyError
from posventa.plan import JourneyPlan

GOLDEN = REPO / "tests" / "golden"
JOURNEYS = sorted((REPO / "journeys").glob("*.yaml"))
REGENERATE = "pytest tests/core/test_golden.py --update-goldens"


def _compile(path: Path, monkeypatch: pytest.MonkeyPatch) -> JourneyPlan:
    monkeypatch.chdir(REPO)
    try:
        return compile_file(Path("journeys") / path.name)
    except JourneyError as exc:
        problems = str(exc)
    pytest.fail(
        f"journeys/{path.name} does not compile, so it has no golden plan:\n{problems}", pytrace=False
    )


def test_there_are_journeys() -> None:
    assert (REPO / "journeys" / "post_purchase.yaml") in JOURNEYS


@pytest.mark.parametrize("path", JOURNEYS, ids=[p.stem for p in JOURNEYS])
def test_plan_matches_golden(path: Path, monkeypatch: pytest.MonkeyPatch, update_goldens: bool) -> None:
    plan = _compile(path, monkeypatch)
    assert plan.source == f"journeys/{path.name}"
    golden = GOLDEN / f"{plan.id}.json"
    text = plan.dumps()
    if update_goldens:
        GOLDEN.mkdir(parents=True, exist_ok=True)
        golden.write_text(text, encoding="utf-8")
        return
    if not golden.exists():
        pytest.fail(
            f"no golden plan for journeys/{path.name} (tests/golden/{plan.id}.json); create it with:\n"
            f"    {REGENERATE}",
            pytrace=False,
        )
    expected = golden.read_text(encoding="utf-8")
    if json.loads(expected) != plan.to_json():
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(True),
                text.splitlines(True),
                f"tests/golden/{plan.id}.json",
                f"compiled journeys/{path.name}",
                n=2,
            )
        )
        pytest.fail(
            f"the compiled plan of journeys/{path.name} differs from tests/golden/{plan.id}.json.\n"
            f"If the change is intended, regenerate the goldens with:\n    {REGENERATE}\n\n{diff}",
            pytrace=False,
        )
    # A golden is itself a loadable plan: the runtime stores exactly this JSON.
    assert JourneyPlan.from_json(json.loads(expected)) == plan


def test_no_golden_without_a_journey(update_goldens: bool) -> None:
    ids = {p.stem for p in JOURNEYS}
    stale = sorted(g for g in GOLDEN.glob("*.json") if g.stem not in ids)
    if update_goldens:
        for g in stale:
            g.unlink()
        return
    assert not stale, (
        f"golden plans without a journey: {', '.join(g.name for g in stale)}; "
        f"remove them with:\n    {REGENERATE}"
    )


def test_version_is_a_content_hash(monkeypatch: pytest.MonkeyPatch) -> None:
    """The version hashes the body only: moving the file does not change it, editing the plan does."""
    plan = _compile(REPO / "journeys" / "post_purchase.yaml", monkeypatch)
    from posventa.plan import version_of

    assert plan.version == version_of(plan.body())
    moved = JourneyPlan.from_json({**plan.to_json(), "source": "/elsewhere/post_purchase.yaml"})
    assert moved.version == plan.version and moved.body() == plan.body()
    body = plan.body()
    body["steps"]["thank_you"]["category"] = "promotional"
    assert version_of(body) != plan.version
