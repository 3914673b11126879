"""The step ledger and message outbox: one row per effect under its derived key, moved forward only by
guarded ``UPDATE … WHERE key = :k AND status IN (:from)`` (:data:`app.records.LEDGER_TRANSITIONS`), each
move after the row was written recorded in ``ledger_history``: the claim that began an attempt (with its
id and lease), the attempt's outcome, an expired lease, the provider's evidence, an operator's requeue."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    DateTime,
    String,
    Text,
    Update,
    bindparam,
    func,
    insert,
    literal,
    null,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY

from app.records import (
    LEDGER_TRANSITIONS,
    OPERATOR_ONLY,
    LedgerChange,
    LedgerGroup,
    LedgerRecord,
    LedgerWork,
    Move,
    RequeueFilter,
)
from infra.db.models import LEDGER_ACTORS, LedgerEntry, LedgerHistory
from infra.db.store._base import Repo, aware, rowcount, table
from infra.db.store.journeys import held_journeys
from infra.db.types import UTCDateTime

#: The lease of a claim whose caller gives none (the deliverer always does): the rule before leases.
DEFAULT_LEASE = timedelta(minutes=15)
#: What ``posventa retry`` may move back to ``pending``.
REQUEUABLE = ("failed", "unknown")
_L, _H = table(LedgerEntry), table(LedgerHistory)
_HISTORY_COLUMNS = ("ledger_id", "attempt_id", "at", "status", "actor", "reason")
#: What a delivery claim reads, as rows (no ORM objects).
_WORK = (
    LedgerEntry.id,
    LedgerEntry.key,
    LedgerEntry.journey_id,
    LedgerEntry.step_id,
    LedgerEntry.kind,
    LedgerEntry.customer_id,
    LedgerEntry.template,
    LedgerEntry.category,
    LedgerEntry.payload,
)


def record(r: LedgerEntry) -> LedgerRecord:
    return LedgerRecord(
        key=r.key,
        journey_id=r.journey_id,
        step_id=r.step_id,
        kind=r.kind,
        customer_id=r.customer_id,
        status=r.status,
        reason=r.reason,
        category=r.category,
        template=r.template,
        payload=dict(r.payload or {}),
        sent_at=r.sent_at,
        updated_at=r.updated_at,
    )


def _check(from_statuses: Sequence[str], to_status: str, actor: str) -> tuple[str, ...]:
    froms = tuple(from_statuses)
    if not froms:
        raise ValueError("from_statuses is empty")
    if actor not in LEDGER_ACTORS:
        raise ValueError(f"unknown ledger actor {actor!r}")
    for src in froms:
        if src not in LEDGER_TRANSITIONS:
            raise ValueError(f"unknown ledger status {src!r}")
        if to_status not in LEDGER_TRANSITIONS[src]:
            raise ValueError(f"ledger status cannot move from {src!r} to {to_status!r}")
        if (src, to_status) in OPERATOR_ONLY and actor != "operator":
            raise ValueError(f"ledger status cannot move from {src!r} to {to_status!r} except by an operator")
    return froms


def _moved_values(to_status: str, now: datetime) -> dict[str, Any]:
    """What every move sets: status, time, ``sent_at`` on ``sent``; leaving ``sending`` drops the lease."""
    values: dict[str, Any] = {"status": to_status, "updated_at": aware(now, "now")}
    if to_status == "sent":
        values["sent_at"] = now
    if to_status != "sending":
        values["sending_until"] = None
    return values


def aware_utc(value: datetime) -> datetime:
    """An aggregate over a UTC column comes back naive on SQLite (no type processing): make it aware."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class Ledger(Repo):
    def insert(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Bulk ``INSERT … ON CONFLICT DO NOTHING``: a recomputed effect finds its row already there."""
        cols = {c.name for c in LedgerEntry.__table__.columns} - {"id"}
        full = [{**{c: None for c in cols}, "attempts": 0, "evidence": 0, "reason": None, **r} for r in rows]
        # An executemany of one cached statement that SQLAlchemy's "insertmanyvalues" sends as multi-row
        # INSERTs (up to 1000 rows each): compiled once per process, not once per batch. It does so for an
        # ``ON CONFLICT`` INSERT only with RETURNING (without, psycopg2 would send a statement per row).
        # No conflict target: the key and (enrollment, step, occurrence) are both unique, and naming only
        # one as the arbiter lets two racing inserts deadlock on the other.
        if full:
            stmt = self.insert_into(LedgerEntry).on_conflict_do_nothing().returning(_L.c.id)
            self.s.connection().execute(stmt, full).all()

    def recent_promotional(self, customer_ids: Sequence[str], since: datetime) -> dict[str, list[datetime]]:
        """When each customer was last sent (or is about to be sent) promotional mail: the frequency cap."""
        out: dict[str, list[datetime]] = defaultdict(list)
        for cid, at in self.s.execute(
            select(LedgerEntry.customer_id, LedgerEntry.created_at).where(
                LedgerEntry.customer_id.in_(sorted(set(customer_ids))),
                LedgerEntry.category == "promotional",
                LedgerEntry.status.in_(("pending", "sending", "sent", "unknown")),
                LedgerEntry.created_at > since,
            )
        ):
            out[cid].append(at)
        return dict(out)

    def claim_pending(
        self,
        now: datetime,
        limit: int,
        customer: str | None,
        *,
        attempt: str | None = None,
        lease_until: datetime | None = None,
    ) -> list[LedgerWork]:
        """Claim up to ``limit`` pending rows due at ``now`` (``FOR UPDATE SKIP LOCKED``) and mark them
        ``sending`` under ``attempt`` (a new UUID when not given) with a lease until ``lease_until``
        (:data:`DEFAULT_LEASE` from ``now`` when not given) — the caller commits *before* any provider
        call. ``updated_at`` and the lease are on the caller's clock: the reconciler compares them with its
        own (virtual in the demo and tests)."""
        q = select(*_WORK).where(
            LedgerEntry.status == "pending",
            or_(LedgerEntry.not_before.is_(None), LedgerEntry.not_before <= now),
            LedgerEntry.journey_id.not_in(held_journeys()),  # a paused journey sends nothing
        )
        if customer:
            q = q.where(LedgerEntry.customer_id == customer)
        rows = self.s.execute(q.order_by(LedgerEntry.id).limit(limit).with_for_update(skip_locked=True)).all()
        if not rows:
            return []
        claim = (
            update(_L)
            .where(_L.c.id.in_([r.id for r in rows]))
            .values(
                status="sending",
                attempts=_L.c.attempts + 1,
                updated_at=now,
                attempt_id=attempt or str(uuid.uuid4()),
                sending_until=lease_until or now + DEFAULT_LEASE,
            )
        )
        self._moved(claim, "sending", "deliver", now)
        return [
            LedgerWork(
                r.key,
                r.journey_id,
                r.step_id,
                r.kind,
                r.customer_id,
                r.template,
                r.category,
                dict(r.payload or {}),
            )
            for r in rows
        ]

    def renew_lease(self, attempt: str, until: datetime) -> int:
        """Extend the lease of ``attempt``'s rows still ``sending`` (the worker is alive and its provider
        calls are in flight); returns how many rows it holds."""
        renew = update(_L).where(_L.c.attempt_id == attempt, _L.c.status == "sending")
        return rowcount(self.s.connection().execute(renew.values(sending_until=until)))

    def get(self, key: str) -> LedgerRecord | None:
        stmt = select(LedgerEntry).where(LedgerEntry.key == key).execution_options(populate_existing=True)
        row = self.s.scalars(stmt).one_or_none()
        return None if row is None else record(row)

    def mark(
        self,
        key: str,
        from_statuses: Sequence[str],
        to_status: str,
        reason: str | None = None,
        provider_message_id: str | None = None,
        *,
        now: datetime,
        attempt: str | None = None,
        actor: str = "webhook",
    ) -> bool:
        """Move one row from one of ``from_statuses`` to ``to_status``; True if it moved.

        Two workers racing on the same row cannot both move it, and a row already further along is left
        alone; with ``attempt``, only a row still claimed by that attempt moves. Asking for a move
        :data:`LEDGER_TRANSITIONS` does not allow (backwards) is a bug: ValueError. Moving to ``sent``
        stamps ``sent_at``. ``actor`` is who decided (by default the provider's evidence, the one caller
        outside delivery); the move is written to the row's history.
        """
        froms = _check(from_statuses, to_status, actor)
        values = _moved_values(to_status, now)
        if reason is not None:
            values["reason"] = reason
        if provider_message_id is not None:
            values["provider_message_id"] = provider_message_id
        guard: list[ColumnElement[bool]] = [_L.c.key == key, _L.c.status.in_(froms)]
        if attempt is not None:
            guard.append(_L.c.attempt_id == attempt)
        stmt = update(_L).where(*guard).values(**values)
        return self._moved(stmt, to_status, actor, now, literal(reason, Text())) == 1

    def mark_many(
        self,
        moves: Sequence[Move],
        from_statuses: Sequence[str],
        *,
        now: datetime,
        attempt: str | None = None,
        actor: str = "deliver",
    ) -> None:
        """:meth:`mark` for a batch: one statement per target status on PostgreSQL instead of one round
        trip per row. ``reason``, ``provider_message_id`` and ``not_before`` keep their old value when the
        move gives none. With ``attempt``, only rows still claimed by that attempt move: the delivering
        worker records its own answers, and a late answer of an attempt that has since been replaced
        changes nothing. A row already elsewhere stays there; the rows that moved are written to their
        history (the move's reason with each)."""
        by_status: dict[str, list[Move]] = {}
        for mv in moves:
            by_status.setdefault(mv.to_status, []).append(mv)
        for to_status, group in by_status.items():
            froms = _check(from_statuses, to_status, actor)
            guard: list[ColumnElement[bool]] = [_L.c.status.in_(froms)]
            if attempt is not None:
                guard.append(_L.c.attempt_id == attempt)
            if self.is_postgres:
                self._mark_unnest(group, to_status, guard, actor, now)
            else:
                self._mark_each(group, to_status, guard, actor, now)

    def _mark_unnest(
        self, group: list[Move], to_status: str, guard: list[Any], actor: str, now: datetime
    ) -> None:
        """PostgreSQL: ``UPDATE … FROM unnest(:keys, :reasons, :ids, :not_befores)`` with the history
        INSERT in the same statement — arrays as parameters, so the statement is compiled once and
        cached whatever the batch size."""
        moves = (
            func.unnest(
                bindparam("keys", [mv.key for mv in group], type_=ARRAY(String())),
                bindparam("reasons", [mv.reason for mv in group], type_=ARRAY(Text())),
                bindparam("pids", [mv.provider_message_id for mv in group], type_=ARRAY(String())),
                bindparam("nbs", [mv.not_before for mv in group], type_=ARRAY(DateTime(timezone=True))),
            )
            .table_valued("k", "r", "p", "nb")
            .render_derived(name="moves")
        )
        stmt = (
            update(_L)
            .where(_L.c.key == moves.c.k, *guard)
            .values(
                **_moved_values(to_status, now),
                reason=func.coalesce(moves.c.r, _L.c.reason),
                provider_message_id=func.coalesce(moves.c.p, _L.c.provider_message_id),
                not_before=func.coalesce(moves.c.nb, _L.c.not_before),
            )
        )
        self._moved(stmt, to_status, actor, now, moves.c.r)

    def _mark_each(
        self, group: list[Move], to_status: str, guard: list[Any], actor: str, now: datetime
    ) -> None:
        """SQLite: one ``UPDATE … RETURNING`` per row (in process, cheap; an executemany returns nothing)."""
        stmt = (
            update(_L)
            .where(_L.c.key == bindparam("b_key"), *guard)
            .values(
                **_moved_values(to_status, now),
                reason=func.coalesce(bindparam("b_reason", type_=Text()), _L.c.reason),
                provider_message_id=func.coalesce(
                    bindparam("b_pid", type_=String()), _L.c.provider_message_id
                ),
                not_before=func.coalesce(bindparam("b_not_before", type_=UTCDateTime()), _L.c.not_before),
            )
            .returning(_L.c.id, _L.c.attempt_id, bindparam("b_reason", type_=Text()))
        )
        conn = self.s.connection()
        moved: list[Any] = []
        for mv in group:
            params = {"b_key": mv.key, "b_reason": mv.reason, "b_pid": mv.provider_message_id}
            moved += conn.execute(stmt, {**params, "b_not_before": mv.not_before}).all()
        self._log(moved, to_status, actor, now)

    def expire_leases(self, now: datetime) -> int:
        """Rows still ``sending`` whose lease expired before ``now``: their worker died mid-call (or
        stopped renewing), so the outcome is unknown — never resent blindly. A live attempt's rows are
        left alone, and should its answer still come, it is recorded (:meth:`mark_many` with its
        attempt)."""
        reason = "lease expired: the delivering worker stopped before recording the provider's answer"
        stmt = (
            update(_L)
            .where(_L.c.status == "sending", or_(_L.c.sending_until.is_(None), _L.c.sending_until < now))
            .values(status="unknown", reason=reason, updated_at=now, sending_until=None)
        )
        return self._moved(stmt, "unknown", "reconcile", now, literal(reason, Text()))

    def release_unknown(self, older_than: datetime, now: datetime) -> int:
        """``unknown`` rows (messages and webhooks) untouched since before ``older_than`` go back to
        ``pending`` for one more attempt. Only with the opt-in ``POSVENTA_RESEND_UNKNOWN_AFTER_MINUTES``:
        without evidence this may send a message the provider already has."""
        reason = "released for a resend: no evidence within POSVENTA_RESEND_UNKNOWN_AFTER_MINUTES"
        stmt = (
            update(_L)
            .where(_L.c.status == "unknown", _L.c.updated_at < older_than)
            .values(status="pending", reason=reason, updated_at=now, not_before=None)
        )
        return self._moved(stmt, "pending", "reconcile", now, literal(reason, Text()))

    def _moved(
        self, stmt: Update, status: str, actor: str, now: datetime, reason: ColumnElement[Any] | None = None
    ) -> int:
        """Run a guarded ``UPDATE`` of ledger rows and write one history line per row it moved (to
        ``status``, by ``actor``, with ``reason``); returns how many moved. On PostgreSQL both are one
        statement (``WITH moved AS (UPDATE … RETURNING …) INSERT INTO ledger_history …``)."""
        returning = (_L.c.id, _L.c.attempt_id, (reason if reason is not None else null()).label("reason"))
        if self.is_postgres:
            moved = stmt.returning(*returning).cte("moved")
            line = select(
                moved.c.id,
                moved.c.attempt_id,
                literal(now, UTCDateTime()),
                literal(status, String()),
                literal(actor, String()),
                moved.c.reason,
            )
            return rowcount(self.s.connection().execute(insert(_H).from_select(_HISTORY_COLUMNS, line)))
        rows = self.s.connection().execute(stmt.returning(*returning)).all()
        self._log(rows, status, actor, now)
        return len(rows)

    def _log(self, entries: Sequence[Any], status: str, actor: str, now: datetime) -> None:
        """Append ``(ledger id, attempt, reason)`` changes to ``status`` by ``actor`` to the history."""
        if entries:
            lines = [
                dict(zip(_HISTORY_COLUMNS, (i, att, now, status, actor, why), strict=True))
                for i, att, why in entries
            ]
            self.s.connection().execute(insert(_H), lines)

    # -- what ops see and decide ----------------------------------------------------------------------

    def count_by_status(self, kind: str | None = None) -> dict[str, int]:
        """How many rows are in each status (``posventa status``: ``unknown`` sends awaiting a decision,
        ``sending`` in flight, ``failed``…); ``kind`` is ``message`` or ``action`` (both when None)."""
        q = select(LedgerEntry.status, func.count()).group_by(LedgerEntry.status)
        if kind is not None:
            q = q.where(LedgerEntry.kind == kind)
        return {status: int(n) for status, n in self.s.execute(q)}

    def unknown_summary(self) -> list[LedgerGroup]:
        """The ``unknown`` rows (sent or not: nobody knows) by journey, step and reason, oldest first
        within each: what ``posventa retry --unknown`` would decide about."""
        return self.requeue_candidates(RequeueFilter(status="unknown"))

    def requeue_candidates(self, f: RequeueFilter) -> list[LedgerGroup]:
        """The rows :meth:`requeue` would move, counted by journey, step and reason."""
        oldest = func.min(LedgerEntry.updated_at)
        q = (
            select(LedgerEntry.journey_id, LedgerEntry.step_id, LedgerEntry.reason, func.count(), oldest)
            .where(*self._requeue_filter(f))
            .group_by(LedgerEntry.journey_id, LedgerEntry.step_id, LedgerEntry.reason)
            .order_by(LedgerEntry.journey_id, LedgerEntry.step_id, func.count().desc(), LedgerEntry.reason)
        )
        return [LedgerGroup(j, s, r, int(n), aware_utc(at)) for j, s, r, n, at in self.s.execute(q)]

    def requeue(self, f: RequeueFilter, now: datetime, note: str) -> int:
        """An operator's decision: move the rows matching ``f`` back to ``pending`` (due now) under their
        own key, so each is still sent at most once more. ``failed`` rows qualify only when their latest
        change was the delivering worker's (a rejection before the provider accepted them: 401, 403,
        400…, or a template that did not render), never a bounce reported after acceptance. Each move is
        written to the row's history with ``note``; returns how many moved."""
        if f.status not in REQUEUABLE:
            raise ValueError(f"only {' and '.join(REQUEUABLE)} rows can be requeued, not {f.status!r}")
        _check([f.status], "pending", "operator")
        q = (
            select(LedgerEntry.id, LedgerEntry.reason)
            .where(*self._requeue_filter(f))
            .order_by(LedgerEntry.id)
        )
        if self.is_postgres:
            q = q.with_for_update(of=LedgerEntry)
        chosen: dict[int, str | None] = {i: r for i, r in self.s.execute(q)}
        moved: list[Any] = []
        ids = sorted(chosen)
        for start in range(0, len(ids), 1000):
            moved += (
                self.s.connection()
                .execute(
                    update(_L)
                    .where(_L.c.id.in_(ids[start : start + 1000]), _L.c.status == f.status)
                    .values(
                        status="pending",
                        reason=f"requeued by an operator (was {f.status})",
                        not_before=None,
                        sending_until=None,
                        updated_at=now,
                    )
                    .returning(_L.c.id, _L.c.attempt_id)
                )
                .all()
            )
        entries = [(i, att, f"{note}; was {f.status}: {chosen[i] or '-'}"[:2000]) for i, att in moved]
        self._log(entries, "pending", "operator", now)
        return len(moved)

    def _requeue_filter(self, f: RequeueFilter) -> list[Any]:
        where: list[Any] = [LedgerEntry.status == f.status]
        if f.status == "failed":
            latest = (
                select(LedgerHistory.actor)
                .where(LedgerHistory.ledger_id == LedgerEntry.id)
                .order_by(LedgerHistory.id.desc())
                .limit(1)
                .scalar_subquery()
            )
            where.append(latest == "deliver")
        if f.journey:
            where.append(LedgerEntry.journey_id == f.journey)
        if f.step:
            where.append(LedgerEntry.step_id == f.step)
        if f.reason:
            where.append(func.lower(LedgerEntry.reason).contains(f.reason.lower(), autoescape=True))
        if f.since is not None:
            where.append(LedgerEntry.updated_at >= aware(f.since, "since"))
        return where

    def history(self, key: str) -> list[LedgerChange]:
        """Every change of one row after it was written, oldest first."""
        q = (
            select(LedgerHistory)
            .join(LedgerEntry, LedgerEntry.id == LedgerHistory.ledger_id)
            .where(LedgerEntry.key == key)
            .order_by(LedgerHistory.id)
        )
        return [LedgerChange(h.at, h.status, h.actor, h.attempt_id, h.reason) for h in self.s.scalars(q)]

    def for_customer(self, customer_id: str) -> list[LedgerRecord]:
        stmt = select(LedgerEntry).where(LedgerEntry.customer_id == customer_id).order_by(LedgerEntry.id)
        return [record(r) for r in self.s.scalars(stmt)]

    def sent_messages(self) -> list[LedgerRecord]:
        stmt = (
            select(LedgerEntry)
            .where(LedgerEntry.status == "sent", LedgerEntry.kind == "message")
            .order_by(LedgerEntry.id)
        )
        return [record(r) for r in self.s.scalars(stmt)]
