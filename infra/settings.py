"""Posventa's settings: environment variables prefixed ``POSVENTA_``, optionally from a ``.env`` file.

Secrets are :class:`~pydantic.SecretStr` so that printing or logging a ``Settings`` never shows them.
The process reads its settings once (:func:`get_settings`); tests build them explicitly with
:func:`make_settings`, which ignores the environment and ``.env`` unless asked to read them.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from posventa.timeutil import zone

#: The signing key used when none is configured. Fine for a demo on one laptop, never for customers:
#: anyone who reads this file can forge unsubscribe and survey links. ``posventa doctor`` warns about it.
DEV_SECRET_KEY = "posventa-dev-secret-change-me"

DEFAULT_DATABASE_URL = "sqlite:///./.posventa/posventa.db"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="POSVENTA_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
    )

    #: SQLAlchemy URL. SQLite (embedded, one worker) by default; PostgreSQL in production. The folder of
    #: a SQLite file is created when the engine is made (``infra.db.session.make_engine``).
    database_url: str = DEFAULT_DATABASE_URL
    #: The business's time zone: send windows and "days" in journeys are local to it unless the customer
    #: has their own.
    timezone: str = "Europe/Madrid"
    #: Signs customer links (unsubscribe, surveys).
    secret_key: SecretStr = SecretStr(DEV_SECRET_KEY)
    public_base_url: str = "http://127.0.0.1:8000"
    #: The shop's website: the brand link at the top of every email, the "see what's new" / "reorder"
    #: buttons and where referral links (/r/<code>) send visitors. Unset: emails show no shop link and a
    #: referral link shows the friend's code on a page of its own (Posventa's server is not a shop).
    shop_url: str | None = None
    #: Where a customer writes a product review (the review-request email's button): ``{sku}`` and
    #: ``{order_id}`` are filled in, e.g. ``https://shop.example/p/{sku}#reviews``. Unset: the shop URL.
    review_url: str | None = None
    journeys_dir: str = "journeys"
    #: Where the file sender writes messages when SendGrid is not configured.
    outbox_dir: str = ".posventa/outbox"

    sendgrid_api_key: SecretStr | None = None
    sendgrid_host: str = "https://api.sendgrid.com"
    email_from: str = "hola@posventa.example"
    email_from_name: str = "Posventa"
    #: SendGrid's signed event webhook verification key (public, base64 ECDSA); None = unsigned webhooks
    #: are refused unless the web app says otherwise.
    sendgrid_webhook_public_key: str | None = None
    #: SendGrid's unsubscribe group (ASM) for promotional mail; transactional mail never joins it.
    sendgrid_asm_group_id: int | None = Field(default=None, ge=1)
    sendgrid_timeout: float = Field(default=10, gt=0)
    #: Requests in flight at once when personalised messages cannot share a request.
    sendgrid_concurrency: int = Field(default=8, ge=1, le=64)
    #: Optional: a SendGrid dynamic template id (subject {{subject}}, HTML {{{html}}}, text {{{text}}})
    #: through which personalised messages of a step are batched, up to 500 per request.
    sendgrid_passthrough_template_id: str | None = None
    # --- exactly once ---
    #: Where customers' replies go (``reply_to``); unset: to the sender address.
    reply_to: str | None = None
    #: Opt-in, and it may duplicate: release an ``unknown`` send (the provider may have it: no answer, no
    #: webhook evidence) for a resend after this many minutes. Unset (the default), it stays ``unknown``
    #: until the Event Webhook's evidence settles it or an operator decides (``posventa retry --unknown``).
    resend_unknown_after_minutes: int | None = Field(default=None, ge=1)
    #: Retired: it released ``unknown`` sends for a resend after 60 minutes by default (a duplicate
    #: whenever SendGrid had accepted them). Read only to warn whoever still sets it (``warnings``).
    reconcile_after_minutes: int | None = None
    batch_size: int = Field(default=500, ge=1, le=10_000)
    #: Prefect API of a running server; None runs Prefect embedded (ephemeral).
    prefect_api_url: str | None = None

    # --- the marketer's loop (preview, send-test, publish, time travel) ---------------------------------
    #: ``production`` refuses ``posventa run --at/--advance`` (as does ``posventa environment production``,
    #: a mark kept in the database itself).
    environment: str = "development"
    #: On a database where no journey was ever published, the first process publishes the journey files.
    auto_publish_first_run: bool = True
    #: Who may receive ``posventa send-test``: comma-separated addresses or ``@domain``s; empty: nobody.
    test_recipients: str = ""
    #: Test messages per hour, counted in the database (so separate invocations count).
    test_send_limit: int = Field(default=20, ge=1, le=1000)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        zone(value)  # ValueError with a readable message
        return value

    @field_validator("reply_to")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None

    @field_validator("database_url", "public_base_url", "sendgrid_host")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value.strip()

    @property
    def uses_dev_secret(self) -> bool:
        return self.secret_key.get_secret_value() == DEV_SECRET_KEY

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def warnings(self) -> list[str]:
        """Configuration that works but should not reach customers (shown by ``posventa doctor``)."""
        out: list[str] = []
        if self.uses_dev_secret:
            out.append("POSVENTA_SECRET_KEY is the development default: customer links can be forged")
        elif len(self.secret_key.get_secret_value()) < 32:
            out.append("POSVENTA_SECRET_KEY is shorter than 32 characters")
        if self.sendgrid_api_key is None:
            out.append(f"POSVENTA_SENDGRID_API_KEY is not set: email is written to {self.outbox_dir}")
        if self.is_sqlite:
            out.append("the database is SQLite: fine for a demo and one worker, use PostgreSQL for more")
        if self.reconcile_after_minutes is not None:
            out.append(
                "POSVENTA_RECONCILE_AFTER_MINUTES is no longer used: unknown sends stay unknown until "
                "evidence or `posventa retry --unknown` "
                "(opt in to a timer: POSVENTA_RESEND_UNKNOWN_AFTER_MINUTES)"
            )
        if self.resend_unknown_after_minutes is not None:
            out.append(
                "POSVENTA_RESEND_UNKNOWN_AFTER_MINUTES is set: ambiguous sends are resent without evidence "
                "and may reach a customer twice"
            )
        return out


class _ExplicitSettings(Settings):
    """Settings from arguments only: no environment variables, no ``.env``."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def make_settings(*, read_environment: bool = False, **values: Any) -> Settings:
    """Build settings explicitly (tests, tools). By default the environment and ``.env`` are ignored,
    so a developer's shell cannot change a test's outcome."""
    if read_environment:
        return Settings(**values)
    return _ExplicitSettings(**values)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once. ``get_settings.cache_clear()`` forces a re-read."""
    return Settings()
