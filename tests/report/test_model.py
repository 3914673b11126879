"""The pure parts: rates, intervals, NPS, medians from histograms, JSON form, number formatting."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from infra.db.metrics._sql import median_of
from infra.report import fmt
from infra.report.i18n import check_locale, label
from infra.report.model import (
    Churn,
    NpsCounts,
    ReportError,
    StepFunnel,
    VariantResult,
    newcombe,
    rate,
    to_plain,
    wilson,
)


@pytest.mark.parametrize(
    ("counts", "expected"),
    [
        # Newcombe (1998), "Interval estimation for the difference between independent proportions",
        # Table II, method 10 (hybrid score): the published limits.
        ((56, 70, 48, 80), (0.2, 0.0524, 0.3339)),
        ((9, 10, 3, 10), (0.6, 0.1705, 0.8090)),
        ((6, 7, 2, 7), (0.5714, 0.0582, 0.8062)),
        ((5, 56, 0, 29), (0.0893, -0.0381, 0.1926)),
    ],
)
def test_newcombe_matches_the_published_examples(
    counts: tuple[int, int, int, int], expected: tuple[float, float, float]
) -> None:
    found = newcombe(*counts)
    assert found is not None
    assert tuple(round(x, 4) for x in found) == pytest.approx(expected, abs=1e-4)


def test_wilson_and_empty_groups() -> None:
    low, high = wilson(81, 263) or (0, 0)
    assert (round(low, 4), round(high, 4)) == (0.2553, 0.3662)
    assert wilson(0, 0) is None and newcombe(1, 2, 0, 0) is None
    assert wilson(0, 10) == (0.0, pytest.approx(0.2775, abs=1e-4))  # never below 0
    arm = VariantResult("plain", 10, 9)
    assert arm.against(None) is arm and arm.against(VariantResult("holdout")) is arm  # empty holdout


def test_rates_and_nps() -> None:
    assert rate(1, 3) == 0.3333 and rate(0, 0) is None
    assert NpsCounts(responses=7, promoters=3, passives=2, detractors=2).nps == 14.3
    assert NpsCounts().nps is None
    assert NpsCounts(responses=2, detractors=2).nps == -100.0


@pytest.mark.parametrize(
    ("buckets", "expected"),
    [
        ([], None),
        ([(409, 0, 0.0)], None),
        ([(409, 1, 60.0)], 60.0),
        ([(409, 1, 60.0), (478, 1, 120.0), (519, 1, 180.0)], 120.0),
        ([(519, 1, 180.0), (409, 1, 60.0), (478, 1, 120.0), (818, 1, 3600.0)], 150.0),  # unordered input
        ([(409, 3, 183.0), (818, 1, 3600.0)], 61.0),  # the middle two share a bucket: its mean
    ],
)
def test_median_of_histogram(buckets: list[tuple[int, int, float]], expected: float | None) -> None:
    assert median_of(buckets) == expected


def test_to_plain_names_fields_then_derived_values() -> None:
    step = StepFunnel("j", "s", None, sent=4, delivered=2, opened=1)
    plain = to_plain(step)
    assert list(plain)[:4] == ["journey_id", "step_id", "variant", "type"]
    assert (plain["delivery_rate"], plain["open_rate"], plain["deferred"]) == (0.5, 0.5, 0)
    churn = to_plain(Churn(180, datetime(2026, 3, 2, tzinfo=UTC), 4, 1))
    assert churn == {
        "window_days": 180,
        "as_of": "2026-03-02T00:00:00+00:00",
        "customers": 4,
        "churned": 1,
        "rate": 0.25,
    }


def test_formatting_per_locale() -> None:
    assert (fmt.percent(0.4567, "es"), fmt.percent(0.4567, "en"), fmt.percent(None, "en")) == (
        "45,7 %",
        "45.7%",
        "—",
    )
    assert (fmt.number(12345.5, "es", 2), fmt.number(12345.5, "en", 2)) == ("12.345,50", "12,345.50")
    assert [fmt.duration(s, "en") for s in (None, 45, 720, 12600, 183600)] == [
        "—",
        "45 s",
        "12.0 min",
        "3.5 h",
        "2.1 d",
    ]
    assert fmt.duration(12600, "es") == "3,5 h"
    assert (fmt.signed_percent_points(0.032, "es"), fmt.signed_percent_points(-0.1, "en")) == (
        "+3,2 pp",
        "-10.0 pp",
    )
    assert label("nps_summary", "en", nps=1, responses=2, promoters=3, passives=4, detractors=5).startswith(
        "NPS 1"
    )
    assert label("churn", "es") == "Abandono" and label("churn", "en") == "Churn"
    with pytest.raises(ReportError, match="unknown locale 'fr'"):
        check_locale("fr")
