"""The use cases wired together on their ports: what every driving adapter (the Prefect tasks, the web
app, the ops CLI, the demo) works with. Built from settings by ``infra.wiring.build_services``; tests
build it on their own ports."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from app.advance import Advancer
from app.clicks import Clicks
from app.config import Config
from app.deliver import Deliverer
from app.enroll import Enroller
from app.ingest import Ingest
from app.links import Links
from app.plans import PlanBook
from app.ports import Clock, HttpClient, Sender, Store
from app.preview import Preview
from app.reconcile import Reconciler
from app.render import Renderer
from app.stats import Stats
from app.webhook_events import WebhookEvents
from posventa.plan import JourneyPlan
from posventa.templates import Templates


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Services:
    config: Config
    store: Store
    plans: PlanBook
    links: Links
    ingest: Ingest
    enroll: Enroller
    advance: Advancer
    deliver: Deliverer
    reconcile: Reconciler
    clicks: Clicks
    webhook_events: WebhookEvents

    @classmethod
    def build(
        cls,
        config: Config,
        store: Store,
        plans: Mapping[str, JourneyPlan],
        sender: Sender,
        http: HttpClient,
        templates: Templates,
        clock: Clock = utcnow,
    ) -> Services:
        book = PlanBook(store, plans)
        links = Links(config)
        enroll = Enroller(store, book)
        ingest = Ingest(store, enroll, clock)
        clicks = Clicks(store, ingest, book, config)
        return cls(
            config=config,
            store=store,
            plans=book,
            links=links,
            ingest=ingest,
            enroll=enroll,
            advance=Advancer(store, book, config, clock),
            deliver=Deliverer(store, sender, http, Renderer(config, templates, links), config, clock),
            reconcile=Reconciler(store, config, clock),
            clicks=clicks,
            webhook_events=WebhookEvents(store, ingest, clicks, config),
        )

    def preview(self) -> Preview:
        """Previews of the journey files' send steps, as sent (``posventa preview``, the admin page)."""
        return Preview(self.deliver.renderer, self.plans, self.store)

    def sweep(self, now: datetime | None = None, max_batches: int = 10_000) -> Stats:
        """Advance every due enrollment, then deliver every pending message — without Prefect (tests,
        benchmarks; the flows run the same two use cases as task runs)."""
        now = now or self.advance.clock()
        total = Stats()
        for _ in range(max_batches):
            st = self.advance.run(now)
            total.merge(st)
            if st.enrollments == 0:
                break
        for _ in range(max_batches):
            st = self.deliver.run(now)
            total.merge(st)
            if not st.rows:
                break
        return total
