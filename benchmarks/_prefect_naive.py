"""The naive design measured by ``bench_sweep``: one Prefect task run per customer, mapped in one flow.

Imported only inside the benchmark's child process, after ``PREFECT_HOME`` points at a temporary folder
and analytics are off (importing Prefect reads its settings once).
"""

from __future__ import annotations

from datetime import datetime

from prefect import flow, task, unmapped

from tasks.steps import services


@task(name="bench-customer-step", task_run_name="customer {customer}")
def customer_step(customer: str, now: datetime) -> int:
    """Advance one customer's enrollments now, then deliver that customer's pending messages."""
    svc = services()
    advanced = svc.advance.run(now, customer=customer, force=True)
    svc.deliver.run(now, customer=customer)
    return advanced.enrollments


@flow(name="bench-per-customer", log_prints=False)
def per_customer(customers: list[str], now: datetime) -> int:
    futures = customer_step.map(customers, now=unmapped(now))
    return sum(f.result() for f in futures)


@flow(name="bench-warmup", log_prints=False)
def warmup() -> int:
    """One empty flow run: starts the ephemeral Prefect server so its start-up is not timed."""
    return 1
