"""``posventa validate`` of the shipped journeys, as a user runs it: a fresh interpreter, every command
registered, all journey files and their templates checked. Target: ≤ 1 s wall, interpreter start
included (issue 12).

The baseline, measured in the same run, is a bare interpreter start (``python -c pass``): the ratio says
what validating costs on top of starting Python, whatever the machine's speed. Each figure is the best of
``repeats`` runs, taken in turns (this machine may be shared). The same process also lists which of the
database, workflow and web packages got imported (none should: ``tests/core/test_cli.py`` asserts it).

Run: ``python -m benchmarks.bench_validate``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 1.0
HEAVY = ("sqlalchemy", "prefect", "fastapi", "psycopg2", "uvicorn", "sendgrid")
_PROBE = (
    "import sys\n"
    "from posventa.cli import main\n"
    "code = main(['validate'])\n"
    f"print('HEAVY', code, ','.join(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))))\n"
)


def _timed(argv: list[str]) -> tuple[float, float, str]:
    """Wall seconds, CPU seconds (user + system) of the child, and its output."""
    env = {**os.environ, "POSVENTA_JOURNEYS_DIR": str(ROOT / "journeys")}
    before = os.times()
    started = time.perf_counter()
    proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    wall = time.perf_counter() - started
    after = os.times()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr[-2000:]}")
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    return wall, cpu, proc.stdout


def run(repeats: int = 3) -> dict[str, Any]:
    command = [sys.executable, "-m", "posventa", "validate"]
    bare = [sys.executable, "-c", "pass"]
    best = {"validate": (float("inf"), float("inf")), "bare": (float("inf"), float("inf"))}
    for _ in range(repeats):
        for name, argv in (("bare", bare), ("validate", command)):
            wall, cpu, _ = _timed(argv)
            best[name] = (min(best[name][0], wall), min(best[name][1], cpu))
    out = _timed([sys.executable, "-c", _PROBE])[2]
    heavy = next(line for line in out.splitlines() if line.startswith("HEAVY")).split()[2:]
    files = len(list((ROOT / "journeys").glob("*.yaml")))
    wall, cpu = best["validate"]
    result = {
        "journeys": files,
        "validate_wall_s": round(wall, 3),
        "validate_cpu_s": round(cpu, 3),
        "bare_python_wall_s": round(best["bare"][0], 3),
        "ratio_to_bare_python": round(wall / best["bare"][0], 1),
        "target_s": TARGET_S,
        "meets_target": wall <= TARGET_S,
        "heavy_imports": heavy[0] if heavy else "",
    }
    print(
        f"validate: {files} journeys in {wall:.2f} s wall ({cpu:.2f} s CPU), best of {repeats}; bare "
        f"python {best['bare'][0]:.3f} s; heavy imports: {result['heavy_imports'] or 'none'}"
    )
    return result


if __name__ == "__main__":
    print(run())
