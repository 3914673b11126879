"""The hostile corpus: journeys and templates written to break ``validate`` — each must be refused with a
positioned diagnostic, never a traceback or a hang.

Each ``tests/hostile/<case>.yaml`` is one attack or accident (control characters and bad encodings,
alias bombs, deep nesting, huge numbers and durations, YAML tags, attribute tricks and constant
explosions in conditions); the ``tpl_*`` cases send a template of ``tests/hostile/templates/<locale>/``
that recurses, loops without end, repeats a string a billion times, reaches for ``__class__``… The table
below is the contract: the code and the line:column of the first diagnostic. A few cases are generated
here instead of committed (a 10 MB journey, a 300 KB template).

Time: each case is checked in-process (the corpus takes about 2 s, the two cases stopped by the render's
time limit most of it); five go through the real CLI. The 2 s per file budget, CLI start included, is
measured by ``python tests/hostile/budget.py``, not asserted here. The 500 seeded mutations of the
shipped journeys take about 4 s (about 60 of them are valid journeys, which compile).
"""

from __future__ import annotations

import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

from posventa.compile import compile_checked
from posventa.errors import JourneyError
from posventa.loader import LoadFailed, load_bytes
from posventa.simulate import simulate
from posventa.templates import MAX_TEMPLATE_BYTES, Templates
from posventa.validate import check_document, check_file

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SHIPPED = sorted((REPO / "journeys").glob("*.yaml"))
TEMPLATE_IN_MESSAGE = re.compile(r"\b(es|en)/[\w.]+\.j2\b")

#: (case, code of the first diagnostic, its line, its column)
CORPUS: list[tuple[str, str, int, int]] = [
    ("alias_bomb", "alias-expansion", 2, 8),
    ("alias_bomb_mappings", "alias-expansion", 2, 13),
    ("alias_to_itself", "yaml-syntax", 1, 7),
    ("ansi_escape_in_name", "control-character", 1, 7),
    ("bel_in_event", "control-character", 3, 18),
    ("binary_tag", "yaml-syntax", 1, 7),
    ("bom_in_the_middle", "control-character", 2, 1),
    ("c1_csi", "control-character", 1, 7),
    ("c1_next_line", "control-character", 1, 11),
    ("condition_attr_filter", "bad-condition", 8, 15),
    ("condition_attr_plain", "bad-condition", 8, 15),
    ("condition_class_mro", "bad-condition", 8, 15),
    ("condition_deep_parentheses", "bad-condition", 8, 15),
    ("condition_division_by_zero", "bad-condition", 8, 15),
    ("condition_getitem_dunder", "bad-condition", 8, 15),
    ("condition_globals", "bad-condition", 8, 15),
    ("condition_huge_power", "bad-condition", 8, 15),
    ("condition_huge_repetition", "bad-condition", 8, 15),
    ("condition_statement_injection", "bad-condition", 8, 15),
    ("condition_syntax", "bad-condition", 8, 15),
    ("condition_too_long", "bad-condition", 8, 15),
    ("condition_underscore_name", "bad-condition", 8, 15),
    ("condition_unknown_global", "unknown-name", 8, 15),
    ("cooldown_weeks", "bad-duration", 6, 13),
    ("custom_include_tag", "yaml-syntax", 1, 7),
    ("deep_block_nesting", "too-deep", 40, 63),
    ("deep_flow_nesting", "too-deep", 1, 38),
    ("delete_character", "control-character", 7, 16),
    ("duplicate_keys", "duplicate-key", 9, 1),
    ("duration_overflow", "bad-duration", 7, 15),
    ("duration_past_ten_years", "bad-duration", 7, 15),
    ("duration_thousand_digits", "bad-duration", 7, 15),
    ("empty", "empty-file", 1, 1),
    ("encoded_surrogate", "encoding", 1, 11),
    ("hex_integer_huge", "number-too-large", 9, 8),
    ("huge_integer", "number-too-large", 8, 14),
    ("infinity", "number-too-large", 7, 24),
    ("latin1_text", "encoding", 1, 10),
    ("line_separator", "control-character", 1, 11),
    ("list_as_key", "invalid-key", 9, 3),
    ("list_document", "invalid-journey", 1, 1),
    ("many_values", "too-many-values", 9, 29949),
    ("merge_key", "invalid-key", 6, 6),
    ("non_string_keys", "unknown-field", 9, 1),
    ("noncharacter_fffe", "control-character", 1, 11),
    ("noncharacter_ffff", "control-character", 2, 9),
    ("not_a_number", "number-too-large", 5, 24),
    ("nul_in_value", "control-character", 1, 11),
    ("null_document", "invalid-journey", 1, 1),
    ("offset_huge_negative", "bad-duration", 4, 11),
    ("only_comments", "empty-file", 1, 1),
    ("overlong_utf8", "encoding", 1, 11),
    ("python_name_tag", "yaml-syntax", 1, 7),
    ("python_object_tag", "yaml-syntax", 1, 7),
    ("scalar_document", "invalid-journey", 1, 1),
    ("set_tag", "yaml-syntax", 2, 10),
    ("step_id_with_newline", "invalid-value", 5, 9),
    ("steps_not_a_list", "invalid-value", 4, 8),
    ("tab_indentation", "yaml-syntax", 3, 1),
    ("thousand_digit_integer", "number-too-large", 9, 8),
    ("time_out_of_range", "bad-time", 7, 9),
    ("timestamp_tag", "yaml-syntax", 9, 14),
    ("timezone_path", "bad-timezone", 5, 21),
    ("tpl_attr_filter", "bad-template", 7, 15),
    ("tpl_binary_recursion", "bad-template", 7, 15),
    ("tpl_center_width", "bad-template", 7, 15),
    ("tpl_class_mro", "bad-template", 7, 15),
    ("tpl_doubling", "bad-template", 7, 15),
    ("tpl_format_width", "bad-template", 7, 15),
    ("tpl_globals", "bad-template", 7, 15),
    ("tpl_huge_repetition", "bad-template", 7, 15),
    ("tpl_import_missing", "bad-template", 7, 15),
    ("tpl_latin1", "bad-template", 7, 15),
    ("tpl_list_repetition", "bad-template", 7, 15),
    ("tpl_loop_output", "bad-template", 7, 15),
    ("tpl_missing_include", "bad-template", 7, 15),
    ("tpl_mutation", "bad-template", 7, 15),
    ("tpl_mutual_include", "bad-template", 7, 15),
    ("tpl_nested_range", "bad-template", 7, 15),
    ("tpl_no_blocks", "bad-template", 7, 15),
    ("tpl_nul", "bad-template", 7, 15),
    ("tpl_power", "bad-template", 7, 15),
    ("tpl_range_huge", "bad-template", 7, 15),
    ("tpl_recursive_macro", "bad-template", 7, 15),
    ("tpl_self_include", "bad-template", 7, 15),
    ("tpl_slow_sort_loop", "bad-template", 7, 15),
    ("tpl_str_format_width", "bad-template", 7, 15),
    ("tpl_subclasses", "bad-template", 7, 15),
    ("tpl_syntax", "bad-template", 7, 15),
    ("tpl_type_error", "bad-template", 7, 15),
    ("tpl_underscore_variable", "bad-template", 7, 15),
    ("truncated_utf8", "encoding", 9, 1),
    ("two_documents", "yaml-syntax", 9, 1),
    ("unclosed_flow", "yaml-syntax", 5, 1),
    ("unterminated_quote", "yaml-syntax", 9, 1),
    ("utf16_with_bom", "encoding", 1, 1),
    ("vertical_tab", "control-character", 3, 1),
    ("very_long_line", "invalid-value", 1, 7),
]


def test_the_corpus_is_the_table() -> None:
    files = {p.stem for p in HERE.glob("*.yaml")}
    assert files == {case for case, *_ in CORPUS}
    assert len(files) >= 60


@pytest.mark.parametrize(("case", "code", "line", "col"), CORPUS, ids=[c[0] for c in CORPUS])
def test_hostile_journey_is_refused_with_a_position(case: str, code: str, line: int, col: int) -> None:
    with pytest.raises(JourneyError) as info:
        check_file(HERE / f"{case}.yaml")
    found = info.value.diagnostics
    first = found[0]
    assert (first.code, first.line, first.column) == (code, line, col), first.render()
    assert first.path == str(HERE / f"{case}.yaml")
    for d in found:
        assert d.line >= 1 and d.column >= 1, d.render()
        assert d.code != "internal-error", d.render()
    if code == "bad-template":
        assert TEMPLATE_IN_MESSAGE.search(first.message), first.render()


def test_a_10_mb_journey_is_refused_by_its_size(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    path.write_bytes(b"name: Huge\n" + b"# padding\n" * 1_000_000)
    with pytest.raises(JourneyError) as info:
        check_file(path)
    (d,) = info.value.diagnostics
    assert (d.code, d.line, d.column) == ("file-too-large", 1, 1)


def test_an_oversized_template_is_refused(tmp_path: Path) -> None:
    for locale in ("es", "en"):
        (tmp_path / "templates" / locale).mkdir(parents=True)
        body = "{% block subject %}S{% endblock %}{% block text %}T{% endblock %}{% block html %}"
        padding = "x" * (MAX_TEMPLATE_BYTES + 1)
        (tmp_path / "templates" / locale / "big.j2").write_text(body + padding + "{% endblock %}")
    path = tmp_path / "big.yaml"
    path.write_text((HERE / "tpl_nul.yaml").read_text().replace("tpl_nul", "big"))
    with pytest.raises(JourneyError) as info:
        check_file(path)
    assert {d.code for d in info.value.diagnostics} == {"bad-template"}
    assert "larger than 256 KiB" in info.value.diagnostics[0].message


CLI_CASES = [
    "nul_in_value",
    "alias_bomb",
    "utf16_with_bom",
    "condition_class_mro",
    "tpl_recursive_macro",
]


@pytest.mark.parametrize("case", CLI_CASES)
def test_the_cli_exits_1_with_the_diagnostic_and_no_traceback(case: str) -> None:
    _, code, line, col = next(row for row in CORPUS if row[0] == case)
    path = HERE / f"{case}.yaml"
    done = subprocess.run(
        [sys.executable, "-m", "posventa", "validate", str(path)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert f"{path}:{line}:{col}: error[{code}]" in done.stdout


# ------------------------------------------------------------------------------------------ mutations
def _mutate(data: bytes, rng: random.Random) -> bytes:
    """One to three random edits: a byte flip, a line deleted or repeated, two keys swapped, a hostile
    snippet inserted, the file cut short."""
    for _ in range(rng.randint(1, 3)):
        lines = data.split(b"\n")
        op = rng.randrange(6)
        if op == 0 and data:
            i = rng.randrange(len(data))
            data = data[:i] + bytes([rng.randrange(256)]) + data[i + 1 :]
        elif op == 1 and len(lines) > 1:
            del lines[rng.randrange(len(lines))]
            data = b"\n".join(lines)
        elif op == 2:
            i = rng.randrange(len(lines))
            lines.insert(i, lines[i])
            data = b"\n".join(lines)
        elif op == 3:
            keyed = [i for i, line in enumerate(lines) if b":" in line]
            if len(keyed) >= 2:
                a, b = rng.sample(keyed, 2)
                ka, kb = lines[a].split(b":", 1)[0], lines[b].split(b":", 1)[0]
                lines[a] = kb + b":" + lines[a].split(b":", 1)[1]
                lines[b] = ka + b":" + lines[b].split(b":", 1)[1]
                data = b"\n".join(lines)
        elif op == 4:
            snippet = rng.choice(
                [
                    b"\x00",
                    b"&a ",
                    b"*a",
                    b"[",
                    b"{",
                    b": ",
                    b"\t",
                    b"!!python/object ",
                    b"9" * 40,
                    b"- ",
                    b"'",
                    b"999999999d",
                    b"{{ ",
                    b"__class__",
                    b"\xff\xfe",
                    b"<<: *a",
                    b"? ",
                    b"---\n",
                    b"~",
                ]
            )
            i = rng.randrange(len(data) + 1)
            data = data[:i] + snippet + data[i:]
        else:
            data = data[: rng.randrange(len(data) + 1)]
    return data


def test_500_seeded_mutations_of_the_shipped_journeys_never_crash() -> None:
    """Every mutant is valid or refused with positioned diagnostics; the valid ones compile, and every
    tenth of those runs briefly in the simulator."""
    templates = Templates(REPO / "journeys" / "templates")
    sources = [(p.stem, p.read_bytes()) for p in SHIPPED]
    outcomes = {"valid": 0, "refused": 0}
    for seed in range(500):
        rng = random.Random(seed)
        stem, data = rng.choice(sources)
        mutant = _mutate(data, rng)
        path = f"journeys/{stem}.yaml"
        try:
            checked = check_document(load_bytes(mutant, path), stem, templates)
        except LoadFailed as exc:
            problems = exc.diagnostics
        except JourneyError as exc:
            problems = exc.diagnostics
        else:
            plan = compile_checked(checked)
            if outcomes["valid"] % 10 == 0:
                simulate(plan, customers=3, days=30, seed=seed)
            outcomes["valid"] += 1
            continue
        outcomes["refused"] += 1
        assert problems, f"seed {seed}: refused without a diagnostic"
        for d in problems:
            assert d.line >= 1 and d.column >= 1, f"seed {seed}: {d.render()}"
            assert d.code != "internal-error", f"seed {seed}: {d.render()}"
    assert outcomes["refused"] > 250 and outcomes["valid"] > 10, outcomes
