"""``make bench``: run every benchmark, print each result as ratios against a baseline measured in the same
run, then a summary. Timings are reported, never asserted: the exit status is 0 unless a benchmark
crashed (1). ``--only NAME`` runs one of them.

Benchmarks: ``validate`` (``posventa validate`` of the shipped journeys in a fresh interpreter vs a bare
interpreter start; target ≤ 1 s), ``simulate`` (issue 2: the simulator, 10k vs 1k customers; target
≤ 10 s for 10k × 180 days), ``sweep`` (the nightly sweep on PostgreSQL vs the raw limit — the minimal
claim/render/POST/ledger loop with the real template and with a trivial one — and the per-customer
Prefect design; SQL statements per batch; peak memory; sizes from ``POSVENTA_BENCH_SIZES``),
``email`` (SendGridSender batched vs one request per message, by a colleague), ``api``
(``benchmarks/bench_api.py``: events/s in batches of 100 vs one per request; targets ≥ 2,000 and ≥ 300),
``render`` (one ``thank_you`` message vs a trivial template), ``report`` (the results report over a
million ledger rows on PostgreSQL; size from ``POSVENTA_BENCH_REPORT_ENROLLMENTS``) and ``workers`` (one
due set swept by 1, 2 and 4 process workers through a real Prefect server; size from
``POSVENTA_BENCH_WORKERS_DUE``).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Outcome:
    name: str
    status: str = "not run"  # ok | crashed | skipped
    seconds: float = 0.0
    result: dict[str, Any] = field(default_factory=dict)
    ratios: list[str] = field(default_factory=list)
    note: str = ""


def _simulate() -> dict[str, Any]:
    from benchmarks import bench_simulate

    return bench_simulate.run()


def _simulate_ratios(r: dict[str, Any]) -> list[str]:
    speed = r["customers_per_s"] / r["baseline_customers_per_s"]
    cpu = r.get("cpu_seconds", r["seconds"])
    verdict = "PASS" if min(r["seconds"], cpu) <= SIMULATE_TARGET_S else "ABOVE TARGET"
    return [
        f"{r['customers']} customers × {r['days']} days: {r['seconds']} s wall, {cpu} s CPU "
        f"(target ≤ {SIMULATE_TARGET_S:.0f} s: {verdict}"
        + ("" if r["seconds"] <= SIMULATE_TARGET_S else ", on CPU time: the machine is shared")
        + "), "
        f"{r['customers_per_s']:.0f} customers/s, {r['advances_per_s']:.0f} advances/s",
        f"customers/s vs the {r['baseline_customers']}-customer baseline: {speed:.2f}x "
        f"(per-customer cost {r['per_customer_cost_ratio']:.2f}x; 1.00 = linear)",
    ]


def _sweep() -> dict[str, Any]:
    from benchmarks import bench_sweep

    return bench_sweep.run()


def _sweep_ratios(r: dict[str, Any]) -> list[str]:
    lines = []
    by_n: dict[int, dict[str, dict[str, Any]]] = {}
    for row in r["rows"]:
        by_n.setdefault(row["n"], {})[row["key"]] = row
    for n, rows in by_n.items():
        raw, trivial, real, naive = (
            rows.get("raw"),
            rows.get("raw_trivial"),
            rows.get("real"),
            rows.get("naive"),
        )
        if raw and trivial:
            lines.append(
                f"N={n}: raw limit, real template {raw['steps_per_s']:.0f} steps/s; trivial template "
                f"{trivial['steps_per_s']:.0f} steps/s (rendering the real layout costs "
                f"{1 - raw['steps_per_s'] / trivial['steps_per_s']:.0%} of the limit's time)"
            )
        for key, name in (("real_pt", "real, pass-through"), ("real", "real, one request per message")):
            row = rows.get(key)
            if raw and trivial and row:
                verdict = "PASS" if row["ratio_to_raw"] >= r["target"] else "BELOW TARGET"
                sql = row.get("statements_per_batch")
                lines.append(
                    f"N={n}: {name} {row['steps_per_s']:.0f} steps/s = {row['ratio_to_raw']:.3f} of the raw "
                    f"limit (target ≥ {r['target']}: {verdict}), {row['ratio_to_trivial']:.3f} of the "
                    f"trivial-template loop; {sql:.1f} SQL statements per batch of 500; "
                    f"peak memory +{row['mem_mib']:.0f} MiB"
                )
        if naive and raw:
            lines.append(
                f"N={n}: naive per-customer Prefect {naive['steps_per_s']:.1f} steps/s = "
                f"{naive['ratio_to_raw']:.3f} of raw"
                + (
                    f"; real is {real['steps_per_s'] / naive['steps_per_s']:.1f}x the naive design"
                    if real
                    else ""
                )
            )
        if rows.get("raw1") and real:
            raw1 = rows["raw1"]
            own = real["steps_per_s"] / raw1["steps_per_s"]
            lines.append(
                f"N={n}: real / raw-with-one-request-per-customer = {own:.3f} (the runtime's own overhead); "
                f"that raw variant is {raw1['ratio_to_raw']:.3f} of the batched raw (the request count)"
            )
    mem = {n: rows["real_pt"]["mem_mib"] for n, rows in by_n.items() if "real_pt" in rows}
    if len(mem) > 1:
        lo, hi = min(mem), max(mem)
        flat = "PASS" if mem[hi] <= 2 * max(mem[lo], 8.0) else "GROWS"
        lines.append(
            f"real sweep peak memory (VmHWM growth): N={lo} +{mem[lo]:.0f} MiB, N={hi} +{mem[hi]:.0f} MiB "
            f"({hi // lo}x the customers; target: flat: {flat})"
        )
    return lines


def _email() -> dict[str, Any]:
    from benchmarks import bench_email

    return bench_email.run()


def _email_ratios(r: dict[str, Any]) -> list[str]:
    return [
        f"batched {r['batched_msgs_per_s']:.0f} msg/s vs one request per message "
        f"{r['single_msgs_per_s']:.0f} msg/s (baseline): {r['ratio']:.1f}x "
        f"({r['batched_requests']} vs {r['single_requests']} requests)"
    ]


def _api() -> dict[str, Any]:
    try:
        module = importlib.import_module("benchmarks.bench_api")
    except ModuleNotFoundError as exc:
        if exc.name == "benchmarks.bench_api":
            raise _Skip("benchmarks/bench_api.py does not exist (yet)") from None
        raise
    result = module.run()
    return dict(result) if isinstance(result, dict) else {"result": result}


def _api_ratios(r: dict[str, Any]) -> list[str]:
    batched = "PASS" if r["batched_events_per_s"] >= API_TARGET_BATCHED else "BELOW TARGET"
    single = "PASS" if r["single_events_per_s"] >= API_TARGET_SINGLE else "BELOW TARGET"
    return [
        f"events API: batches of {r['batch_size']} {r['batched_events_per_s']:.0f} events/s (target ≥ "
        f"{API_TARGET_BATCHED:,}: {batched}) vs one event per request {r['single_events_per_s']:.0f} "
        f"events/s (baseline; target ≥ {API_TARGET_SINGLE}: {single}): {r['ratio']:.2f}x",
        f"events API: SQL statements per event: {r['batched_statements_per_event']} batched, "
        f"{r['single_statements_per_event']} single (load average {r['load_average_1m']})",
    ]


def _validate() -> dict[str, Any]:
    from benchmarks import bench_validate

    return bench_validate.run()


def _validate_ratios(r: dict[str, Any]) -> list[str]:
    if r["meets_target"]:
        verdict = "PASS"
    elif r["validate_cpu_s"] <= r["target_s"]:
        verdict = "PASS on CPU time only: the machine is shared"
    else:
        verdict = "ABOVE TARGET"
    return [
        f"posventa validate of the {r['journeys']} shipped journeys: {r['validate_wall_s']:.2f} s wall, "
        f"{r['validate_cpu_s']:.2f} s CPU (target ≤ {r['target_s']:.0f} s: {verdict}) = "
        f"{r['ratio_to_bare_python']:.0f}x a bare interpreter start ({r['bare_python_wall_s']:.3f} s, "
        f"baseline); database/workflow/web modules imported: {r['heavy_imports'] or 'none'}"
    ]


def _report() -> dict[str, Any]:
    from benchmarks import bench_report

    return bench_report.run()


def _report_ratios(r: dict[str, Any]) -> list[str]:
    return [
        f"{r['ledger_rows']:,} ledger rows, {r['enrollments']:,} enrollments: report {r['report_s']} s "
        f"(two connections, one snapshot) = {r['report_to_baseline_ratio']}x SELECT count(*) FROM ledger "
        f"({r['baseline_count_s']} s); on one session {r['report_one_session_s']} s; "
        f"bound {r['bound_s']} s: {r['verdict']}"
    ]


def _generic_ratios(r: dict[str, Any]) -> list[str]:
    """For a benchmark whose result shape this runner does not know: its ratio fields, else everything."""
    ratios = {k: v for k, v in r.items() if "ratio" in k or k.endswith("_x")}
    shown = ratios or {k: v for k, v in r.items() if isinstance(v, int | float | str)}
    return [", ".join(f"{k} {v}" for k, v in shown.items())] if shown else []


def _render() -> dict[str, Any]:
    from benchmarks import bench_render

    return bench_render.run()


def _render_ratios(r: dict[str, Any]) -> list[str]:
    verdict = "PASS" if r["meets_target"] else "ABOVE TARGET"
    return [
        f"thank_you {r['thank_you_us']:.0f} µs/message (target ≤ {r['target_us']:.0f} µs: {verdict}) = "
        f"{r['ratio_to_baseline']:.1f}x a one-line sandbox render ({r['baseline_us']:.1f} µs, baseline); "
        f"a trivial three-block template through Templates: {r['trivial_ratio_to_baseline']:.1f}x",
        f"the sandbox's resource limits cost {r['limits_cost_pct']:+.1f}% "
        f"({r['without_limits_us']:.0f} µs per message without them)",
    ]


def _workers() -> dict[str, Any]:
    from benchmarks import bench_workers

    return bench_workers.run()


def _workers_ratios(r: dict[str, Any]) -> list[str]:
    return [
        f"{row['workers']} worker(s): {row['steps_per_s']:.0f} steps/s on {r['due']} due = "
        f"{row['ratio_to_one']:.2f}x one worker (baseline); enrollments per process {row['shares']}"
        for row in r["rows"]
    ]


#: Issue 12's targets for the figures that have no ratio target.
SIMULATE_TARGET_S = 10.0
API_TARGET_BATCHED = 2_000
API_TARGET_SINGLE = 300


class _Skip(Exception):
    pass


BENCHMARKS: dict[str, tuple[Callable[[], dict[str, Any]], Callable[[dict[str, Any]], list[str]]]] = {
    "validate": (_validate, _validate_ratios),
    "simulate": (_simulate, _simulate_ratios),
    "sweep": (_sweep, _sweep_ratios),
    "email": (_email, _email_ratios),
    "api": (_api, _api_ratios),
    "render": (_render, _render_ratios),
    "report": (_report, _report_ratios),
    "workers": (_workers, _workers_ratios),
}


def run_one(name: str) -> Outcome:
    bench, ratios = BENCHMARKS[name]
    out = Outcome(name)
    print(f"\n=== {name} ===", flush=True)
    started = time.perf_counter()
    try:
        out.result = bench()
        out.status = "ok"
    except _Skip as exc:
        out.status, out.note = "skipped", str(exc)
        print(f"{name}: skipped: {exc}")
    except Exception:
        out.status = "crashed"
        out.note = traceback.format_exc()
        print(f"{name}: CRASHED\n{out.note}", file=sys.stderr, flush=True)
    out.seconds = time.perf_counter() - started
    if out.status == "ok":
        try:
            out.ratios = ratios(out.result)
        except Exception:  # a result shape we did not expect is not a crash of the benchmark
            out.ratios = _generic_ratios(out.result)
        print(f"--- {name}: ratios against the same run's baseline")
        for line in out.ratios:
            print(f"  {line}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(BENCHMARKS), help="run only this benchmark")
    args = parser.parse_args(argv)
    # Benchmarks import lazily; set this before any of them imports Prefect (it reads settings once).
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    names = [args.only] if args.only else list(BENCHMARKS)
    load = os.getloadavg()
    print(
        f"benchmarks: {', '.join(names)} — Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
        f"load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}",
        flush=True,
    )
    outcomes = [run_one(name) for name in names]
    print("\n=== summary ===")
    for o in outcomes:
        print(
            f"{o.name:<10}{o.status:<9}{o.seconds:8.1f} s" + (f"  {o.note}" if o.status == "skipped" else "")
        )
        for line in o.ratios:
            print(f"{'':<10}{line}")
    crashed = [o.name for o in outcomes if o.status == "crashed"]
    if crashed:
        print(f"crashed: {', '.join(crashed)} (tracebacks above)")
    print("(timings are measured, not asserted: the exit status only says whether every benchmark ran)")
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
