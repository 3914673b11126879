"""Message templates: Jinja2 files, one per template and locale, rendered in a sandbox.

Layout: ``journeys/templates/<locale>/<name>.j2``. Each file defines three blocks — ``subject``,
``text`` and ``html`` — so the parts of one message live (and are reviewed) together. Shared pieces
(``_footer.j2``) can be included. HTML is autoescaped; subject and text are rendered without escaping.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import FileSystemLoader, StrictUndefined, TemplateSyntaxError
from jinja2 import TemplateError as JinjaTemplateError
from jinja2.sandbox import SandboxedEnvironment

from posventa.errors import TemplateError
from posventa.expressions import DataFirst

BLOCKS = ("subject", "text", "html")


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


class _TemplateEnvironment(DataFirst, SandboxedEnvironment):
    pass


class Templates:
    """The template folder of a journeys directory."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self._html = _TemplateEnvironment(
            loader=FileSystemLoader(str(self.root)),
            autoescape=True,
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self._plain = _TemplateEnvironment(
            loader=FileSystemLoader(str(self.root)),
            autoescape=False,
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )

    def path(self, name: str, locale: str) -> Path:
        return self.root / locale / f"{name}.j2"

    def locales_of(self, name: str) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / f"{name}.j2").is_file())

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted({p.stem for p in self.root.glob("*/*.j2") if not p.stem.startswith("_")})

    def digest(self, name: str, locale: str) -> str:
        return hashlib.sha256(self.path(name, locale).read_bytes()).hexdigest()[:16]

    def check(self, name: str, locale: str) -> str | None:
        """Why this template cannot be used, or None: it parses and defines the three blocks."""
        rel = f"{locale}/{name}.j2"
        try:
            tmpl = self._html.get_template(rel)
        except TemplateSyntaxError as exc:
            return f"{rel}:{exc.lineno}: {exc.message}"
        except JinjaTemplateError as exc:
            return f"{rel}: {exc}"
        missing = [b for b in BLOCKS if b not in tmpl.blocks]
        if missing:
            return f"{rel} does not define the block(s) {', '.join(missing)}"
        try:
            self.render(name, locale, sample_context(locale))
        except TemplateError as exc:
            return f"{rel} fails to render with the sample context: {exc.message}"
        return None

    def render(self, name: str, locale: str, context: Mapping[str, Any]) -> Rendered:
        rel = f"{locale}/{name}.j2"
        parts: dict[str, str] = {}
        try:
            for block in BLOCKS:
                env = self._html if block == "html" else self._plain
                tmpl = env.get_template(rel)
                ctx = tmpl.new_context(dict(context))
                parts[block] = "".join(tmpl.blocks[block](ctx)).strip()
        except JinjaTemplateError as exc:
            raise TemplateError(name, locale, str(exc)) from exc
        except KeyError as exc:
            raise TemplateError(name, locale, f"missing block {exc}") from exc
        return Rendered(subject=" ".join(parts["subject"].split()), text=parts["text"], html=parts["html"])


def message_context(
    *,
    customer: Mapping[str, Any],
    order: Mapping[str, Any] | None,
    journey: str,
    step: str,
    links: Mapping[str, Any],
    brand: Mapping[str, Any],
    event: Mapping[str, Any] | None = None,
    variant: str | None = None,
    referral_code: str | None = None,
) -> dict[str, Any]:
    """The one context every template gets. Every key is always present (None when unknown), because
    templates render with StrictUndefined: a typo in a template is an error, not a blank."""
    name = customer.get("name") or ""
    cust = {
        "id": customer.get("id"),
        "name": name,
        "first_name": name.split(" ")[0] if name else "",
        "email": customer.get("email"),
        "locale": customer.get("locale"),
        "timezone": customer.get("timezone"),
        "attributes": dict(customer.get("attributes") or {}),
    }
    o = dict(order or {})
    order_ctx = {
        k: o.get(k)
        for k in (
            "id",
            "total",
            "currency",
            "channel",
            "promised_delivery_date",
            "delivered_at",
            "tracking_url",
            "days_late",
            "referral_code",
            "warranty_expires_on",
            "runs_out_on",
            "placed_at",
        )
    }
    order_ctx["items"] = [
        {
            "sku": i.get("sku"),
            "name": i.get("name") or i.get("sku"),
            "quantity": i.get("quantity", 1),
            "price": i.get("price"),
        }
        for i in (o.get("items") or [])
        if isinstance(i, Mapping)
    ]
    ev = dict(event or {})
    return {
        "customer": cust,
        "order": order_ctx,
        "event": {"type": ev.get("type"), "data": dict(ev.get("data") or {})},
        "journey": {"id": journey, "step": step, "variant": variant},
        "links": {
            "survey": links.get("survey") or [None] * 11,  # may be lazy: links are signed when read
            "unsubscribe": links.get("unsubscribe"),
            "referral": links.get("referral"),
            "tracking": links.get("tracking") or o.get("tracking_url"),
            "support": links.get("support"),
            "review": links.get("review"),
            "shop": links.get("shop"),
        },
        "referral_code": referral_code,
        "brand": {
            "name": brand.get("name", "Posventa"),
            "url": brand.get("url"),
            "support_email": brand.get("support_email"),
        },
    }


def sample_context(locale: str = "es") -> dict[str, Any]:
    """A realistic context used to test-render templates during validation and in the simulator."""
    base = "https://tienda.example"
    return message_context(
        customer={
            "id": "c-1",
            "name": "Ana Pérez" if locale == "es" else "Ann Parker",
            "email": "ana@example.com",
            "locale": locale,
            "timezone": "Europe/Madrid",
        },
        order={
            "id": "A-1001",
            "total": 59.9,
            "currency": "EUR",
            "channel": "web",
            "promised_delivery_date": "2026-11-05",
            "delivered_at": "2026-11-06T12:00:00+00:00",
            "tracking_url": f"{base}/track/A-1001",
            "days_late": 1,
            "placed_at": "2026-11-01",
            "warranty_expires_on": "2028-11-06",
            "runs_out_on": "2026-12-06",
            "items": [
                {"sku": "CEP-01", "name": "Cepillo de dientes eléctrico", "quantity": 1, "price": 59.9}
            ],
        },
        journey="post_purchase",
        step="sample",
        links={
            "survey": [f"{base}/s/tok{i}" for i in range(11)],
            "unsubscribe": f"{base}/u/tok",
            "referral": f"{base}/r/ANA10",
            "support": f"{base}/soporte",
            "review": f"{base}/opinion",
            "shop": base,
        },
        brand={"name": "Tienda Ejemplo", "url": base, "support_email": "ayuda@tienda.example"},
        event={"type": "return.requested", "data": {"rma_id": "RMA-77", "reason": "talla", "sku": "CEP-01"}},
        referral_code="ANA10",
    )
