"""The nightly run publishes the results report as a Markdown artifact, with the real Prefect engine, the
real SendGrid client against the loopback fake, and SendGrid's signed Event Webhook posted through the web
app: delivered, opened and clicked reach the funnel through the ledger key SendGrid echoes back."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from rt_helpers import ROOT, T0, order_placed

from app.services import Services
from infra.db.testing import clear_tables
from infra.email.fake_sendgrid import FakeSendGrid
from infra.settings import Settings, make_settings
from infra.wiring import build_services
from web.app import create_app

pytestmark = [pytest.mark.postgres, pytest.mark.prefect]


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> Any:
        return self.now


@pytest.fixture
def settings(pg_url: str, fake: FakeSendGrid, tmp_path: Path) -> Settings:
    return make_settings(
        database_url=pg_url,
        journeys_dir=str(ROOT / "journeys"),
        outbox_dir=str(tmp_path / "outbox"),
        secret_key="k" * 40,
        sendgrid_host=fake.url,
        sendgrid_api_key="SG.test",
        sendgrid_webhook_public_key=fake.webhook_public_key_b64,
        public_base_url="http://testserver",
    )


@pytest.fixture
def wired(settings: Settings, plans: dict[str, Any]) -> Iterator[Services]:
    services = build_services(settings, plans=plans)
    clear_tables(services.store.factory.kw["bind"])  # type: ignore[attr-defined]
    services.plans.publish()
    yield services
    services.store.dispose()  # type: ignore[attr-defined]


def _markdown(flow_run_id: Any, key: str) -> str:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey

    async def go() -> list[Any]:
        async with get_client() as client:
            found: list[Any] = await client.read_artifacts(
                artifact_filter=ArtifactFilter(
                    flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]), key=ArtifactFilterKey(any_=[key])
                )
            )
            return found

    [artifact] = asyncio.run(go())
    assert artifact.type == "markdown"
    text: str = artifact.data
    return text


def test_nightly_publishes_the_kpis_and_the_funnel_with_webhook_evidence(
    wired: Services,
    settings: Settings,
    fake: FakeSendGrid,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from flows.sweep import nightly
    from tasks.steps import using

    monkeypatch.setenv("POSVENTA_LANG", "en")
    wired.ingest.apply([order_placed(i) for i in range(6)], "api", now=T0)
    with using(wired):
        first = nightly(now=T0 + timedelta(minutes=1), return_state=True)
    assert first.is_completed() and len(fake.messages) == 6

    # SendGrid reports: all six delivered, four opened (one of them twice), two clicked — signed batches
    # through POST /webhooks/sendgrid, as SendGrid sends them.
    clock = Clock()
    client = TestClient(create_app(wired, settings=settings, clock=clock))
    clock.now = T0 + timedelta(hours=2)
    stamp = int((T0 + timedelta(hours=1)).timestamp())
    messages = sorted(fake.messages, key=lambda m: m.to)
    events = fake.webhook_events("delivered", messages, timestamp=stamp)
    events += fake.webhook_events("open", messages[:4], timestamp=stamp)
    events += fake.webhook_events("open", messages[:1], timestamp=stamp + 60)
    events += fake.webhook_events("click", messages[:2], timestamp=stamp, url="https://shop.example/p")
    body, headers = fake.signed_webhook_request(events, timestamp=int(clock.now.timestamp()))
    answer = client.post("/webhooks/sendgrid", content=body, headers=headers)
    assert answer.status_code == 200 and answer.json()["applied"] == len(events), answer.text

    with using(wired):
        state = nightly(now=T0 + timedelta(days=1), return_state=True)
    assert state.is_completed()
    text = _markdown(state.state_details.flow_run_id, "results-report")
    assert text.startswith("# Posventa — results report")
    assert "- **Messages**: 6 sent · 6 delivered (100.0%) · 4 opened (66.7%) · 2 clicked (33.3%)" in text
    assert "### post_purchase (Post-purchase follow-up)" in text
    # step | variant | entered | sent | deferred | delivered | opened | clicked | converted | revenue
    assert "| thank_you | — | 6 | 6 | 0 | 6 | 4 | 2 | 0 | 0.00 |" in text
