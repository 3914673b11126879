"""Run statistics: grouped failure reasons survive the task and flow-run boundaries, and say why a run is
not clean."""

from __future__ import annotations

from app.stats import ENGINE, MAX_FAILURE_LINES, SHARD, Stats, short_reason


def _engine_failures(n: int, error: str = "KeyError: 'x'") -> Stats:
    st = Stats()
    for i in range(n):
        st.add("pp", "thank_you", "failed")
        st.failures.append(f"enrollment {i}: {error}")  # what advancing records
    return st


def test_engine_failures_are_grouped_by_their_text_without_the_enrollment() -> None:
    st = _engine_failures(3)
    assert st.grouped() == [(ENGINE, "KeyError: 'x'", 3)]
    assert (st.engine_errors, st.failed_sends, st.clean) == (3, 0, False)
    assert st.problems() == "3 enrollments failed in the engine: KeyError: 'x' ×3"


def test_reasons_survive_json_and_records_without_double_counting() -> None:
    st = _engine_failures(60)  # more than the 50 detail lines JSON keeps
    st.add("pp", "thank_you", "failed", 2)
    st.add_reasons([("pp", "thank_you", "failed", "401: invalid key", 2)])
    back = Stats.from_json(st.to_json())
    assert len(back.failures) == 50
    assert back.grouped() == [(ENGINE, "KeyError: 'x'", 60), ("failed", "401: invalid key", 2)]
    merged = Stats().merge(back).merge(Stats.from_records(st.records()))
    assert merged.engine_errors == 120 and merged.failed_sends == 4
    assert merged.counts()["failed"] == 4


def test_merging_folds_new_detail_lines_once() -> None:
    total = Stats()
    for _ in range(3):
        total.merge(_engine_failures(2))
    total.failures.append("enrollment 9: ValueError: boom")  # added after the merges
    total.add("pp", "thank_you", "failed")
    assert total.grouped() == [(ENGINE, "KeyError: 'x'", 6), (ENGINE, "ValueError: boom", 1)]
    assert total.grouped() == [(ENGINE, "KeyError: 'x'", 6), (ENGINE, "ValueError: boom", 1)]  # idempotent
    many = _engine_failures(MAX_FAILURE_LINES + 10)
    many.merge(_engine_failures(5))
    assert len(many.failures) == MAX_FAILURE_LINES and many.engine_errors == MAX_FAILURE_LINES + 15


def test_the_table_has_a_reasons_column_per_step() -> None:
    st = _engine_failures(1)
    st.add("pp", "thank_you", "failed", 3)
    st.add("pp", "thank_you", "unknown")
    st.add_reasons(
        [
            ("pp", "thank_you", "failed", "401: invalid key", 3),
            ("pp", "thank_you", "unknown", "500: oops", 1),
        ]
    )
    [row] = st.table()
    assert row["failed"] == 4
    assert row["failure reasons"] == "401: invalid key ×3; unknown: 500: oops ×1; engine error ×1"


def test_headline_and_problems_name_counts_and_plurals() -> None:
    st = Stats()
    st.add("pp", "thank_you", "sent", 18)
    st.add("pp", "thank_you", "failed", 1)
    st.add_reasons([("pp", "thank_you", "failed", "400:  bad\n address ", 1)])
    assert st.headline(due=19) == "19 due · 18 sent · 1 failed"
    assert st.problems() == "1 send failed: 400: bad address ×1"
    st.reasons[("", "", SHARD, "sweep-shard 2/3 Crashed")] += 1
    assert st.problems().endswith("; 1 shard did not finish: sweep-shard 2/3 Crashed ×1")
    assert Stats().headline(due=0) == "0 due" and Stats().problems() == "" and Stats().clean
    # the parts add up to the due enrollments: the one that sent nothing moved on to a wait
    four = Stats()
    four.add("pp", "thank_you", "failed", 3)
    assert four.headline(due=4) == "4 due · 3 failed · 1 waiting"
    assert Stats(enrollments=2).headline() == "2 advanced"  # no due figure: nothing to add up to


def test_short_reason_is_one_bounded_line() -> None:
    assert short_reason(None) == "no reason given"
    assert short_reason("a\n  b") == "a b"
    assert len(short_reason("x" * 500)) == 200


def test_a_run_that_skipped_everything_due_says_why() -> None:
    st = Stats(enrollments=3)
    st.add("pp", "thank_you", "due", 3)
    st.add("pp", "thank_you", "skipped:expired", 2)
    st.add("pp", "thank_you", "skipped:suppressed:unsubscribed")
    assert st.headline(3) == "3 due · 3 skipped"
    assert st.skips() == "3 skipped: thank_you expired ×2, thank_you suppressed:unsubscribed ×1"
    st.add("pp", "nps_survey", "sent")
    assert st.skips() == ""  # something went out: the table has the skip reasons
