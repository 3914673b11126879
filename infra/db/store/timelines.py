"""A customer's timeline for the admin area: events, journeys entered, messages and actions, messages
that waited (deferrals), SendGrid's events on their messages, survey answers, tickets — newest first,
each source capped at ``limit`` rows (every query uses an index on ``customer_id``, or goes through the
customer's enrollments or ledger keys)."""

from __future__ import annotations

from sqlalchemy import func, select

from app.records import TimelineEntry
from infra.db import models as m
from infra.db.store._base import Repo


class Timelines(Repo):
    def for_customer(self, customer_id: str, limit: int) -> list[TimelineEntry]:
        out: list[TimelineEntry] = []
        ev = m.StoredEvent
        for e in self.s.execute(
            select(ev.occurred_at, ev.type, ev.order_id, ev.source)
            .where(ev.customer_id == customer_id)
            .order_by(ev.occurred_at.desc())
            .limit(limit)
        ):
            out.append(TimelineEntry(e.occurred_at, "event", e.type, status=e.source, order_id=e.order_id))
        en = m.Enrollment
        for n in self.s.execute(
            select(en.entered_at, en.journey_id, en.status, en.order_id)
            .where(en.customer_id == customer_id)
            .order_by(en.entered_at.desc())
            .limit(limit)
        ):
            out.append(
                TimelineEntry(
                    n.entered_at, "enrollment", n.journey_id, n.journey_id, n.status, order_id=n.order_id
                )
            )
        lg = m.LedgerEntry
        for r in self.s.execute(
            select(
                func.coalesce(lg.sent_at, lg.updated_at).label("at"),
                lg.kind,
                lg.journey_id,
                lg.step_id,
                lg.template,
                lg.status,
                lg.reason,
            )
            .where(lg.customer_id == customer_id)
            .order_by(lg.created_at.desc())
            .limit(limit)
        ):
            what = r.step_id + (f" ({r.template})" if r.template else "")
            out.append(TimelineEntry(r.at, r.kind, what, r.journey_id, r.status, r.reason))
        df = m.Deferral
        for d in self.s.execute(
            select(df.first_at, df.journey_id, df.step_id, df.reason, df.ticks)
            .join(en, en.id == df.enrollment_id)
            .where(en.customer_id == customer_id)
            .order_by(df.first_at.desc())
            .limit(limit)
        ):
            ticks = f"×{d.ticks}" if d.ticks > 1 else None
            out.append(TimelineEntry(d.first_at, "deferral", d.step_id, d.journey_id, d.reason, ticks))
        wh = m.WebhookEvent
        keys = select(lg.key).where(lg.customer_id == customer_id).scalar_subquery()
        for w in self.s.execute(
            select(wh.occurred_at, wh.event, lg.journey_id, lg.step_id)
            .join(lg, lg.key == wh.ledger_key)
            .where(wh.ledger_key.in_(keys))
            .order_by(wh.occurred_at.desc())
            .limit(limit)
        ):
            out.append(TimelineEntry(w.occurred_at, "email", w.event, w.journey_id, detail=w.step_id))
        fb = m.FeedbackResponse
        for f in self.s.execute(
            select(fb.updated_at, fb.survey, fb.score, fb.comment, fb.order_id)
            .where(fb.customer_id == customer_id)
            .order_by(fb.updated_at.desc())
            .limit(limit)
        ):
            what = f"{f.survey} {f.score}/10"
            out.append(TimelineEntry(f.updated_at, "answer", what, detail=f.comment, order_id=f.order_id))
        tk = m.SupportTicket
        for k in self.s.execute(
            select(tk.opened_at, tk.resolved_at, tk.category, tk.status, tk.subject, tk.id)
            .where(tk.customer_id == customer_id)
            .order_by(tk.opened_at.desc())
            .limit(limit)
        ):
            out.append(
                TimelineEntry(
                    k.opened_at, "ticket", f"{k.category} {k.id}", status=k.status, detail=k.subject
                )
            )
            if k.resolved_at is not None:
                out.append(TimelineEntry(k.resolved_at, "ticket", f"{k.category} {k.id}", status="resolved"))
        out.sort(key=lambda e: e.at, reverse=True)
        return out[:limit]
