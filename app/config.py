"""What the use cases need to know about the installation (built from ``infra.settings.Settings`` by the
composition root, ``infra.wiring``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Config:
    #: Signs the links customers click (surveys, unsubscribe).
    secret_key: str
    #: Where ``posventa serve`` is reachable by customers: the links in emails start with it.
    public_base_url: str
    email_from: str = "hola@posventa.example"
    email_from_name: str = "Posventa"
    #: The shop's website (brand link, shop buttons, where referral links send friends); None: no shop link.
    shop_url: str | None = None
    #: Where a product review is written, with ``{sku}`` / ``{order_id}`` to fill (None: the shop URL).
    review_url: str | None = None
    #: The business's time zone, for customers without their own.
    timezone: str = "Europe/Madrid"
    #: Enrollments (or ledger rows) per batch: one transaction, one task run.
    batch_size: int = 500
    #: Opt-in: release an ``unknown`` send (no answer, no webhook evidence) for a resend after this many
    #: minutes. None (the default): it stays ``unknown`` until evidence or ``posventa retry --unknown``.
    resend_unknown_after_minutes: int | None = None
    #: Outgoing journey webhooks in flight at once.
    webhook_concurrency: int = 8
    #: Seconds before an outgoing journey webhook counts as unanswered (its outcome is then unknown).
    webhook_timeout: float = 10.0
    #: The email provider's client timeout (seconds per request) and requests in flight at once: they
    #: size the lease of a batch being sent (``app.deliver.lease_for``).
    send_timeout: float = 10.0
    send_concurrency: int = 1

    @property
    def base_url(self) -> str:
        return self.public_base_url.rstrip("/")
