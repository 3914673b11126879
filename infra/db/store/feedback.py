"""Survey answers (NPS and others): one per customer, order and survey; answering again replaces it."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.sql.elements import ColumnElement

from app.records import Fact, FeedbackRecord
from infra.db.models import SURVEYS, FeedbackResponse
from infra.db.store._base import Repo, one_of, table
from infra.db.types import utcnow


def record(f: FeedbackResponse) -> FeedbackRecord:
    return FeedbackRecord(f.customer_id, f.order_id, f.survey, f.score, f.comment)


class Feedback(Repo):
    def save(
        self, customer_id: str, order_id: str | None, survey: str, score: int, comment: str | None
    ) -> FeedbackRecord:
        """Record an answer; answering the same survey (for the same order) again replaces the answer."""
        one_of(survey, SURVEYS, "survey")
        if not 0 <= score <= 10:
            raise ValueError(f"score must be between 0 and 10; got {score}")
        t = table(FeedbackResponse)
        now = utcnow()
        stmt = self.insert_into(FeedbackResponse).values(
            customer_id=customer_id,
            order_id=order_id,
            survey=survey,
            score=score,
            comment=comment,
            created_at=now,
            updated_at=now,
        )
        set_ = {"score": score, "comment": comment, "updated_at": now}
        if order_id is None:  # the partial unique index (NULLs are distinct in the UNIQUE constraint)
            stmt = stmt.on_conflict_do_update(
                index_elements=["customer_id", "survey"], index_where=t.c.order_id.is_(None), set_=set_
            )
        else:
            stmt = stmt.on_conflict_do_update(index_elements=["customer_id", "order_id", "survey"], set_=set_)
        self.s.execute(stmt)
        found = self.get(customer_id, order_id, survey)
        assert found is not None
        return found

    def get(self, customer_id: str, order_id: str | None, survey: str) -> FeedbackRecord | None:
        same_order: ColumnElement[bool] = (
            FeedbackResponse.order_id.is_(None) if order_id is None else FeedbackResponse.order_id == order_id
        )
        q = select(FeedbackResponse).where(
            FeedbackResponse.customer_id == customer_id, same_order, FeedbackResponse.survey == survey
        )
        row = self.s.scalars(q.execution_options(populate_existing=True)).one_or_none()
        return None if row is None else record(row)

    def for_customers(self, customer_ids: Sequence[str]) -> dict[tuple[str, str | None], Fact]:
        """``feedback.*`` per (customer, order): the latest answer of each."""
        out: dict[tuple[str, str | None], Fact] = {}
        for f in self.s.scalars(
            select(FeedbackResponse)
            .where(FeedbackResponse.customer_id.in_(sorted(set(customer_ids))))
            .order_by(FeedbackResponse.updated_at)
        ):
            out[(f.customer_id, f.order_id)] = {"score": f.score, "comment": f.comment, "survey": f.survey}
        return out
