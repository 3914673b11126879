"""``posventa admin-user add|list|remove|passwd`` through the ``posventa`` command, on PostgreSQL: the
password comes from a hidden prompt (typed twice) or the first line of stdin, never from the command
line; it is stored as a scrypt hash; bad input is a clear error with exit 1 and nothing changed."""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from app.passwords import verify_password
from infra.settings import get_settings
from posventa.cli import main

pytestmark = pytest.mark.postgres


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, db_url: str, tmp_path: Path) -> Iterator[str]:
    for key in [k for k in os.environ if k.startswith("POSVENTA_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("POSVENTA_DATABASE_URL", db_url)
    monkeypatch.setenv("POSVENTA_SECRET_KEY", "k" * 40)
    monkeypatch.setenv("POSVENTA_OUTBOX_DIR", str(tmp_path / "outbox"))
    monkeypatch.setenv("POSVENTA_LANG", "en")
    get_settings.cache_clear()
    yield db_url
    get_settings.cache_clear()


def run(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, stdin: str, *argv: str
) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _hashes(url: str) -> dict[str, str]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return dict(conn.execute(text("SELECT username, password_hash FROM admin_users")).all())
    finally:
        engine.dispose()


def test_add_list_passwd_remove(
    env: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = run(capsys, monkeypatch, "", "admin-user", "list")
    assert (code, err) == (0, "") and "no admin users yet" in out
    code, out, err = run(
        capsys, monkeypatch, "olive tree in spring\n", "admin-user", "add", "Ana@Example.com"
    )
    assert code == 0, err
    assert "admin user ana@example.com added" in out and "olive" not in out
    stored = _hashes(env)["ana@example.com"]
    assert stored.startswith("scrypt$") and "olive" not in stored
    assert verify_password("olive tree in spring", stored)

    code, out, err = run(capsys, monkeypatch, "", "admin-user", "list")
    assert code == 0 and "ana@example.com" in out and "never" in out
    header, row = out.splitlines()[:2]  # aligned: each column starts where its header does
    assert header.index("created") == row.index(row.split()[1]) and header.index("last") == row.rindex(
        "never"
    )

    code, out, err = run(capsys, monkeypatch, "pines by the sea\n", "admin-user", "passwd", "ana@example.com")
    assert code == 0 and "password of ana@example.com changed" in out
    assert verify_password("pines by the sea", _hashes(env)["ana@example.com"])

    code, out, err = run(capsys, monkeypatch, "", "admin-user", "key", "ana@example.com")
    assert code == 0 and "admin API key for ana@example.com" in out
    key = out.strip().splitlines()[-1]
    assert key.startswith("pv_") and len(key) > 40

    code, out, err = run(capsys, monkeypatch, "", "--lang", "es", "admin-user", "remove", "ana@example.com")
    assert code == 0 and "usuario ana@example.com eliminado" in out
    assert _hashes(env) == {}


def test_a_terminal_prompts_twice_and_the_two_must_match(
    env: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = iter(["olive tree in spring", "olive tree in sprung"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    code = main(["admin-user", "add", "ana"])
    _out, err = capsys.readouterr()
    assert code == 1 and "the two passwords differ" in err and "Traceback" not in err
    assert _hashes(env) == {}
    answers = iter(["olive tree in spring", "olive tree in spring"])
    assert main(["admin-user", "add", "ana"]) == 0


@pytest.mark.parametrize(
    ("stdin", "argv", "problem"),
    [
        ("short\n", ("admin-user", "add", "ana"), "the password must have 12 to 1024 characters"),
        ("", ("admin-user", "add", "ana"), "no password on stdin"),
        ("olive tree in spring\n", ("admin-user", "add", "bad name"), "a user name is 1 to 64"),
        ("olive tree in spring\n", ("admin-user", "passwd", "nobody"), "there is no admin user nobody"),
        ("", ("admin-user", "remove", "nobody"), "there is no admin user nobody"),
        ("", ("admin-user", "key", "nobody"), "there is no admin user nobody"),
    ],
)
def test_bad_input_is_a_clear_error(
    env: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    stdin: str,
    argv: tuple[str, ...],
    problem: str,
) -> None:
    code, _out, err = run(capsys, monkeypatch, stdin, *argv)
    assert code == 1 and problem in err and "Traceback" not in err
    assert _hashes(env) == {}


def test_a_taken_name_is_refused_before_asking(
    env: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run(capsys, monkeypatch, "olive tree in spring\n", "admin-user", "add", "ana")[0] == 0
    before = _hashes(env)
    code, _out, err = run(capsys, monkeypatch, "", "admin-user", "add", "ANA")
    assert code == 1 and "there is already an admin user ana" in err
    assert _hashes(env) == before


def test_the_password_is_no_argument(
    env: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _out, err = run(capsys, monkeypatch, "", "admin-user", "add", "ana", "olive tree in spring")
    assert code == 2 and "unrecognized arguments" in err


def test_add_names_the_real_sign_in_url(
    env: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not a placeholder: the sign-in address is POSVENTA_PUBLIC_BASE_URL + /admin."""
    monkeypatch.setenv("POSVENTA_PUBLIC_BASE_URL", "https://posventa.tienda.example/")
    get_settings.cache_clear()
    code, out, err = run(capsys, monkeypatch, "olive tree in spring\n", "admin-user", "add", "ops")
    assert code == 0, err
    assert "admin user ops added: sign in at https://posventa.tienda.example/admin" in out
    assert "<public base URL>" not in out
    code, out, err = run(
        capsys, monkeypatch, "pines by the sea and sun\n", "--lang", "es", "admin-user", "add", "ana"
    )
    assert code == 0, err
    assert "usuario ana añadido: entra en https://posventa.tienda.example/admin" in out
