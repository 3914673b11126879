"""Customers: upserts from events, facts for the engine and templates, attributes set by journeys, and
the advisory locks that serialise workers on a customer."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import func, select, text

from app.records import Fact
from infra.db.models import Customer
from infra.db.store._base import Repo, insert_or_update, insert_or_update_many, normalise_email
from posventa.events import CustomerIn

#: The columns a fact reads: selected as rows by the batch readers (no ORM objects to build and track).
_FACT = (
    Customer.id,
    Customer.email,
    Customer.name,
    Customer.locale,
    Customer.timezone,
    Customer.birthday,
    Customer.consent_email,
    Customer.attributes,
)


def customer_fact(c: Any) -> Fact:
    """``customer.*`` as conditions and templates read it (from a :class:`Customer` or a row of
    :data:`_FACT`)."""
    return {
        "id": c.id,
        "email": c.email,
        "name": c.name,
        "locale": c.locale,
        "timezone": c.timezone,
        "birthday": c.birthday.isoformat() if c.birthday else None,
        "consent_email": c.consent_email,
        "attributes": dict(c.attributes or {}),
    }


def _given(customer: CustomerIn) -> tuple[dict[str, Any], dict[str, Any]]:
    """The fields the shop sent (not null), and the custom attributes apart."""
    given = {
        name: getattr(customer, name)
        for name in customer.model_fields_set - {"id"}
        if getattr(customer, name) is not None
    }
    if "email" in given:
        given["email"] = given["email"].strip()
    attributes = dict(given.pop("attributes", {}))
    return given, attributes


class Customers(Repo):
    def ensure(self, customer_id: str) -> bool:
        """Make sure a customer row exists (an event may name a customer the shop never described).
        Returns True if it was created."""
        stmt = self.insert_ignoring(Customer, returning=("id",))
        return self.s.execute(stmt, {"id": customer_id}).first() is not None

    def ensure_many(self, customer_ids: Sequence[str]) -> None:
        """:meth:`ensure` of many customers, in one statement."""
        if customer_ids:
            stmt = self.insert_ignoring(Customer, returning=("id",))  # RETURNING: one multi-row INSERT
            self.s.execute(stmt, [{"id": cid} for cid in customer_ids])

    def upsert(self, customer: CustomerIn) -> Fact:
        """Create or update a customer; returns it as stored now. Only fields the shop sent are changed (a
        field sent as null keeps the stored value); ``attributes`` are merged key by key."""
        given, attributes = _given(customer)
        return customer_fact(
            insert_or_update(self, Customer, customer.id, {"id": customer.id}, given, attributes)
        )

    def upsert_many(self, customers: Sequence[CustomerIn]) -> dict[str, Fact]:
        """:meth:`upsert` of customers with distinct ids, in one statement per set of fields sent; returns
        them by id as stored now."""
        rows = [({"id": c.id}, *_given(c)) for c in customers]
        return {c.id: customer_fact(c) for c in insert_or_update_many(self, Customer, rows)}

    def fact(self, customer_id: str) -> Fact | None:
        c = self.s.get(Customer, customer_id)
        return None if c is None else customer_fact(c)

    def facts(self, customer_ids: Sequence[str]) -> dict[str, Fact]:
        rows = self.s.execute(select(*_FACT).where(Customer.id.in_(sorted(set(customer_ids)))))
        return {c.id: customer_fact(c) for c in rows}

    def all_facts(self) -> Iterator[Fact]:
        for c in self.s.scalars(select(Customer).order_by(Customer.id)):
            yield customer_fact(c)

    def with_birthday(self) -> Iterator[Fact]:
        for c in self.s.scalars(select(Customer).where(Customer.birthday.is_not(None)).order_by(Customer.id)):
            yield customer_fact(c)

    def find_by_email(self, email: str) -> str | None:
        """The customer with this address (the first by id when several share it)."""
        return self.s.scalar(
            select(Customer.id)
            .where(func.lower(Customer.email) == normalise_email(email))
            .order_by(Customer.id)
            .limit(1)
        )

    def merge_attributes(self, customer_id: str, attributes: Mapping[str, Any]) -> None:
        c = self.s.get(Customer, customer_id)
        if c is not None:
            c.attributes = {**(c.attributes or {}), **attributes}

    def lock(self, customer_ids: Sequence[str]) -> None:
        """PostgreSQL: serialise workers on the same customers until commit, so the frequency cap (which
        counts messages across journeys) sees what another worker just decided. Locks are taken in one
        sorted order, so two workers cannot deadlock on them. SQLite has one writer: nothing to do."""
        if not self.is_postgres or not customer_ids:
            return
        self.s.execute(
            text(
                "SELECT pg_advisory_xact_lock(h) FROM (SELECT hashtextextended(c, 7823) AS h "
                "FROM unnest(CAST(:ids AS text[])) AS c ORDER BY 1) AS k"
            ),
            {"ids": sorted(set(customer_ids))},
        )
