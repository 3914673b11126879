"""SendGrid Event Webhook deliveries, remembered by ``sg_event_id`` (SendGrid redelivers batches)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from infra.db.models import EVIDENCE_BITS, LedgerEntry, WebhookEvent
from infra.db.store._base import Repo, aware, normalise_email
from infra.db.types import utcnow


class ProviderEvents(Repo):
    def record(
        self,
        sg_event_id: str,
        event: str,
        ledger_key: str | None,
        email: str | None,
        occurred_at: datetime,
        data: Mapping[str, Any],
    ) -> bool:
        """False if this event was seen before, in which case the caller does nothing."""
        stmt = self.insert_into(WebhookEvent).values(
            sg_event_id=sg_event_id,
            event=event,
            ledger_key=ledger_key,
            email=normalise_email(email) if email else None,
            occurred_at=aware(occurred_at, "occurred_at"),
            received_at=utcnow(),
            data=dict(data),
        )
        new = stmt.on_conflict_do_nothing(index_elements=["sg_event_id"]).returning(WebhookEvent.sg_event_id)
        if self.s.execute(new).first() is None:
            return False
        note_evidence(self.s, ledger_key, event)
        return True


def note_evidence(s: Session, ledger_key: str | None, event: str) -> None:
    """Set the event's bit on its message's ledger row (``ledger.evidence``): idempotent and order-free,
    so redelivered or reordered webhook batches give the same row."""
    bit = EVIDENCE_BITS.get(event)
    if bit and ledger_key:
        s.execute(
            update(LedgerEntry)
            .where(LedgerEntry.key == ledger_key)
            .values(evidence=LedgerEntry.evidence.op("|")(bit))
            .execution_options(synchronize_session=False)
        )
