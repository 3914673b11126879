"""``pip install -e .`` is warning-free: the license is an SPDX expression with its file (PEP 639), not the
deprecated TOML table setuptools warns about on every install."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_license_is_an_spdx_expression_with_its_file() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["license"] == "Apache-2.0"
    assert [(ROOT / f).is_file() for f in project["license-files"]] == [True]
    assert "Apache License" in (ROOT / "LICENSE").read_text(encoding="utf-8")[:200]


def test_an_editable_install_prints_no_build_warning() -> None:
    """What ``make venv`` runs, as a dry run: the build backend (setuptools from the registry, as pip gets
    it) reads the metadata and says nothing about it."""
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--no-deps", "-e", str(ROOT)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert "Would install posventa" in out
    assert not [line for line in out.splitlines() if "Warning" in line or "deprecated" in line], out
