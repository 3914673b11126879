"""The real Prefect engine runs the tick and per-customer flows (embedded server, its own PREFECT_HOME)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from rt_helpers import T0, order_placed

from app.services import Services
from infra.email.fake_sendgrid import FakeSendGrid

pytestmark = [pytest.mark.postgres, pytest.mark.prefect]


def test_tick_and_customer_flows_send_and_publish_artifacts(svc: Services, fake: FakeSendGrid) -> None:
    from prefect.client.orchestration import get_client

    from flows.sweep import journey_for_customer, tick
    from tasks.steps import using

    svc.ingest.apply([order_placed(i) for i in range(20)], "api", now=T0)
    with using(svc):
        stats = tick(now=T0 + timedelta(minutes=1))
        assert stats.total("sent") == 20
        svc.ingest.apply([order_placed(99)], "api", now=T0)
        one = journey_for_customer(customer="c99", now=T0 + timedelta(minutes=2))
        assert one.total("sent") == 1
    assert len(fake.messages) == 21

    async def artifacts() -> list[str]:
        async with get_client() as client:
            found = await client.read_artifacts()
            return [a.key or "" for a in found]

    import asyncio

    keys = asyncio.run(artifacts())
    assert "tick-summary" in keys
