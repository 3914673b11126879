"""Every template of every shipped journey, rendered as production renders it (``app.render.Renderer``:
the customer's locale, signed links, the shop's URLs) for real-looking orders — several items, an in-store
order, an order without dates, one item with a plural name — in Spanish and English, with and without a
shop URL. Each message is checked for the defects customers noticed:

* grammar: a product name after a possessive or article ("tu Auriculares inalámbricos", "your Wireless
  headphones"), or a product name capitalised mid-sentence (names are quoted like titles: «…», “…”);
* links: to Posventa's own root (it answers 404), empty, or not to the shop when a shop URL is set;
* raw codes: return reasons printed as codes («other», "size");
* leftovers: ``{{``, ``{%``, ``None``, a space before punctuation;
* per-item facts: the warranty and replenishment emails name the item whose date it is, never another;
* the store order gets no delivery promise and no "we're preparing it".
"""

from __future__ import annotations

import html as htmllib
import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from uc_builders import ROOT, TEMPLATES

from app.config import Config
from app.links import Links
from app.ports import OutgoingEmail, Tx
from app.preview import _SampleTx, sample_event
from app.records import LedgerWork
from app.render import Renderer
from posventa.compile import load_plans
from posventa.facts import order_items
from posventa.plan import JourneyPlan, RepeatStep, SendStep
from posventa.templates import Templates

NOW = datetime(2027, 3, 2, 9, 0, tzinfo=UTC)
BASE = (
    "https://pv.example"  # Posventa's server (POSVENTA_PUBLIC_BASE_URL): links there are /s/, /u/, /r/ only
)
SHOP = "https://tienda.example"
HREF = re.compile(r'href="([^"]*)"')
URL = re.compile(r"https?://[^\s\"'<>)]+")

ITEMS = {
    "headphones": {
        "sku": "AUR-1",
        "name": "Auriculares inalámbricos",  # plural: "tu Auriculares" was the defect
        "quantity": 1,
        "price": 89.0,
        "category": "electronics",
        "warranty_months": 24,
        "runs_out_in_days": 0,  # shops send 0 for "not applicable"
    },
    "heads": {
        "sku": "REC-4",
        "name": "Recambios (4 cabezales)",
        "quantity": 2,
        "price": 14.9,
        "category": "personal_care",
        "consumable": True,
        "runs_out_in_days": 90,
        "warranty_months": 0,
    },
    "brush": {
        "sku": "CEP-1",
        "name": "Cepillo eléctrico Sonic",
        "quantity": 1,
        "price": 59.9,
        "warranty_months": 6,
    },
    "sunglasses": {
        "sku": "GAF-2",
        "name": "Gafas de sol polarizadas",
        "quantity": 1,
        "price": 120.0,
        "warranty_months": 12,
    },
    "jam": {
        "sku": "MER-3",
        "name": "Mermelada de fresa",
        "quantity": 3,
        "price": 4.5,
        "category": "food",
        "runs_out_in_days": 30,
    },
}

ORDERS: dict[str, dict[str, Any]] = {
    "several_items": {
        "id": "W-2001",
        "channel": "web",
        "placed_at": "2026-09-01T10:00:00+00:00",
        "promised_delivery_date": "2026-09-04",
        "delivered_at": "2026-09-05T12:00:00+00:00",
        "total": 178.7,
        "currency": "EUR",
        "tracking_url": "https://carrier.example/t/W-2001",
        "items": [ITEMS["headphones"], ITEMS["heads"], ITEMS["brush"]],
    },
    "store": {  # bought at the counter: no promised date, no delivery event
        "id": "S-3001",
        "channel": "store",
        "placed_at": "2026-10-10T17:30:00+00:00",
        "total": 120.0,
        "currency": "EUR",
        "items": [ITEMS["sunglasses"]],
    },
    "no_dates": {  # an integration that sends nothing but the lines
        "id": "N-4001",
        "items": [ITEMS["jam"], ITEMS["headphones"]],
    },
}

REASONS = ["other", "size", "defect", "La caja llegó abierta", None]
RAW_CODES = ("other", "size", "defect", "changed_mind", "wrong_item", "damaged")


def _plans() -> dict[str, JourneyPlan]:
    return load_plans(ROOT / "journeys")


def _renderer(shop: str | None) -> Renderer:
    config = Config(
        secret_key="s" * 40,
        public_base_url=BASE,
        email_from="hola@tienda.example",
        email_from_name="Tienda Olivo",
        shop_url=shop,
    )
    return Renderer(config, Templates(TEMPLATES), Links(config))


def _visits(plan: JourneyPlan, step: str) -> list[int]:
    """Which visits of ``step`` a customer can get: 1…times inside a repeat block, else 1."""
    for sid, spec in plan.steps.items():
        if (
            isinstance(spec, RepeatStep)
            and step in plan.order[plan.order.index(spec.from_) : plan.order.index(sid)]
        ):
            return list(range(1, spec.times + 1))
    return [1]


def _items_for(plan: JourneyPlan, order: Mapping[str, Any]) -> list[dict[str, Any] | None]:
    """The items a per-item journey enrolls this order for (none: it never enrolls), or [None]."""
    field = str(plan.trigger.date or "")
    if not field.startswith("item."):
        return [None]
    dated = {**order, "placed_at": order.get("placed_at") or "2026-09-01T10:00:00+00:00"}
    return [i for i in order_items(dated) if i.get(field.removeprefix("item."))]


def _cases() -> Iterator[tuple[str, str, str, str]]:
    for plan in _plans().values():
        for sid in plan.order:
            spec = plan.steps[sid]
            if isinstance(spec, SendStep) and not spec.sendgrid_template_id:
                for locale in plan.policy.locales:
                    for name, order in ORDERS.items():
                        if _items_for(plan, order):  # else this order never enters this per-item journey
                            yield plan.id, sid, locale, name


def _render(
    plan: JourneyPlan, step: str, lang: str, order: dict[str, Any], shop: str | None, **payload: Any
) -> OutgoingEmail:
    spec = cast(SendStep, plan.steps[step])
    customer = {"id": "c-9", "email": "ana@example.com", "name": "Ana Pérez", "locale": lang}
    work = LedgerWork(f"e-1:{step}:0", plan.id, step, "message", "c-9", spec.template, spec.category, payload)
    return _renderer(shop).render(cast(Tx, _SampleTx()), work, customer, order, lang, NOW)


def _plain(html: str) -> str:
    """The HTML's words: block tags become spaces, inline ones (strong, a) vanish."""
    blocks = re.sub(r"</?(p|td|tr|li|ol|ul|table|div|h1|br|title|head|body|html|meta)\b[^>]*>", " ", html)
    return htmllib.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", blocks)))


def _around(pattern: str, body: str) -> str | None:
    """The text around the first match of ``pattern``, or None."""
    m = re.search(pattern, body)
    return None if m is None else body[max(0, m.start() - 30) : m.end() + 20]


def defects(msg: OutgoingEmail, order: Mapping[str, Any], shop: str | None) -> list[str]:
    found: list[str] = []
    parts = {"subject": msg.subject, "text": msg.text, "html": _plain(msg.html)}
    for part, body in parts.items():
        for bad in ("{{", "}}", "{%", "%}", "None", "Undefined"):
            if bad in body:
                found.append(f"{part}: leftover {bad!r}")
        if spaced := _around(r"[^\S\n][.,;:](?!\d)", body):
            found.append(f"{part}: space before punctuation: {spaced}")
        if possessive := _around(r"\b(tu|tus|su|sus|your|its)\s+[A-ZÁÉÍÓÚÑ]", body):
            found.append(f"{part}: a capitalised name after a possessive: {possessive}")
        for item in order.get("items") or []:
            name = item["name"]
            for m in re.finditer(re.escape(name), body):
                before = body[max(0, m.start() - 2) : m.start()]
                if not (before.endswith(("«", "“")) or before == "× "):
                    found.append(
                        f"{part}: {name!r} unquoted mid-sentence: …{body[max(0, m.start() - 30) : m.end()]}"
                    )
        for code in RAW_CODES:
            if re.search(rf"[«“\"]{code}[»”\"]", body):
                found.append(f"{part}: raw reason code {code!r}")
    hrefs = HREF.findall(msg.html)
    urls = hrefs + URL.findall(msg.text)
    for url in urls:
        if url.strip() in ("", "#") or url.rstrip("/") == BASE or url.rstrip("/").startswith(f"{BASE}?"):
            found.append(f"link to nowhere: {url!r}")
        elif url.startswith(BASE) and not url.startswith((f"{BASE}/s/", f"{BASE}/u/", f"{BASE}/r/")):
            found.append(f"link to Posventa's server that no page answers: {url!r}")
    if shop:
        brand = re.search(r'<a href="([^"]+)"[^>]*>Tienda Olivo</a>', msg.html)
        if brand is None or brand.group(1) != shop:
            found.append(f"brand link is not the shop: {brand.group(1) if brand else None!r}")
    elif any(u.startswith(SHOP) for u in urls):
        found.append("a shop link without a shop URL")
    return found


@pytest.mark.parametrize(("journey", "step", "locale", "order_name"), sorted(set(_cases())))
@pytest.mark.parametrize("shop", [SHOP, None], ids=["shop", "no-shop"])
def test_every_template_reads_right(
    journey: str, step: str, locale: str, order_name: str, shop: str | None
) -> None:
    plan = _plans()[journey]
    order = ORDERS[order_name]
    items = _items_for(plan, order)
    problems: list[str] = []
    for item in items:
        for visit in _visits(plan, step):
            for reason in REASONS if journey == "returns" else [None]:
                event = sample_event(plan, step, NOW)
                event["order_id"] = order["id"]
                event["data"] = {**event["data"], "reason": reason, "sku": order["items"][0]["sku"]}
                trigger = {
                    **event,
                    "type": plan.trigger.event,
                    "data": {**event["data"], "rma_id": "RMA-555"},
                }
                if step == "rma_instructions":
                    event = trigger
                msg = _render(
                    plan,
                    step,
                    locale,
                    order,
                    shop,
                    locale=locale,
                    event=event,
                    trigger_event=trigger,
                    item=item,
                    visit=visit,
                    visits={step: visit},
                )
                where = f"{order_name}/item={item and item['sku']}/visit={visit}/reason={reason}"
                problems += [f"{where}: {p}" for p in defects(msg, order, shop)]
                problems += [f"{where}: {p}" for p in _facts(plan, step, msg, order, item)]
    assert not problems, "\n".join(problems)


def _facts(
    plan: JourneyPlan, step: str, msg: OutgoingEmail, order: Mapping[str, Any], item: Mapping[str, Any] | None
) -> list[str]:
    """What the email must say about this order: its own item, its RMA, no delivery promise in store."""
    out: list[str] = []
    text = msg.subject + "\n" + msg.text
    if item is not None:
        if item["name"] not in text:
            out.append(f"does not name the item whose date it is ({item['name']})")
        others = [i["name"] for i in order["items"] if i["sku"] != item["sku"]]
        out += [f"names another item: {n}" for n in others if n in text]
    if plan.id == "returns" and step in ("rma_instructions", "return_reminder") and "RMA-555" not in text:
        out.append("does not give the request's RMA number")
    if order.get("channel") == "store" and step == "thank_you":
        for promise in (
            "preparando",
            "getting it ready",
            "Te llegará",
            "reach you by",
            "cómo va tu pedido",
            "where your order is",
        ):
            if promise in text:
                out.append(f"an in-store purchase is told {promise!r}")
    return out


@pytest.mark.parametrize("locale", ["es", "en"])
def test_the_content_series_is_three_different_emails(locale: str) -> None:
    plan = _plans()["post_purchase"]
    order = ORDERS["several_items"]
    event = sample_event(plan, "content_tip", NOW)
    subjects, texts = set(), set()
    for visit in (1, 2, 3):
        msg = _render(
            plan, "content_tip", locale, order, SHOP, event=event, item=None, visit=visit, visits={}
        )
        subjects.add(msg.subject)
        texts.add(msg.text)
    assert len(subjects) == 3 and len(texts) == 3


@pytest.mark.parametrize("locale", ["es", "en"])
def test_the_review_request_links_each_product_to_its_review_page(locale: str) -> None:
    """``POSVENTA_REVIEW_URL`` with ``{sku}``: one review link per product of the order, signed nowhere."""
    plan = _plans()["post_purchase"]
    order = ORDERS["several_items"]
    config = Config(
        secret_key="s" * 40,
        public_base_url=BASE,
        email_from_name="Tienda Olivo",
        shop_url=SHOP,
        review_url=f"{SHOP}/p/{{sku}}/opinar?pedido={{order_id}}",
    )
    renderer = Renderer(config, Templates(TEMPLATES), Links(config))
    spec = cast(SendStep, plan.steps["review_request"])
    payload = {"event": {"type": "feedback.submitted", "data": {"score": 10}}, "locale": locale}
    work = LedgerWork(
        "e-1:review_request:0",
        plan.id,
        "review_request",
        "message",
        "c-9",
        spec.template,
        spec.category,
        payload,
    )
    customer = {"id": "c-9", "email": "ana@example.com", "name": "Ana Pérez", "locale": locale}
    msg = renderer.render(cast(Tx, _SampleTx()), work, customer, order, locale, NOW)
    for item in order["items"]:
        link = f"{SHOP}/p/{item['sku']}/opinar?pedido=W-2001"
        assert f'href="{link.replace("&", "&amp;")}"' in msg.html and link in msg.text
    assert "10" in msg.text and not defects(msg, order, SHOP)
