"""Suppressions: addresses not to write to (bounce, spam report, unsubscribe), by normalised address."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy import or_, select
from sqlalchemy.sql.elements import ColumnElement

from app.records import SuppressionRecord
from infra.db.models import SUPPRESSION_REASONS, SUPPRESSION_SCOPES, Customer, Suppression
from infra.db.store._base import Repo, normalise_email, one_of, table


def record(x: Suppression) -> SuppressionRecord:
    return SuppressionRecord(x.email, x.customer_id, x.reason, x.scope, x.source, x.detail, x.created_at)


class Suppressions(Repo):
    def suppress(
        self,
        email: str,
        reason: str,
        scope: str = "all",
        customer_id: str | None = None,
        source: str = "system",
        detail: str | None = None,
    ) -> bool:
        """Stop sending to an address. Idempotent per (email, reason); an existing ``promotional``
        suppression is widened to ``all`` when asked, never narrowed. True if something changed."""
        one_of(reason, SUPPRESSION_REASONS, "suppression reason")
        one_of(scope, SUPPRESSION_SCOPES, "suppression scope")
        t = table(Suppression)
        stmt = self.insert_into(Suppression).values(
            email=normalise_email(email),
            customer_id=customer_id,
            reason=reason,
            scope=scope,
            source=source,
            detail=detail,
        )
        if scope == "all":
            stmt = stmt.on_conflict_do_update(
                index_elements=["email", "reason"], set_={"scope": "all"}, where=t.c.scope != "all"
            )
        else:
            stmt = stmt.on_conflict_do_nothing(index_elements=["email", "reason"])
        return self.s.execute(stmt.returning(t.c.id)).first() is not None

    def is_suppressed(self, email: str, promotional: bool) -> str | None:
        """The reason not to send to ``email``, or None. A promotional message is stopped by any
        suppression; a transactional one only by those of scope ``all``."""
        stmt = select(Suppression.reason).where(Suppression.email == normalise_email(email))
        if not promotional:
            stmt = stmt.where(Suppression.scope == "all")
        return self.s.scalars(stmt.order_by(Suppression.created_at, Suppression.id).limit(1)).first()

    def for_customer(self, customer_id: str) -> list[SuppressionRecord]:
        """Suppressions of a customer: recorded against them, or against their current address."""
        email = self.s.scalar(select(Customer.email).where(Customer.id == customer_id))
        cond: ColumnElement[bool] = Suppression.customer_id == customer_id
        if email:
            cond = or_(cond, Suppression.email == normalise_email(email))
        stmt = select(Suppression).where(cond).order_by(Suppression.created_at, Suppression.id)
        return [record(x) for x in self.s.scalars(stmt)]

    def scopes(self, emails: Sequence[str]) -> dict[str, dict[str, str]]:
        """Suppression reasons by normalised address and scope, for a batch in one query."""
        wanted = sorted({normalise_email(e) for e in emails if e})
        out: dict[str, dict[str, str]] = defaultdict(dict)
        if wanted:
            for row in self.s.scalars(select(Suppression).where(Suppression.email.in_(wanted))):
                out[row.email][row.scope] = row.reason
        return dict(out)
