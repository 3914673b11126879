"""The OpenAPI document: the event envelope and every event type's payload, as reusable components.

``POST /v1/events`` reads its raw body (to bound its size and report item by item), so FastAPI cannot
infer the schema: the request body is described here from :mod:`posventa.events` instead, and the
pydantic schemas are registered under ``components/schemas``.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from posventa.events import EVENT_TYPES, ORDER_EVENTS, EventIn

REF = "#/components/schemas/{model}"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": REF.format(model=name)}


def typed_name(event_type: str) -> str:
    return "Event_" + event_type.replace(".", "_")


EXAMPLE_EVENT = {
    "id": "shop-evt-1001",
    "type": "order.placed",
    "occurred_at": "2026-03-02T10:15:00+01:00",
    "customer": {"id": "C-42", "email": "ana@example.com", "name": "Ana García", "locale": "es"},
    "order": {
        "id": "O-9001",
        "total": 59.9,
        "currency": "EUR",
        "promised_delivery_date": "2026-03-05",
        "items": [{"sku": "TB-01", "name": "Cepillo de dientes", "quantity": 2, "price": 29.95}],
    },
}

EVENTS_REQUEST_BODY: dict[str, Any] = {
    "required": True,
    "description": 'One event, or a batch `{"events": [...]}` (a bare array is accepted too). At most '
    "1000 events and 1 MiB per request.",
    "content": {
        "application/json": {
            "schema": {"oneOf": [_ref("Event"), _ref("EventBatch")]},
            "examples": {
                "single": {
                    "summary": "One order.placed (starts the post-purchase journey)",
                    "value": EXAMPLE_EVENT,
                },
                "batch": {
                    "summary": "A batch",
                    "value": {
                        "events": [
                            EXAMPLE_EVENT,
                            {
                                "id": "shop-evt-1002",
                                "type": "order.delivered",
                                "occurred_at": "2026-03-04T12:00:00Z",
                                "customer_id": "C-42",
                                "order_id": "O-9001",
                            },
                            {
                                "id": "shop-evt-1003",
                                "type": "feedback.submitted",
                                "occurred_at": "2026-03-11T09:30:00Z",
                                "customer_id": "C-42",
                                "order_id": "O-9001",
                                "data": {"score": 9, "comment": "¡Genial!"},
                            },
                        ]
                    },
                },
            },
        }
    },
}


def _one_of_present(*names: str) -> dict[str, Any]:
    """At least one of the fields ``names`` is present and not null (``customer_id`` or ``customer``)."""
    return {
        "anyOf": [{"required": [name], "properties": {name: {"not": {"type": "null"}}}} for name in names]
    }


def event_schemas() -> dict[str, Any]:
    """Components: envelope, payload models, one typed event per type, ``Event`` and ``EventBatch``."""
    models: list[type[BaseModel]] = [EventIn, *dict.fromkeys(EVENT_TYPES.values())]
    _, top = models_json_schema([(model, "validation") for model in models], ref_template=REF)
    schemas: dict[str, Any] = dict(top.get("$defs", {}))
    for name, model in EVENT_TYPES.items():
        required = ["type", "data"] if model.model_json_schema().get("required") else ["type"]
        description = (
            f"`{name}`: payload `{model.__name__}`. Names its customer (`customer_id` or `customer`)."
        )
        if name in ORDER_EVENTS:
            description += " Needs `order_id` (or an `order` object)."
        who = [_one_of_present("customer_id", "customer")]
        if name in ORDER_EVENTS:
            who.append(_one_of_present("order_id", "order"))
        schemas[typed_name(name)] = {
            "title": name,
            "description": description,
            "allOf": [
                _ref("EventIn"),
                {
                    "type": "object",
                    "required": required,
                    "properties": {"type": {"const": name}, "data": _ref(model.__name__)},
                },
                *who,
            ],
        }
    schemas["Event"] = {
        "title": "Event",
        "description": "An event of one of the catalogue's types.",
        "oneOf": [_ref(typed_name(n)) for n in EVENT_TYPES],
    }
    schemas["EventBatch"] = {
        "title": "EventBatch",
        "type": "object",
        "additionalProperties": False,
        "required": ["events"],
        "properties": {"events": {"type": "array", "maxItems": 1000, "items": _ref("Event")}},
    }
    return schemas


DESCRIPTION = """\
Posventa's HTTP surface.

* **Events API** (`/v1`, Bearer API key): send what happened in the shop — orders, deliveries,
  returns, tickets, feedback. Each event is applied once per `id`; see `GET /v1/event-types` for every
  type's payload schema.
* **Customer pages** (not listed here): `/s/<token>` survey answers, `/u/<token>` unsubscribe (RFC 8058
  one-click), `/r/<code>` referral links.
* **SendGrid Event Webhook** (`/webhooks/sendgrid`): signed with SendGrid's ECDSA key.
"""


def install(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
                tags=app.openapi_tags,
            )
            schema.setdefault("components", {}).setdefault("schemas", {}).update(event_schemas())
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
