"""The shape of the code (docs/architecture.md): layers that depend one way, small modules, declared
dependencies, and no reference to documents outside the repository."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: The packages that ship (pyproject's packages.find), i.e. production code.
PACKAGES = ("posventa", "app", "infra", "web", "ops", "flows", "tasks")
MAX_LINES = 600


def production_files() -> list[Path]:
    return sorted(f for pkg in PACKAGES for f in (ROOT / pkg).rglob("*.py") if "migrations" not in f.parts)


def test_import_contracts_hold() -> None:
    """``lint-imports`` (the contracts in pyproject.toml) passes: the core imports no adapter, the use
    cases import no framework and no adapter, the adapters import no entry point."""
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run(
        [str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "broken" in done.stdout and " 0 broken" in done.stdout


def test_no_production_module_is_over_600_lines() -> None:
    long = {
        str(f.relative_to(ROOT)): n
        for f in production_files()
        if (n := len(f.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}, f"split these modules (one concern each): {long}"


def test_every_directly_imported_package_is_a_declared_dependency() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = project["dependencies"] + [
        d for ds in project["optional-dependencies"].values() for d in ds
    ]
    declared = {re.split(r"[<>=!~\[ ;]", d, maxsplit=1)[0].lower().replace("_", "-") for d in requirements}
    distributions = packages_distributions()
    missing: dict[str, set[str]] = {}
    for f in production_files():
        for node in ast.walk(ast.parse(f.read_text(), str(f))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top in sys.stdlib_module_names or top in PACKAGES or top == "__future__":
                    continue
                dists = {d.lower().replace("_", "-") for d in distributions.get(top, [top])}
                if not dists & declared:
                    missing.setdefault(top, set()).add(str(f.relative_to(ROOT)))
    assert missing == {}, f"imported but not in pyproject.toml's dependencies: {missing}"


def test_nothing_refers_to_documents_outside_the_repository() -> None:
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    outside = re.compile(r"\b(ARCHITECTURE|DOMAIN|STYLE)\.md\b")
    found = [
        name
        for name in tracked
        if (ROOT / name).is_file()
        and name != "tests/test_architecture.py"
        and outside.search((ROOT / name).read_text(errors="replace"))
    ]
    assert found == []


def test_every_import_in_the_benchmarks_resolves() -> None:
    """The benchmarks import most things inside functions (so ``make bench --only X`` starts fast): a
    moved name would only fail when that benchmark runs, which no test does in full. Every ``from M
    import N`` of the project's own modules must still find N (bench_workers once imported a function
    from where it no longer lived)."""
    import ast
    import importlib

    own = ("posventa", "app", "infra", "web", "ops", "tasks", "flows", "benchmarks")
    missing = []
    for path in sorted((ROOT / "benchmarks").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                if node.module.split(".")[0] not in own:
                    continue
                module = importlib.import_module(node.module)
                for alias in node.names:
                    if not hasattr(module, alias.name):
                        try:
                            importlib.import_module(f"{node.module}.{alias.name}")
                        except ImportError:
                            missing.append(f"{path.name}:{node.lineno}: {node.module}.{alias.name}")
    assert missing == []
