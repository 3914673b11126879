"""The ``posventa`` command: exit codes, output formats, and no tracebacks for a user's mistakes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from core_helpers import REPO

from posventa.cli import main
from posventa.loader import load_file
from posventa.schema import STEP_TYPES

BROKEN_YAML = "name: Broken\ntrigger: [order.placed\nsteps: []\n"
BAD_JOURNEY = (
    "name: Bad\ntrigger:\n  event: order.placed\nsteps:\n  - id: start\n    type: goto\n"
    "    target: referal_ask\n  - id: referral_ask\n    type: exit\n"
)


@pytest.fixture(autouse=True)
def at_repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI reads ./journeys by default; run every test from the repository root, in English."""
    monkeypatch.chdir(REPO)
    monkeypatch.delenv("POSVENTA_JOURNEYS_DIR", raising=False)
    monkeypatch.setenv("POSVENTA_LANG", "en")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------- validate
def test_validate_shipped_journeys(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "validate")
    n = len(list((REPO / "journeys").glob("*.yaml")))
    assert code == 0, out
    # Only the shipped shop-policy examples are flagged (journeys/templates/*/_shop.j2, tests/marketer).
    assert all("warning[placeholder]" in line for line in out.splitlines() if not line.startswith("  hint:"))
    assert f"{n} journey files valid" in err


def test_validate_bad_file_prints_the_diagnostic(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = write(tmp_path, "bad.yaml", BAD_JOURNEY)
    code, out, err = run(capsys, "validate", str(path))
    assert code == 1
    assert out == (
        f"{path}:7:13: error[unknown-step]: goto target 'referal_ask' does not exist\n"
        "  hint: did you mean 'referral_ask'?\n"
    )
    assert "1 error in 1 journey file" in err


def test_validate_reports_every_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    write(tmp_path, "bad.yaml", BAD_JOURNEY)
    write(tmp_path, "broken.yaml", BROKEN_YAML)
    code, out, _ = run(capsys, "validate", str(tmp_path))
    assert code == 1
    assert f"{tmp_path / 'bad.yaml'}:7:13: error[unknown-step]" in out
    assert f"{tmp_path / 'broken.yaml'}:3:6: error[yaml-syntax]" in out


SEVERAL_ERRORS = """name: Several
trigger:
  event: order.placed
steps:
  - id: start
    type: send
    template: thank_you
    category: sometimes
  - id: later
    type: wait
    duration: 2d
    next: finnish
  - id: ask
    type: send
    template: no_such_template
    category: promotional
  - id: finish
    type: exit
"""


def test_validate_reports_independent_errors_in_one_pass(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A schema error in one step does not hide a jump to a missing step or a missing template in others
    (fix one, and the others were already on the list), each at its own file:line:col."""
    path = write(tmp_path, "several.yaml", SEVERAL_ERRORS)
    code, out, err = run(capsys, "validate", "--templates", str(REPO / "journeys" / "templates"), str(path))
    assert code == 1
    found = [line.split(": ", 2)[:2] for line in out.splitlines() if not line.startswith("  hint:")]
    assert [(where.removeprefix(f"{path}:"), what) for where, what in found] == [
        ("8:15", "error[invalid-value]"),
        ("12:11", "error[unknown-step]"),
        ("15:15", "error[missing-template]"),
    ], out
    assert "  hint: did you mean 'finish'?" in out
    assert "3 errors in 1 journey file" in err


def test_validate_same_journey_twice(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    write(tmp_path, "bad.yaml", BAD_JOURNEY)
    write(tmp_path, "bad.yml", BAD_JOURNEY)
    code, out, _ = run(capsys, "validate", str(tmp_path))
    assert code == 1
    assert f"{tmp_path / 'bad.yml'}:1:1: error[duplicate-journey]: journey 'bad' is also defined by" in out


def test_validate_json_format(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = write(tmp_path, "bad.yaml", BAD_JOURNEY)
    code, out, _ = run(capsys, "validate", "--format", "json", str(path))
    assert code == 1
    data = json.loads(out)
    assert data["files"] == [str(path)]
    assert data["diagnostics"] == [
        {
            "path": str(path),
            "line": 7,
            "column": 13,
            "code": "unknown-step",
            "message": "goto target 'referal_ask' does not exist",
            "hint": "did you mean 'referral_ask'?",
            "severity": "error",
        }
    ]
    code, out, _ = run(capsys, "validate", "--format", "json", "journeys/post_purchase.yaml")
    assert code == 0 and {d["code"] for d in json.loads(out)["diagnostics"]} <= {"placeholder"}


def test_messages_follow_the_language(capsys: pytest.CaptureFixture[str]) -> None:
    one = "journeys/post_purchase.yaml"
    assert "1 recorrido válido" in run(capsys, "--lang", "es", "validate", one)[2]
    assert "1 journey file valid" in run(capsys, "validate", one)[2]  # --lang does not stick


# ------------------------------------------------------------------------------------ usage errors
@pytest.mark.parametrize(
    "argv",
    [
        ["teleport"],  # unknown command
        [],  # no command
        ["compile"],  # missing journey
        ["validate", "no/such/journey.yaml"],  # missing path
        ["validate", "--format", "xml"],
        ["simulate", "post_purchase", "--customers", "many"],
    ],
)
def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert "Traceback" not in out + err
    assert err.strip()


def test_validate_empty_folder_is_a_usage_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "validate", str(tmp_path))
    assert code == 2 and "no journey files" in err


# ------------------------------------------------------------------------------------------ schema
def test_schema_is_json_schema_for_journeys(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "schema")
    assert code == 0
    schema = json.loads(out)
    jsonschema.Draft202012Validator.check_schema(schema)
    items = schema["properties"]["steps"]["items"]
    assert items["discriminator"]["propertyName"] == "type"
    assert set(items["discriminator"]["mapping"]) == set(STEP_TYPES)
    assert len(items["oneOf"]) == len(STEP_TYPES) == 9
    consts = set()
    for ref in items["oneOf"]:
        model = schema["$defs"][ref["$ref"].split("/")[-1]]
        consts.add(model["properties"]["type"]["const"])
        assert model["additionalProperties"] is False  # typos are errors in editors too
    assert consts == set(STEP_TYPES)


def test_schema_validates_the_shipped_journey(capsys: pytest.CaptureFixture[str]) -> None:
    schema = json.loads(run(capsys, "schema")[1])
    validator = jsonschema.Draft202012Validator(schema)
    journey = load_file(REPO / "journeys" / "post_purchase.yaml").data
    assert list(validator.iter_errors(journey)) == []
    typo = {**journey, "steps": [*journey["steps"], {"id": "x", "type": "sned"}]}
    assert list(validator.iter_errors(typo))
    extra = {**journey, "steps": [{**journey["steps"][0], "tempalte": "x"}, *journey["steps"][1:]]}
    assert list(validator.iter_errors(extra))
    # Editors and `posventa validate` agree on every shipped journey, not only this one.
    for path in sorted((REPO / "journeys").glob("*.yaml")):
        assert [e.message for e in validator.iter_errors(load_file(path).data)] == [], path.name


def test_schema_to_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out_file = tmp_path / "journey.schema.json"
    code, out, _ = run(capsys, "schema", "-o", str(out_file))
    assert (code, out) == (0, "")
    assert json.loads(out_file.read_text(encoding="utf-8"))["title"] == "Posventa journey"


# ------------------------------------------------------------------------ compile, graph, simulate
def test_compile_prints_the_plan(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "compile", "post_purchase")
    plan = json.loads(out)
    assert code == 0
    assert (plan["id"], plan["start"], plan["source"]) == (
        "post_purchase",
        "thank_you",
        "journeys/post_purchase.yaml",
    )


def test_graph_prints_a_mermaid_flowchart(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "graph", "post_purchase")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "flowchart TD"
    assert "  START --> thank_you" in lines
    assert '  await_delivery -->|"timeout"| late_apology' in lines
    assert '  referral_split -->|"holdout 10%"| content_wait' in lines
    assert '  more_content -->|"again (×3)"| content_wait' in lines
    assert '  content_wait(["content_wait<br/>⏳ 30d at 10:00 on tue,wed,thu"])' in lines


def test_simulate_prints_a_timeline(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "simulate", "post_purchase", "--customers", "30", "--days", "60", "--seed", "3"
    )
    assert code == 0
    assert "30 customers × 60 days: 3" in out  # 30 orders and the repeat purchases within 60 days
    assert "Timeline of customer c000000" in out
    assert "send thank_you (transactional" in out


def test_simulate_scripted_events(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    script = write(
        tmp_path,
        "events.jsonl",
        '{"customer": "ana", "at": "0d", "type": "order.placed", "order_id": "A-1", '
        '"profile": {"locale": "en"}}\n'
        '{"customer": "ana", "at": "1d", "type": "order.canceled", "order_id": "A-1"}\n',
    )
    code, out, _ = run(capsys, "simulate", "post_purchase", "--events", str(script))
    assert code == 0
    assert "1 customer × 120 days: 1 enrolled, " in out
    assert "Timeline of customer ana (en):" in out  # what is known, and no empty "—"
    assert "2026-01-06 08:00 UTC  ended: exited (event:order.canceled)" in out


def test_simulate_reports_in_the_chosen_language_and_in_utc(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Times written with an offset are printed in UTC, as labelled; --lang es gives a Spanish report."""
    script = write(
        tmp_path,
        "events.jsonl",
        '{"customer": "ana", "at": "2026-01-05T10:30:00+02:00", "type": "order.placed"}\n'
        '{"customer": "ana", "at": "2026-01-06T10:00:00-05:00", "type": "order.canceled"}\n',
    )
    code, out, _ = run(capsys, "--lang", "es", "simulate", "post_purchase", "--events", str(script))
    assert code == 0
    assert "Recorrido post_purchase (Post-purchase follow-up)" in out
    assert "1 cliente × 120 días: 1 inscripción, " in out
    assert "Línea de tiempo del cliente ana:" in out  # no locale nor zone in the script: no "(—, —)"
    assert "  2026-01-05 08:30 UTC  envío thank_you (transactional, es)" in out
    assert "  2026-01-06 15:00 UTC  terminó: exited (event:order.canceled)" in out
    assert "paso" in out and "Resultados:" in out
    assert not any(word in out for word in ("Journey", "Timeline", "Outcomes", "customers"))


# ----------------------------------------------------------------------------------- no tracebacks
def _mistakes(tmp_path: Path) -> list[list[str]]:
    broken = write(tmp_path, "broken.yaml", BROKEN_YAML)
    bad_events = write(tmp_path, "bad.jsonl", '{"customer": "c1", "type": "order.placed"}\n{oops\n')
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes("name: Campaña\n".encode("latin-1"))
    return [
        ["graph", "no_such_journey"],
        ["simulate", "no_such_journey"],
        ["compile", str(tmp_path / "missing.yaml")],
        ["validate", str(broken)],
        ["compile", str(broken)],
        ["validate", str(latin1)],
        ["simulate", "post_purchase", "--events", str(bad_events)],
        ["simulate", "post_purchase", "--events", str(tmp_path / "missing.jsonl")],
        ["simulate", "post_purchase", "--customers", "0"],
        ["schema", "-o", str(tmp_path / "no" / "such" / "folder" / "schema.json")],
    ]


def test_user_mistakes_never_print_a_traceback(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    for argv in _mistakes(tmp_path):
        code, out, err = run(capsys, *argv)
        assert code in (1, 2), (argv, out, err)
        assert "Traceback" not in out + err, argv
        assert err.strip(), argv


def test_error_messages_name_the_problem(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert (
        "error: no journey 'no_such_journey' (journeys/no_such_journey.yaml does not exist)"
        in run(capsys, "graph", "no_such_journey")[2]
    )
    bad = write(tmp_path, "bad.jsonl", "{oops\n")
    assert f"error: {bad}:1: " in run(capsys, "simulate", "post_purchase", "--events", str(bad))[2]
    broken = write(tmp_path, "broken.yaml", BROKEN_YAML)
    assert f"{broken}:3:6: error[yaml-syntax]: invalid YAML" in run(capsys, "compile", str(broken))[2]


def test_real_process_exit_codes(tmp_path: Path) -> None:
    """Through the console entry point (``python -m posventa``), as a user runs it."""
    broken = write(tmp_path, "broken.yaml", BROKEN_YAML)
    proc = subprocess.run(
        [sys.executable, "-m", "posventa", "validate", str(broken)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert f"{broken}:3:6: error[yaml-syntax]" in proc.stdout


#: What ``posventa validate`` must never import: the database, workflow and web stacks (they would make a
#: marketer's quick check slow, and it needs none of them).
HEAVY = ("sqlalchemy", "prefect", "fastapi", "psycopg2", "starlette", "uvicorn", "sendgrid")


def test_validate_imports_no_database_workflow_or_web_library() -> None:
    """In a fresh interpreter, validating the shipped journeys (every command registered, as the console
    entry point does) leaves none of those packages in ``sys.modules``."""
    probe = (
        "import sys\n"
        "from posventa.cli import main\n"
        "code = main(['validate'])\n"
        f"heavy = sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))\n"
        "print(code, ','.join(heavy) or '-')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "POSVENTA_JOURNEYS_DIR": str(REPO / "journeys")},
    )
    assert proc.returncode == 0, proc.stderr
    last = proc.stdout.strip().splitlines()[-1]
    assert last == "0 -", f"validate imported {last.split()[-1]}"
