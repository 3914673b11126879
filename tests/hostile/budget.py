"""The 2 s budget: ``posventa validate FILE`` (a new process each time, interpreter start included) on
every case of the hostile corpus and on a generated 10 MB journey; prints the slowest and exits 1 if any
took 2 s or more. A script, not a test: timings are measured, never asserted in the test suite.

Run: ``.venv/bin/python tests/hostile/budget.py``.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BUDGET_S = 2.0


def timed(path: Path) -> tuple[float, int, bool]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "posventa", "validate", str(path)], capture_output=True, text=True, timeout=60
    )
    seconds = time.perf_counter() - started
    return seconds, done.returncode, "Traceback" in done.stdout + done.stderr


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        huge = Path(tmp) / "ten_megabytes.yaml"
        huge.write_bytes(b"name: Huge\n" + b"# padding\n" * 1_000_000)
        files = [*sorted(HERE.glob("*.yaml")), huge]
        results = [(path.name, *timed(path)) for path in files]
    bad = [r for r in results if r[1] >= BUDGET_S or r[2] != 1 or r[3]]
    slowest = sorted(results, key=lambda r: -r[1])[:5]
    print(f"{len(results)} files; slowest:")
    for name, seconds, code, traceback in slowest:
        print(f"  {seconds:5.2f} s  exit {code}  {name}" + ("  TRACEBACK" if traceback else ""))
    for name, seconds, code, traceback in bad:
        print(f"OVER BUDGET OR WRONG EXIT: {name}: {seconds:.2f} s, exit {code}, traceback {traceback}")
    print(f"every file exited 1 in under {BUDGET_S:.0f} s" if not bad else f"{len(bad)} file(s) failed")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
