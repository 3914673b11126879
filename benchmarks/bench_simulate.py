"""Issue 2: how long ``posventa simulate post_purchase --customers 10000 --days 180`` takes.

``posventa.simulate.simulate`` is called directly with the compiled plan (what the CLI does, minus
argument parsing and printing the report). The baseline, measured in the same run, is the same simulation
for 1,000 customers: the per-customer cost ratio (10k / 1k) is 1.0 when the simulator scales linearly.
Engine advances per second are reported beside customers per second, because a customer's number of
advances depends on its synthetic timeline. Each figure is the fastest of two identical runs (same seed),
which keeps a busy machine's noise out of the ratio. Pure Python, no I/O.

The target (issue 12) is ≤ 10 s for 10,000 customers × 180 days; the process's CPU time is reported
beside the wall time, as on a shared machine the wall time also counts the other processes' turns.

Run: ``python -m benchmarks.bench_simulate [customers] [baseline]``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
JOURNEY = "post_purchase"
DAYS = 180
SEED = 1


def _timed(plan: Any, customers: int, days: int, repeats: int) -> dict[str, Any]:
    """The fastest of ``repeats`` identical runs (the same seed: the same work each time)."""
    from posventa.simulate import simulate

    seconds = cpu = float("inf")
    for _ in range(repeats):
        started, started_cpu = time.perf_counter(), time.process_time()
        result = simulate(plan, customers=customers, days=days, seed=SEED)
        seconds = min(seconds, time.perf_counter() - started)
        cpu = min(cpu, time.process_time() - started_cpu)
    if result.customers != customers:
        raise RuntimeError(f"simulated {result.customers} customers, asked for {customers}")
    return {
        "customers": customers,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "customers_per_s": customers / seconds,
        "advances": result.advances,
        "advances_per_s": result.advances / seconds,
        "enrolled": result.enrolled,
        "us_per_customer": seconds / customers * 1e6,
    }


def run(customers: int = 10_000, baseline: int = 1_000, days: int = DAYS, repeats: int = 2) -> dict[str, Any]:
    """Simulate ``baseline`` then ``customers`` synthetic customers for ``days`` days, each the fastest of
    ``repeats`` runs (this machine may be shared); rates and ratios."""
    if not 1 <= baseline <= customers <= 1_000_000 or not 1 <= repeats <= 10:
        raise ValueError("need 1 <= baseline <= customers <= 1000000 and 1 <= repeats <= 10")
    from posventa.compile import compile_file

    plan = compile_file(ROOT / "journeys" / f"{JOURNEY}.yaml")
    base = _timed(plan, baseline, days, repeats)
    full = _timed(plan, customers, days, repeats)
    # > 1: the big run costs more per customer than the small one (superlinear); ~1: linear.
    scaling = full["us_per_customer"] / base["us_per_customer"]
    result = {
        "journey": JOURNEY,
        "days": days,
        "repeats": repeats,
        "customers": customers,
        "seconds": round(full["seconds"], 2),
        # Pure Python on one thread: its CPU time is what the wall time is on a machine not shared.
        "cpu_seconds": round(full["cpu_seconds"], 2),
        "customers_per_s": round(full["customers_per_s"], 1),
        "advances": full["advances"],
        "advances_per_s": round(full["advances_per_s"], 1),
        "baseline_customers": baseline,
        "baseline_seconds": round(base["seconds"], 2),
        "baseline_customers_per_s": round(base["customers_per_s"], 1),
        "baseline_advances_per_s": round(base["advances_per_s"], 1),
        "per_customer_cost_ratio": round(scaling, 2),
        "advances_per_customer": round(full["advances"] / customers, 2),
    }
    for label, r in ((f"{baseline} customers (baseline)", base), (f"{customers} customers", full)):
        print(
            f"  simulate {JOURNEY} --days {days}, {label:<26}{r['seconds']:8.2f} s"
            f"{r['customers_per_s']:9.0f} customers/s{r['advances_per_s']:9.0f} advances/s"
        )
    print(
        f"  per-customer cost {customers} / {baseline}: {scaling:.2f}x (1.00 = linear scaling); "
        f"{result['advances_per_customer']} advances per customer"
    )
    return result


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    run(*args)
