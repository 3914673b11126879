"""The composition root: settings → adapters (database, email sender, HTTP client, journeys on disk) →
the use cases (:class:`app.services.Services`). Every entry point — the Prefect tasks, ``posventa
serve``, the ops commands, the demo — gets its services here."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from app.config import Config
from app.ports import HttpClient, Sender
from app.services import Services
from infra.db.migrate import require_head
from infra.db.session import make_engine, session_factory
from infra.db.store import SqlStore
from infra.email import make_sender
from infra.http import HttpxClient
from infra.settings import Settings, get_settings
from posventa.compile import load_plans
from posventa.plan import JourneyPlan
from posventa.templates import Templates


def config_from(s: Settings) -> Config:
    return Config(
        secret_key=s.secret_key.get_secret_value(),
        public_base_url=s.public_base_url,
        email_from=s.email_from,
        email_from_name=s.email_from_name,
        shop_url=s.shop_url,
        review_url=s.review_url,
        timezone=s.timezone,
        batch_size=s.batch_size,
        resend_unknown_after_minutes=s.resend_unknown_after_minutes,
        send_timeout=s.sendgrid_timeout,
        send_concurrency=s.sendgrid_concurrency if s.sendgrid_api_key else 1,
    )


def sender_from(s: Settings) -> Sender:
    """SendGrid when a key is configured, otherwise the file outbox."""
    key = s.sendgrid_api_key.get_secret_value() if s.sendgrid_api_key else None
    return make_sender(
        key,
        s.sendgrid_host,
        s.email_from,
        Path(s.outbox_dir),
        timeout=s.sendgrid_timeout,
        concurrency=s.sendgrid_concurrency,
        passthrough_template_id=s.sendgrid_passthrough_template_id,
        from_name=s.email_from_name,
        reply_to=s.reply_to,
        asm_group_id=s.sendgrid_asm_group_id,
    )


def build_services(
    settings: Settings | None = None,
    *,
    sender: Sender | None = None,
    plans: Mapping[str, JourneyPlan] | None = None,
    http: HttpClient | None = None,
) -> Services:
    """The services on the configured database. ``sender``, ``plans`` and ``http`` replace what the
    settings would build.

    What runs is what was published (``posventa publish``); the journey files are drafts. On a database
    where nothing was ever published, the journey files are published (the first run: the demo, a new
    installation) unless ``POSVENTA_AUTO_PUBLISH_FIRST_RUN`` is false. Plans given explicitly (tests,
    benchmarks) are published: the caller says what runs."""
    s = settings or get_settings()
    if plans is None:
        require_head(s.database_url)
    journeys = Path(s.journeys_dir)
    config = config_from(s)
    services = Services.build(
        config,
        SqlStore(session_factory(make_engine(s.database_url))),
        plans if plans is not None else load_plans(journeys),
        sender or sender_from(s),
        http or HttpxClient(timeout=config.webhook_timeout),
        Templates(journeys / "templates"),
    )
    if plans is not None:
        services.plans.publish()
    elif s.auto_publish_first_run:
        services.plans.publish_first_run()
    return services
