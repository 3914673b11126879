"""The store: every SQL statement Posventa runs, one repository per aggregate (:class:`app.ports.Store`).

==================== ===============================================================================
module               aggregate
==================== ===============================================================================
``customers``        customers, their facts and attributes; advisory locks per customer
``orders``           orders and their guarded status
``events``           the event log (idempotent by event id)
``plans``            compiled journey plans by version
``enrollments``      enrollments: entry rules, due claims (``SKIP LOCKED``), engine state
``ledger``           the step ledger / outbox: one row per effect, guarded status moves
``deferrals``        messages that waited when due (quiet hours, cap, complaint hold): one row per reason
``suppressions``     addresses not to write to
``feedback``         survey answers
``tickets``          support tickets (complaints hold promotions)
``referrals``        referral codes and conversions
``provider_events``  SendGrid webhook events, deduplicated
``api_keys``         the shops' API keys, hashed
``admin_users``      who may sign in to ``/admin``, passwords hashed
``timelines``        read-only: everything that happened to one customer, newest first
``journeys``         the live version and state of each journey, publications, journey-wide moves
``test_sends``       test messages (``posventa send-test``), for the rate limit
``installation``     facts about the database: the production mark, virtual clocks
``health``           read-only figures for ops: due backlog, ledger counts, failure reasons
==================== ===============================================================================

No engine logic and no commits here: :meth:`SqlStore.begin` owns the transaction. Idempotency comes from
the database, not from callers being careful: inserts are ``INSERT … ON CONFLICT DO NOTHING`` on a
derived key, state changes are guarded ``UPDATE … WHERE status IN (…)``, so a retried task finds the
work already done and does not do it twice.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from infra.db.store._base import normalise_email
from infra.db.store.admin_users import AdminUsers
from infra.db.store.api_keys import ApiKeys, TrustedKeys, holder_of, key_digest
from infra.db.store.customers import Customers
from infra.db.store.deferrals import Deferrals
from infra.db.store.enrollments import Enrollments
from infra.db.store.events import Events
from infra.db.store.feedback import Feedback
from infra.db.store.health import Health
from infra.db.store.installation import Installation
from infra.db.store.journeys import Journeys
from infra.db.store.ledger import Ledger
from infra.db.store.orders import Orders
from infra.db.store.plans import Plans
from infra.db.store.provider_events import ProviderEvents
from infra.db.store.referrals import Referrals
from infra.db.store.suppressions import Suppressions
from infra.db.store.test_sends import SendTests
from infra.db.store.tickets import Tickets
from infra.db.store.timelines import Timelines

__all__ = ["SqlStore", "SqlTx", "normalise_email"]


class SqlTx:
    """One session's repositories (:class:`app.ports.Tx`)."""

    def __init__(self, s: Session, trusted_keys: TrustedKeys | None = None) -> None:
        self.session = s
        self.customers = Customers(s)
        self.orders = Orders(s)
        self.events = Events(s)
        self.plans = Plans(s)
        self.enrollments = Enrollments(s)
        self.ledger = Ledger(s)
        self.deferrals = Deferrals(s)
        self.suppressions = Suppressions(s)
        self.feedback = Feedback(s)
        self.tickets = Tickets(s)
        self.referrals = Referrals(s)
        self.provider_events = ProviderEvents(s)
        self.api_keys = ApiKeys(s, trusted_keys)
        self.admin_users = AdminUsers(s)
        self.timelines = Timelines(s)
        self.journeys = Journeys(s)
        self.test_sends = SendTests(s)
        self.installation = Installation(s)
        self.health = Health(s)

    def savepoint(self) -> AbstractContextManager[object]:
        return self.session.begin_nested()


#: Where an event's values land, by table: the field a refused row is reported under.
_FIELD_OF_TABLE = {"customers": "customer", "orders": "order", "suppressions": "customer.email"}
#: SQLite names the column in its message: ``CHECK constraint failed: name``, ``… failed: customers.email``.
_SQLITE_WHERE = re.compile(r"constraint failed: (?:(\w+)\.)?(\w+)")


class SqlStore:
    """:class:`app.ports.Store` on a SQLAlchemy session factory (PostgreSQL or SQLite)."""

    value_errors: tuple[type[Exception], ...] = (DataError, IntegrityError)

    def lost_race(self, exc: Exception) -> bool:
        """PostgreSQL's deadlock_detected (40P01) and serialization_failure (40001)."""
        return isinstance(exc, OperationalError) and getattr(exc.orig, "pgcode", None) in ("40P01", "40001")

    def refusal(self, exc: Exception) -> str:
        """``customer.name: the database refused the value (check constraint "…")``, from the driver's
        diagnostics (table, column, constraint names: never a value, see :mod:`infra.db.session`)."""
        orig = getattr(exc, "orig", exc)
        diag = getattr(orig, "diag", None)
        table = getattr(diag, "table_name", None)
        column = getattr(diag, "column_name", None)
        constraint = getattr(diag, "constraint_name", None)
        if diag is None:
            found = _SQLITE_WHERE.search(str(orig))
            if found and found.group(1):
                table, column = found.group(1), found.group(2)
            elif found:
                constraint = found.group(2)
        field = _FIELD_OF_TABLE.get(table or "", "(event)")
        if column and field != "(event)":
            field = f"{field}.{column}"
        what = f'{type(orig).__name__}, constraint "{constraint}"' if constraint else type(orig).__name__
        return f"{field}: the database refused this item ({what}); nothing of it was stored"

    def __init__(self, factory: sessionmaker[Session], trusted_keys: TrustedKeys | None = None) -> None:
        self.factory = factory
        self.trusted_keys = trusted_keys or TrustedKeys()

    @contextmanager
    def begin(self) -> Iterator[SqlTx]:
        with self.factory.begin() as s:
            yield SqlTx(s, self.trusted_keys)

    def check_api_key(self, plaintext: str, purpose: str = "events") -> str | None:
        """:meth:`ApiKeys.check` for the check every API request makes first: a key found valid is trusted
        for a few seconds (:class:`TrustedKeys`: a revocation through this store is seen at once, one by
        another process within its ``ttl``); otherwise one statement outside any transaction (an
        autocommit connection: no BEGIN and ROLLBACK round trips)."""
        digest = key_digest(plaintext)
        shop = self.trusted_keys.get(digest, purpose)
        if shop is not None:
            return shop
        bind = self.factory.kw["bind"]
        with bind.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            shop = conn.scalar(holder_of(digest, purpose))
        if shop is not None:
            self.trusted_keys.put(digest, purpose, shop)
        return shop

    @contextmanager
    def read(self) -> Iterator[SqlTx]:
        with self.factory() as s:
            yield SqlTx(s, self.trusted_keys)

    def dispose(self) -> None:
        """Close the pooled connections (tests and tools that build many stores)."""
        bind = self.factory.kw.get("bind")
        if bind is not None:
            bind.dispose()
