"""Support tickets: complaints hold promotions back until they are resolved."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update

from infra.db.models import TICKET_CATEGORIES, TICKET_SOURCES, SupportTicket
from infra.db.store._base import Repo, aware, one_of, rowcount
from infra.db.types import utcnow


class Tickets(Repo):
    def open(
        self,
        ticket_id: str,
        customer_id: str,
        order_id: str | None,
        subject: str | None,
        category: str,
        source: str,
        opened_at: datetime | None = None,
    ) -> bool:
        """Open a ticket once per id (an external id, or one derived from the ledger key). True if new."""
        one_of(category, TICKET_CATEGORIES, "ticket category")
        one_of(source, TICKET_SOURCES, "ticket source")
        stmt = self.insert_into(SupportTicket).values(
            id=ticket_id,
            customer_id=customer_id,
            order_id=order_id,
            subject=subject,
            category=category,
            status="open",
            source=source,
            opened_at=opened_at or utcnow(),
        )
        new = stmt.on_conflict_do_nothing(index_elements=["id"]).returning(SupportTicket.id)
        return self.s.execute(new).first() is not None

    def resolve(self, ticket_id: str, at: datetime) -> bool:
        """Resolve an open ticket; True if it was open."""
        stmt = (
            update(SupportTicket)
            .where(SupportTicket.id == ticket_id, SupportTicket.status == "open")
            .values(status="resolved", resolved_at=aware(at, "at"))
        )
        return rowcount(self.s.execute(stmt)) == 1

    def has_open_complaint(self, customer_id: str) -> bool:
        """Resolve before you sell: promotional steps wait while this is True."""
        return bool(self.open_complaints([customer_id]))

    def open_complaints(self, customer_ids: Sequence[str]) -> set[str]:
        """Which of these customers have an open complaint."""
        return set(
            self.s.scalars(
                select(SupportTicket.customer_id).where(
                    SupportTicket.customer_id.in_(sorted(set(customer_ids))),
                    SupportTicket.status == "open",
                    SupportTicket.category == "complaint",
                )
            )
        )
