"""The event catalogue: every event Posventa understands, with its payload schema.

Event type names are stored data (events table, journeys, API clients): once shipped they never change
(``docs/architecture.md``, "Stored tags"). Add new types; never rename one.

An event is an envelope (id, type, time, who, which order) plus a type-specific ``data`` payload. Shops
send ``customer`` / ``order`` objects inline on the events that create or change them, so a single
``order.placed`` is enough to start the post-purchase journey.

Every field is checked against what the store and the mail can hold, so that a bad item is a clear
per-item rejection and never a database error in the middle of a batch:

* text: no NUL (PostgreSQL text and JSONB cannot hold it), no unpaired surrogates (not encodable as
  UTF-8), no other control characters — single-line fields (:data:`LINE`: ids, names, emails, codes,
  URLs…) refuse tab, CR and LF too (a CR/LF in a name breaks every email header); multi-line fields
  (:data:`TEXT`: comments, reasons) allow tab, CR and LF; lengths within the columns'
  (``infra/db/models.py``);
* instants and dates: years :data:`~posventa.timeutil.MIN_YEAR`–:data:`~posventa.timeutil.MAX_YEAR`,
  checked after conversion to UTC (``0001-01-01T00:00:00+01:00`` has no UTC instant);
* amounts: finite, at least 0, at most :data:`MAX_AMOUNT` (``orders.total`` is ``NUMERIC(12, 2)``);
* free-form JSON (``attributes``): the same text rules for keys and strings, finite numbers within
  :data:`MAX_NUMBER`, at most :data:`MAX_JSON_DEPTH` levels.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    ValidationError,
    WithJsonSchema,
    field_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, core_schema

from posventa.errors import EventError
from posventa.timeutil import MAX_YEAR, MIN_YEAR, in_calendar

LOCALES = ("es", "en")
#: Largest amount (order total, price, refund): what ``NUMERIC(12, 2)`` holds.
MAX_AMOUNT = 9_999_999_999.99
#: Largest number in free-form JSON, either sign: the largest integer every JSON reader keeps exactly.
MAX_NUMBER = 2**53 - 1
#: Deepest nesting of free-form JSON (``attributes``).
MAX_JSON_DEPTH = 16
#: Longest key of free-form JSON.
MAX_KEY_CHARS = 200

#: Not allowed in single-line text: every C0 control (tab, CR, LF included), DEL, C1 controls, surrogates.
_NOT_IN_LINE = re.compile("[\\x00-\\x1f\\x7f-\\x9f\\ud800-\\udfff]")
#: Not allowed in multi-line text: the same but tab, LF and CR.
_NOT_IN_TEXT = re.compile("[\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f\\ud800-\\udfff]")


def _refuse(match: re.Match[str]) -> None:
    code = ord(match.group())
    what = (
        "a line break"
        if code in (10, 13)
        else "a surrogate"
        if 0xD800 <= code <= 0xDFFF
        else "a control character"
    )
    raise ValueError(f"contains {what} (U+{code:04X}) at position {match.start() + 1}")


def _line(value: str) -> str:
    bad = _NOT_IN_LINE.search(value)
    if bad is not None:
        _refuse(bad)
    return value


def _text(value: str) -> str:
    bad = _NOT_IN_TEXT.search(value)
    if bad is not None:
        _refuse(bad)
    return value


def _instant(value: datetime) -> datetime:
    try:
        in_utc = value.astimezone(UTC)
    except OverflowError:
        in_utc = None
    if in_utc is None or not in_calendar(in_utc):
        raise ValueError(f"must be between the years {MIN_YEAR} and {MAX_YEAR} (in UTC)")
    return value


def _day(value: date) -> date:
    if not in_calendar(value):
        raise ValueError(f"must be between the years {MIN_YEAR} and {MAX_YEAR}")
    return value


def _json(value: dict[str, Any]) -> dict[str, Any]:
    _check_json(value, "", 1)
    return value


_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _child(path: str, key: str) -> str:
    """``vip.tags`` for a key that reads as a name, ``vip['a b']`` for one that does not."""
    if not _KEY.match(key):
        return f"{path}[{key!r}]"
    return f"{path}.{key}" if path else key


def _check_json(value: Any, path: str, depth: int) -> None:
    """Free-form JSON the store can hold (see the module docstring). ValueError names the place inside
    the value (``vip.tags[2]: contains a control character``)."""
    where = f"{path}: " if path else ""
    if depth > MAX_JSON_DEPTH:
        raise ValueError(f"{where}nested more than {MAX_JSON_DEPTH} levels deep")
    if isinstance(value, str):
        try:
            _text(value)
        except ValueError as exc:
            raise ValueError(f"{where}{exc}") from None
    elif isinstance(value, bool) or value is None:
        pass
    elif isinstance(value, (int, float)):
        if not math.isfinite(value) or abs(value) > MAX_NUMBER:
            shown = str(value) if len(str(value)) <= 24 else str(value)[:20] + "…"
            raise ValueError(
                f"{where}the number {shown} is out of range (finite, at most {MAX_NUMBER} either way)"
            )
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str) or len(key) > MAX_KEY_CHARS or _NOT_IN_LINE.search(key):
                raise ValueError(
                    f"{where}the key {str(key)[:40]!r} is not allowed "
                    f"(keys are text of at most {MAX_KEY_CHARS} characters, without control characters)"
                )
            _check_json(item, _child(path, key), depth + 1)
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check_json(item, f"{path}[{i}]", depth + 1)
    else:
        raise ValueError(f"{where}{type(value).__name__} is not a JSON value")


def _zero_is_none(value: int) -> int | None:
    return value or None


class _TextRule:
    """A check of text that also states itself in the JSON Schema, so the API's OpenAPI document and
    ``GET /v1/event-types`` say what is refused (a ``pattern``; the check's message is the error)."""

    def __init__(self, check: Callable[[str], str], pattern: str) -> None:
        self.check, self.pattern = check, pattern

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_after_validator_function(self.check, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        out = handler(schema)
        if "pattern" in out:  # the field has its own (an email's): both must hold
            out.setdefault("allOf", []).append({"pattern": self.pattern})
        else:
            out["pattern"] = self.pattern
        return out


#: Checks of single-line text (ids, names, emails, codes, URLs) and multi-line text (comments, reasons),
#: written after the field's length constraints: ``Annotated[str, Field(max_length=200), LINE]``. The
#: patterns are ECMA-262, as JSON Schema wants (lone surrogates are refused too, but no pattern can say so
#: without also refusing the pairs that make up emoji).
LINE = _TextRule(_line, "^[^\\u0000-\\u001f\\u007f-\\u009f]*$")
TEXT = _TextRule(_text, "^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f]*$")
#: The years an instant or a date may have, as a pattern (an instant is checked in UTC: an offset can still
#: move one at the edge out of range).
_YEARS = f"^(19[0-9][0-9]|2[01][0-9][0-9]|{MAX_YEAR})-"
#: An id: the shop's customer, order or event id (the columns are ``VARCHAR(128)``).
Id = Annotated[str, Field(min_length=1, max_length=128), LINE]
Instant = Annotated[
    AwareDatetime,
    AfterValidator(_instant),
    WithJsonSchema({"type": "string", "format": "date-time", "pattern": _YEARS}),
]
Day = Annotated[
    date, AfterValidator(_day), WithJsonSchema({"type": "string", "format": "date", "pattern": _YEARS})
]
Amount = Annotated[float, Field(ge=0, le=MAX_AMOUNT, allow_inf_nan=False)]
JSONObject = Annotated[
    dict[str, Any],
    AfterValidator(_json),
    WithJsonSchema(
        {
            "type": "object",
            "description": f"Free-form JSON: keys of at most {MAX_KEY_CHARS} characters without control "
            f"characters, text without NUL or other controls but tab and line breaks, numbers within "
            f"{MAX_NUMBER} either way, at most {MAX_JSON_DEPTH} levels deep.",
            "propertyNames": {"maxLength": MAX_KEY_CHARS, "pattern": LINE.pattern},
            "additionalProperties": True,
        }
    ),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CustomerIn(_Strict):
    """A customer as a shop describes it (upserted on every event that carries it)."""

    id: Id
    email: Annotated[str, Field(max_length=320, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"), LINE] | None = None
    name: Annotated[str, Field(max_length=200), LINE] | None = None
    locale: Literal["es", "en"] | None = None
    timezone: Annotated[str, Field(max_length=64), LINE] | None = None
    birthday: Day | None = None
    consent_email: bool | None = None
    attributes: JSONObject = Field(default_factory=dict)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None:
            from posventa.timeutil import zone

            zone(value)  # raises ValueError with a readable message
        return value


class OrderItem(_Strict):
    sku: Id
    name: Annotated[str, Field(max_length=300), LINE] = ""
    quantity: int = Field(default=1, ge=1, le=1_000_000)
    price: Amount | None = None
    category: Annotated[str, Field(max_length=100), LINE] | None = None
    consumable: bool = False
    # Shops often send 0 for "not applicable": accepted, and stored as not given.
    runs_out_in_days: Annotated[int, Field(ge=0, le=3650), AfterValidator(_zero_is_none)] | None = None
    warranty_months: Annotated[int, Field(ge=0, le=240), AfterValidator(_zero_is_none)] | None = None


class OrderIn(_Strict):
    id: Id
    total: Amount | None = None
    currency: Annotated[str, Field(min_length=3, max_length=3), LINE] | None = None
    channel: Annotated[str, Field(max_length=40), LINE] | None = None
    promised_delivery_date: Day | None = None
    items: list[OrderItem] = Field(default_factory=list, max_length=1000)
    referral_code: Annotated[str, Field(max_length=64), LINE] | None = None
    tracking_url: Annotated[str, Field(max_length=2000), LINE] | None = None
    attributes: JSONObject = Field(default_factory=dict)


# --- type-specific payloads -------------------------------------------------------------------------
class NoData(_Strict):
    pass


class OrderShipped(_Strict):
    carrier: Annotated[str, Field(max_length=200), LINE] | None = None
    tracking_url: Annotated[str, Field(max_length=2000), LINE] | None = None  # orders.tracking_url


class OrderDelivered(_Strict):
    delivered_at: Instant | None = None


class OrderCanceled(_Strict):
    reason: Annotated[str, Field(max_length=2000), TEXT] | None = None


class OrderReturned(_Strict):
    reason: Annotated[str, Field(max_length=2000), TEXT] | None = None
    rma_id: Annotated[str, Field(max_length=128), LINE] | None = None


class ReturnRequested(_Strict):
    rma_id: Id
    reason: Annotated[str, Field(max_length=2000), TEXT] | None = None
    sku: Annotated[str, Field(max_length=128), LINE] | None = None


class ReturnReceived(_Strict):
    rma_id: Id
    refund_amount: Amount | None = None


class FeedbackSubmitted(_Strict):
    score: int = Field(ge=0, le=10)
    comment: Annotated[str, Field(max_length=5000), TEXT] | None = None
    survey: Literal["nps", "product", "service"] = "nps"


class TicketOpened(_Strict):
    ticket_id: Id  # support_tickets.id
    subject: Annotated[str, Field(max_length=300), LINE] | None = None  # support_tickets.subject
    category: Literal["complaint", "support", "return", "warranty"] = "complaint"


class TicketResolved(_Strict):
    ticket_id: Id


class CustomerUpdated(_Strict):
    pass


class Purchase(_Strict):
    total: Amount | None = None


class CustomerUnsubscribed(_Strict):
    scope: Literal["promotional", "all"] = "all"
    source: Annotated[str, Field(max_length=40), LINE] | None = None  # suppressions.source


class EmailEngagement(_Strict):
    ledger_key: Annotated[str, Field(max_length=255), LINE] | None = None
    url: Annotated[str, Field(max_length=2000), LINE] | None = None


class ReferralClicked(_Strict):
    code: Annotated[str, Field(min_length=1, max_length=64), LINE]


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

    id: Id = Field(description="Idempotency key: the same id is applied once.")
    type: str = Field(max_length=64, description="One of the catalogue's event types.")
    occurred_at: Instant
    customer_id: Id | None = None
    customer: CustomerIn | None = None
    order_id: Id | None = None
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
    """Validate one raw event; raise :class:`EventError` listing every problem with its field path — and
    nothing else, whatever ``raw`` holds."""
    try:
        return _parse_event(raw)
    except EventError:
        raise
    except Exception as exc:  # a shape no check foresaw: still a rejection of this item, not a crash
        raise EventError([f"(event): cannot be read ({type(exc).__name__})"]) from exc


def _parse_event(raw: Mapping[str, Any]) -> Event:
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
        msg = str(err["msg"]).removeprefix("Value error, ")
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
