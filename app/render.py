"""Rendering a claimed message: the template in the customer's locale with its facts and signed links,
as an :class:`~app.ports.OutgoingEmail` keyed by the ledger key."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from app.config import Config
from app.links import Lazy, Links
from app.ports import OutgoingEmail, Tx
from app.records import Fact, LedgerWork
from posventa.facts import derive_order
from posventa.templates import Templates, message_context


class Renderer:
    def __init__(self, config: Config, templates: Templates, links: Links) -> None:
        self.config = config
        self.templates = templates
        self.links = links

    def render(
        self, tx: Tx, work: LedgerWork, customer: Fact, order: Fact | None, locale: str, now: datetime
    ) -> OutgoingEmail:
        """Raises :class:`~posventa.errors.PosventaError` when the template cannot be rendered."""
        key, journey, payload = work.key, work.journey_id, work.payload
        # A referral code is created (in this transaction) only if the template prints one.
        code = Lazy(lambda: tx.referrals.code_for(customer["id"], journey))
        links = self.links.for_message(key, customer, order["id"] if order else None, journey, now)
        links["referral"] = Lazy(lambda: self.links.referral(code))
        ctx = message_context(
            customer=customer,
            order=derive_order(order),
            journey=journey,
            step=work.step_id,
            links=links,
            event=payload.get("event"),
            variant=payload.get("variant"),
            trigger_event=payload.get("trigger_event"),
            visit=payload.get("visit"),
            visits=payload.get("visits"),
            item=payload.get("item"),
            referral_code=code,  # type: ignore[arg-type]
            brand={
                "name": self.config.email_from_name,
                "url": self.config.shop_url or None,  # the shop, never Posventa's own server
                "support_email": self.config.email_from,
            },
        )
        promotional = work.category == "promotional"
        common: Mapping[str, Any] = {
            "ledger_key": key,
            "to_email": customer.get("email") or "",
            "to_name": customer.get("name"),
            "journey": journey,
            "step": work.step_id,
            "promotional": promotional,
            "locale": locale,
        }
        if payload.get("sendgrid_template_id"):
            # SendGrid renders the template: hand it plain JSON (a dynamic template may use the code).
            ctx["referral_code"] = str(code)
            ctx["links"] = {
                **ctx["links"],
                "referral": str(links["referral"]),
                "survey": list(ctx["links"]["survey"]),
            }
            return OutgoingEmail(
                **common,
                subject="",
                html="",
                text="",
                unsubscribe_url=links["unsubscribe"],
                sendgrid_template_id=payload["sendgrid_template_id"],
                template_data=ctx,
            )
        r = self.templates.render(work.template or "", locale, ctx)
        return OutgoingEmail(
            **common,
            subject=r.subject,
            html=r.html,
            text=r.text,
            unsubscribe_url=links["unsubscribe"] if promotional else None,
        )
