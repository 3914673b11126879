"""The event catalogue: every event Posventa understands, with its payload schema.

Event type names are stored data (events table, journeys, API clients): once shipped they never change
(``docs/architecture.md``, "Stored tags"). Add new types; never rename one.

An event is an envelope (id, type, time, who, which order) plus a type-specific ``data`` payload. Shops
send ``customer`` / ``order`` objects inline on the events that create or change them, so a single
``order.placed`` is enough to start the post-purchase journey.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, field_validator

from posventa.errors import EventError

LOCALES = ("es", "en")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CustomerIn(_Strict):
    """A customer as a shop describes it (upserted on every event that carries it)."""

    id: str = Field(min_length=1, max_length=128)
    email: str | None = Field(default=None, max_length=320, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    name: str | None = Field(default=None, max_length=200)
    locale: Literal["es", "en"] | None = None
    timezone: str | None = Field(default=None, max_length=64)
    birthday: date | None = None
    consent_email: bool | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None:
            from posventa.timeutil import zone

            zone(value)  # raises ValueError with a readable message
        return value


class OrderItem(_Strict):
    sku: str = Field(min_length=1, max_length=128)
    name: str = Field(default="", max_length=300)
    quantity: int = Field(default=1, ge=1)
    price: float | None = Field(default=None, ge=0)
    category: str | None = None
    consumable: bool = False
    runs_out_in_days: int | None = Field(default=None, ge=1, le=3650)
    warranty_months: int | None = Field(default=None, ge=1, le=240)


class OrderIn(_Strict):
    id: str = Field(min_length=1, max_length=128)
    total: float | None = Field(default=None, ge=0)
    currency: str | None = Field(default=None, min_length=3, max_length=3)
    channel: str | None = Field(default=None, max_length=40)
    promised_delivery_date: date | None = None
    items: list[OrderItem] = Field(default_factory=list)
    referral_code: str | None = Field(default=None, max_length=64)
    tracking_url: str | None = Field(default=None, max_length=2000)
    attributes: dict[str, Any] = Field(default_factory=dict)


# --- type-specific payloads -------------------------------------------------------------------------
class NoData(_Strict):
    pass


class OrderShipped(_Strict):
    carrier: str | None = None
    tracking_url: str | None = None


class OrderDelivered(_Strict):
    delivered_at: AwareDatetime | None = None


class OrderCanceled(_Strict):
    reason: str | None = None


class OrderReturned(_Strict):
    reason: str | None = None
    rma_id: str | None = None


class ReturnRequested(_Strict):
    rma_id: str = Field(min_length=1)
    reason: str | None = None
    sku: str | None = None


class ReturnReceived(_Strict):
    rma_id: str = Field(min_length=1)
    refund_amount: float | None = Field(default=None, ge=0)


class FeedbackSubmitted(_Strict):
    score: int = Field(ge=0, le=10)
    comment: str | None = Field(default=None, max_length=5000)
    survey: Literal["nps", "product", "service"] = "nps"


class TicketOpened(_Strict):
    ticket_id: str = Field(min_length=1)
    subject: str | None = None
    category: Literal["complaint", "support", "return", "warranty"] = "complaint"


class TicketResolved(_Strict):
    ticket_id: str = Field(min_length=1)


class CustomerUpdated(_Strict):
    pass


class Purchase(_Strict):
    total: float | None = Field(default=None, ge=0)


class CustomerUnsubscribed(_Strict):
    scope: Literal["promotional", "all"] = "all"
    source: str | None = None


class EmailEngagement(_Strict):
    ledger_key: str | None = None
    url: str | None = None


class ReferralClicked(_Strict):
    code: str = Field(min_length=1)


#: The catalogue. Keys are stored tags: never rename, only add.
EVENT_TYPES: dict[str, type[_Strict]] = {
    "order.placed": NoData,
    "order.shipped": OrderShipped,
    "order.delivered": OrderDelivered,
    "order.canceled": OrderCanceled,
    "order.returned": OrderReturned,
    "return.requested": ReturnRequested,
    "return.received": ReturnReceived,
    "feedback.submitted": FeedbackSubmitted,
    "ticket.opened": TicketOpened,
    "ticket.resolved": TicketResolved,
    "customer.updated": CustomerUpdated,
    "customer.unsubscribed": CustomerUnsubscribed,
    "purchase": Purchase,
    "email.delivered": EmailEngagement,
    "email.opened": EmailEngagement,
    "email.clicked": EmailEngagement,
    "email.bounced": EmailEngagement,
    "referral.clicked": ReferralClicked,
}

#: Events whose envelope must name an order.
ORDER_EVENTS = frozenset(
    {
        "order.placed",
        "order.shipped",
        "order.delivered",
        "order.canceled",
        "order.returned",
        "return.requested",
        "return.received",
    }
)


class EventIn(_Strict):
    """The envelope, as accepted by the HTTP API and by ``posventa ingest``."""

    id: str = Field(min_length=1, max_length=128, description="Idempotency key: the same id is applied once.")
    type: str = Field(description="One of the catalogue's event types.")
    occurred_at: AwareDatetime
    customer_id: str | None = Field(default=None, min_length=1, max_length=128)
    customer: CustomerIn | None = None
    order_id: str | None = Field(default=None, min_length=1, max_length=128)
    order: OrderIn | None = None
    data: dict[str, Any] = Field(default_factory=dict)


class Event(_Strict):
    """A validated event: envelope resolved (customer id and order id known), payload checked."""

    id: str
    type: str
    occurred_at: datetime
    customer_id: str
    order_id: str | None
    customer: CustomerIn | None
    order: OrderIn | None
    data: dict[str, Any]

    def fact(self) -> dict[str, Any]:
        """The event as journeys see it in conditions (``event.data.score``, ``event.type``…)."""
        return {
            "id": self.id,
            "type": self.type,
            "occurred_at": self.occurred_at.isoformat(),
            "order_id": self.order_id,
            "data": dict(self.data),
        }


def parse_event(raw: Mapping[str, Any]) -> Event:
    """Validate one raw event; raise :class:`EventError` listing every problem with its field path."""
    problems: list[str] = []
    kind = raw.get("type") if isinstance(raw, Mapping) else None
    model = EVENT_TYPES.get(kind) if isinstance(kind, str) else None
    if isinstance(kind, str) and model is None:
        from difflib import get_close_matches

        near = get_close_matches(kind, list(EVENT_TYPES), n=1)
        hint = f" (did you mean '{near[0]}'?)" if near else ""
        problems.append(f"type: unknown event type '{kind}'{hint}")
    try:
        env = EventIn.model_validate(raw)
    except ValidationError as exc:
        # Report the envelope's problems together with the payload's, so one round trip shows them all.
        problems = _problems(exc) + problems
        raw_data = raw.get("data") if isinstance(raw, Mapping) else None
        if model is not None and isinstance(raw_data, Mapping):
            try:
                model.model_validate(raw_data)
            except ValidationError as inner:
                problems.extend(f"data.{p}" for p in _problems(inner))
        raise EventError(problems) from exc
    if model is None:
        raise EventError(problems)
    customer_id = env.customer_id or (env.customer.id if env.customer else None)
    if customer_id is None:
        problems.append("customer_id: required (or a 'customer' object with an id)")
    if env.customer and env.customer_id and env.customer.id != env.customer_id:
        problems.append("customer.id: differs from customer_id")
    order_id = env.order_id or (env.order.id if env.order else None)
    if env.order and env.order_id and env.order.id != env.order_id:
        problems.append("order.id: differs from order_id")
    if env.type in ORDER_EVENTS and order_id is None:
        problems.append(f"order_id: required for '{env.type}' (or an 'order' object with an id)")
    data: dict[str, Any] = {}
    try:
        data = model.model_validate(env.data).model_dump(mode="json", exclude_none=True)
    except ValidationError as exc:
        problems.extend(f"data.{p}" for p in _problems(exc))
    if problems:
        raise EventError(problems)
    assert customer_id is not None
    return Event(
        id=env.id,
        type=env.type,
        occurred_at=env.occurred_at,
        customer_id=customer_id,
        order_id=order_id,
        customer=env.customer,
        order=env.order,
        data=data,
    )


def _problems(exc: ValidationError) -> list[str]:
    out = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(event)"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        out.append(f"{loc}: {msg}")
    return out


def event_json_schema() -> dict[str, Any]:
    """JSON Schema of the envelope plus each type's payload, for the API docs."""
    return {
        "envelope": EventIn.model_json_schema(),
        "types": {name: model.model_json_schema() for name, model in EVENT_TYPES.items()},
    }
