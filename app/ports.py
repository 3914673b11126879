"""The ports: what the use cases need from the outside world, as protocols.

* :class:`Store` — the database. ``store.begin()`` is one transaction (committed when the block ends
  without an exception), ``store.read()`` a read-only look. Inside, a :class:`Tx` offers one small
  repository per aggregate (``tx.customers``, ``tx.ledger``…). ``infra.db.store`` implements it with
  SQLAlchemy on PostgreSQL and SQLite; every SQL statement lives there.
* :class:`Sender` — an email channel (SendGrid, the file outbox), with the four outcomes that keep sending
  exactly once (:class:`Outcome`).
* :class:`HttpClient` — outgoing journey webhooks (``infra.http``).
* :data:`Clock` — what time it is (virtual in the demo and the tests).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from app.journey_state import JourneyControl, LiveEnrollment, Publication, StepCount
from app.records import (
    AdminRecord,
    DeferralRecord,
    EnrollmentRecord,
    Fact,
    FeedbackRecord,
    LedgerChange,
    LedgerGroup,
    LedgerRecord,
    LedgerWork,
    Move,
    NewEnrollment,
    ReferralFigures,
    RequeueFilter,
    StateChange,
    SuppressionRecord,
    TimelineEntry,
)
from posventa.events import CustomerIn, Event, OrderIn

#: The current time, aware.
Clock = Callable[[], datetime]


# --- email ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class OutgoingEmail:
    """One rendered message for one recipient, keyed by the ledger's exactly-once key."""

    ledger_key: str
    to_email: str
    to_name: str | None
    subject: str
    html: str
    text: str
    journey: str
    step: str
    promotional: bool
    unsubscribe_url: str | None
    locale: str = "es"
    sendgrid_template_id: str | None = None
    template_data: Mapping[str, Any] | None = None
    extra_custom_args: Mapping[str, str] = field(default_factory=dict)


class Outcome(StrEnum):
    """What the ledger may conclude; values are stored, so they never change."""

    SENT = "sent"
    FAILED = "failed"  # permanent: do not retry this message as it is
    UNKNOWN = "unknown"  # the provider may have it: reconcile, never resend blindly
    RETRY = "retry"  # nothing was sent: safe to send again (after retry_after, when given)


@dataclass(frozen=True)
class SendResult:
    ledger_key: str
    outcome: Outcome
    provider_message_id: str | None = None
    error: str | None = None
    retry_after: float | None = None


def mask_email(address: str) -> str:
    """``ana@example.com`` → ``a***@example.com``: logs and pages keep the domain, not the person."""
    local, sep, domain = address.rpartition("@")
    if not sep:
        return "***"
    return f"{local[:1]}***@{domain}" if local else f"***@{domain}"


class Sender(Protocol):
    """An email channel; ``send`` returns one result per message, in the same order, and never raises
    for a per-message or provider problem (those are outcomes)."""

    name: str

    def send(self, messages: Sequence[OutgoingEmail]) -> list[SendResult]: ...


# --- outgoing webhooks ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class HttpAnswer:
    """``status`` is the HTTP status; None when no answer came (the request may or may not have arrived:
    an ambiguous outcome, reconciled like an ambiguous email) — unless ``not_sent`` says the request
    certainly never left (the connection could not be opened), which is safe to try again."""

    status: int | None
    error: str | None = None
    not_sent: bool = False


class HttpClient(Protocol):
    """POSTs JSON; never raises for a network problem (that is an answer without a status). Called from
    several threads at once."""

    def post_json(self, url: str, body: Mapping[str, Any], headers: Mapping[str, str]) -> HttpAnswer: ...


# --- the store -----------------------------------------------------------------------------------------
class Customers(Protocol):
    def ensure(self, customer_id: str) -> bool: ...
    def ensure_many(self, customer_ids: Sequence[str]) -> None: ...
    def upsert(self, customer: CustomerIn) -> Fact: ...
    def upsert_many(self, customers: Sequence[CustomerIn]) -> dict[str, Fact]: ...
    def fact(self, customer_id: str) -> Fact | None: ...
    def facts(self, customer_ids: Sequence[str]) -> dict[str, Fact]: ...
    def all_facts(self) -> Iterator[Fact]: ...
    def with_birthday(self) -> Iterator[Fact]: ...
    def find_by_email(self, email: str) -> str | None: ...
    def merge_attributes(self, customer_id: str, attributes: Mapping[str, Any]) -> None: ...
    def lock(self, customer_ids: Sequence[str]) -> None: ...


class Orders(Protocol):
    def upsert(
        self, customer_id: str, order: OrderIn, placed_at: datetime, *, customer_exists: bool = False
    ) -> Fact: ...
    def upsert_many(self, orders: Sequence[tuple[str, OrderIn, datetime]]) -> dict[str, Fact]: ...
    def ensure(self, order_id: str, customer_id: str, placed_at: datetime) -> None: ...
    def ensure_many(self, orders: Sequence[tuple[str, str, datetime]]) -> None: ...
    def fact(self, order_id: str) -> Fact | None: ...
    def facts(self, order_ids: Sequence[str]) -> dict[str, Fact]: ...
    def live_facts(self) -> Iterator[tuple[str, Fact]]: ...
    def set_status(self, order_id: str, status: str, at: datetime) -> bool: ...
    def set_tracking_url(self, order_id: str, url: str) -> None: ...
    def count_by_customer(self, customer_ids: Sequence[str]) -> dict[str, int]: ...


class Events(Protocol):
    def record(self, event: Event, source: str) -> bool: ...
    def record_many(self, events: Sequence[Event], source: str) -> set[str]: ...
    def for_customers(
        self, customer_ids: Sequence[str], since: datetime, until: datetime
    ) -> dict[str, list[Fact]]: ...
    def data(self, event_id: str) -> dict[str, Any] | None: ...
    def set_data(self, event_id: str, data: Mapping[str, Any]) -> None: ...


class Plans(Protocol):
    def save(self, journey_id: str, version: str, plan: Mapping[str, Any]) -> bool: ...
    def get(self, journey_id: str, version: str) -> dict[str, Any] | None: ...


class Enrollments(Protocol):
    def create(
        self,
        journey_id: str,
        plan_version: str,
        customer_id: str,
        order_id: str | None,
        entry_key: str,
        state: Mapping[str, Any],
        next_due_at: datetime | None,
        entered_at: datetime,
    ) -> int | None: ...
    def create_many(self, rows: Sequence[NewEnrollment]) -> None: ...
    def last_entered(self, journey_id: str, customer_id: str) -> datetime | None: ...
    def count(self, journey_id: str, customer_id: str) -> int: ...
    def histories(
        self, pairs: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], tuple[datetime | None, int]]: ...
    def wake(self, customer_id: str, now: datetime) -> None: ...
    def wake_many(self, customer_ids: Sequence[str], now: datetime) -> None: ...
    def claim_due(
        self, now: datetime, limit: int, journey: str | None, customer: str | None, force: bool
    ) -> list[EnrollmentRecord]: ...
    def save_state(
        self,
        enrollment_id: int,
        state: Mapping[str, Any],
        status: str,
        next_due_at: datetime | None,
        ended_at: datetime | None,
    ) -> None: ...
    def save_states(self, changes: Sequence[StateChange]) -> None: ...
    def record_failure(
        self, enrollment_id: int, attempts: int, error: str, status: str, next_due_at: datetime | None
    ) -> None: ...
    def count_due(self, now: datetime, journey: str | None) -> int: ...
    def for_customer(self, customer_id: str) -> list[EnrollmentRecord]: ...
    def states_for_customer(self, customer_id: str, *, lock_live: bool) -> list[Mapping[str, Any]]: ...


class Ledger(Protocol):
    def insert(self, rows: Sequence[Mapping[str, Any]]) -> None: ...
    def recent_promotional(
        self, customer_ids: Sequence[str], since: datetime
    ) -> dict[str, list[datetime]]: ...
    def claim_pending(
        self,
        now: datetime,
        limit: int,
        customer: str | None,
        *,
        attempt: str | None = None,
        lease_until: datetime | None = None,
    ) -> list[LedgerWork]: ...
    def renew_lease(self, attempt: str, until: datetime) -> int: ...
    def get(self, key: str) -> LedgerRecord | None: ...
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
    ) -> bool: ...
    def mark_many(
        self,
        moves: Sequence[Move],
        from_statuses: Sequence[str],
        *,
        now: datetime,
        attempt: str | None = None,
        actor: str = "deliver",
    ) -> None: ...
    def expire_leases(self, now: datetime) -> int: ...
    def release_unknown(self, older_than: datetime, now: datetime) -> int: ...
    def count_by_status(self, kind: str | None = None) -> dict[str, int]: ...
    def unknown_summary(self) -> list[LedgerGroup]: ...
    def requeue_candidates(self, f: RequeueFilter) -> list[LedgerGroup]: ...
    def requeue(self, f: RequeueFilter, now: datetime, note: str) -> int: ...
    def history(self, key: str) -> list[LedgerChange]: ...
    def for_customer(self, customer_id: str) -> list[LedgerRecord]: ...
    def sent_messages(self) -> list[LedgerRecord]: ...


class Suppressions(Protocol):
    def suppress(
        self,
        email: str,
        reason: str,
        scope: str = "all",
        customer_id: str | None = None,
        source: str = "system",
        detail: str | None = None,
    ) -> bool: ...
    def is_suppressed(self, email: str, promotional: bool) -> str | None: ...
    def for_customer(self, customer_id: str) -> list[SuppressionRecord]: ...
    def scopes(self, emails: Sequence[str]) -> dict[str, dict[str, str]]: ...


class Feedback(Protocol):
    def save(
        self, customer_id: str, order_id: str | None, survey: str, score: int, comment: str | None
    ) -> FeedbackRecord: ...
    def get(self, customer_id: str, order_id: str | None, survey: str) -> FeedbackRecord | None: ...
    def for_customers(self, customer_ids: Sequence[str]) -> dict[tuple[str, str | None], Fact]: ...


class Tickets(Protocol):
    def open(
        self,
        ticket_id: str,
        customer_id: str,
        order_id: str | None,
        subject: str | None,
        category: str,
        source: str,
        opened_at: datetime | None = None,
    ) -> bool: ...
    def resolve(self, ticket_id: str, at: datetime) -> bool: ...
    def has_open_complaint(self, customer_id: str) -> bool: ...
    def open_complaints(self, customer_ids: Sequence[str]) -> set[str]: ...


class Referrals(Protocol):
    def code_for(self, customer_id: str, journey_id: str | None) -> str: ...
    def owner(self, code: str) -> str | None: ...
    def attribute(self, code: str, order_id: str, referred_customer_id: str) -> bool: ...
    def figures(self) -> ReferralFigures: ...


class ProviderEvents(Protocol):
    def record(
        self,
        sg_event_id: str,
        event: str,
        ledger_key: str | None,
        email: str | None,
        occurred_at: datetime,
        data: Mapping[str, Any],
    ) -> bool: ...


class AdminUsers(Protocol):
    def add(self, username: str, password_hash: str, now: datetime) -> bool: ...
    def get(self, username: str) -> AdminRecord | None: ...
    def by_id(self, admin_id: int) -> AdminRecord | None: ...
    def all(self) -> list[AdminRecord]: ...
    def set_password(self, username: str, password_hash: str, now: datetime) -> bool: ...
    def signed_in(self, admin_id: int, now: datetime) -> None: ...
    def remove(self, username: str) -> bool: ...


class Timelines(Protocol):
    def for_customer(self, customer_id: str, limit: int) -> list[TimelineEntry]: ...


class ApiKeys(Protocol):
    def create(self, shop: str, label: str | None = None, purpose: str = "events") -> str: ...
    def check(self, plaintext: str, purpose: str = "events") -> str | None: ...
    def revoke(self, plaintext: str, at: datetime | None = None) -> bool: ...


class Journeys(Protocol):
    def controls(self) -> list[JourneyControl]: ...
    def control(self, journey_id: str) -> JourneyControl | None: ...
    def any_published(self) -> bool: ...
    def set_live(
        self, journey_id: str, version: str, kind: str, now: datetime, *, only_if_unpublished: bool = False
    ) -> Publication | None: ...
    def set_state(self, journey_id: str, state: str, reason: str | None, now: datetime) -> JourneyControl: ...
    def publications(self, journey_id: str) -> list[Publication]: ...
    def step_counts(self, journey_id: str) -> list[StepCount]: ...
    def live_enrollments(self, journey_id: str, *, lock: bool) -> list[LiveEnrollment]: ...
    def move(self, moves: Sequence[Mapping[str, Any]]) -> None: ...
    def end(self, ended: Sequence[Mapping[str, Any]], now: datetime) -> None: ...
    def skip_pending(self, journey_id: str, reason: str, now: datetime) -> int: ...


class SendTests(Protocol):
    def record(
        self, journey_id: str, step_id: str, to_email: str, outcome: str, detail: str | None, at: datetime
    ) -> int: ...
    def finish(self, row_id: int, outcome: str, detail: str | None) -> None: ...
    def since(self, since: datetime) -> list[datetime]: ...
    def count(self) -> int: ...


class Installation(Protocol):
    def get(self, name: str) -> str | None: ...
    def set(self, name: str, value: str, now: datetime) -> None: ...
    def unset(self, name: str) -> None: ...


class Deferrals(Protocol):
    """Messages that waited when due, one row per message and reason (the report's ``deferred``)."""

    def record(self, rows: Sequence[DeferralRecord]) -> None: ...


class Health(Protocol):
    """Read-only figures for ops: the due backlog, ledger counts, failure reasons (``posventa status``, the
    run summaries)."""

    def backlog(self, now: datetime) -> tuple[int, datetime | None]: ...
    def ledger_counts(self, statuses: Sequence[str], *, since: datetime | None = None) -> dict[str, int]: ...
    def latest(self, status: str, *, reason_prefixes: Sequence[str] = ()) -> datetime | None: ...
    def reasons(
        self,
        statuses: Sequence[str],
        *,
        moved_at: datetime | None = None,
        since: datetime | None = None,
        limit: int = 50,
    ) -> list[tuple[str, str, str, str | None, int]]: ...


class Tx(Protocol):
    """One transaction's view of the store: a repository per aggregate."""

    @property
    def customers(self) -> Customers: ...
    @property
    def orders(self) -> Orders: ...
    @property
    def events(self) -> Events: ...
    @property
    def plans(self) -> Plans: ...
    @property
    def enrollments(self) -> Enrollments: ...
    @property
    def ledger(self) -> Ledger: ...
    @property
    def deferrals(self) -> Deferrals: ...
    @property
    def suppressions(self) -> Suppressions: ...
    @property
    def feedback(self) -> Feedback: ...
    @property
    def tickets(self) -> Tickets: ...
    @property
    def referrals(self) -> Referrals: ...
    @property
    def provider_events(self) -> ProviderEvents: ...
    @property
    def api_keys(self) -> ApiKeys: ...
    @property
    def admin_users(self) -> AdminUsers: ...
    @property
    def timelines(self) -> Timelines: ...
    @property
    def journeys(self) -> Journeys: ...
    @property
    def test_sends(self) -> SendTests: ...
    @property
    def installation(self) -> Installation: ...
    @property
    def health(self) -> Health: ...

    def savepoint(self) -> AbstractContextManager[object]:
        """A nested transaction: an exception inside rolls back only what the block did."""
        ...


class Store(Protocol):
    #: The store's errors that mean "this value cannot be stored" (too long, out of range, violates a
    #: constraint), as opposed to "the database is unavailable".
    value_errors: tuple[type[Exception], ...]

    def refusal(self, exc: Exception) -> str:
        """One of :attr:`value_errors` said for the sender of the item: the field it concerns when known
        (``customer.name: …``) and what was refused, never a stored value."""
        ...

    def lost_race(self, exc: Exception) -> bool:
        """True when the database rolled the transaction back for losing a race with another one (a
        deadlock, a serialization failure): the same work can simply be done again."""
        ...

    def begin(self) -> AbstractContextManager[Tx]:
        """One transaction: committed when the block ends normally, rolled back on an exception."""
        ...

    def read(self) -> AbstractContextManager[Tx]:
        """A look at the data; nothing written is kept."""
        ...

    def check_api_key(self, plaintext: str, purpose: str = "events") -> str | None:
        """The shop (holder) of a key with ``purpose``, or None if unknown, revoked or for another door:
        one lookup, outside any transaction."""
        ...
