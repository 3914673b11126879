"""Seeing a journey's email as a customer gets it (``posventa preview``), and sending it to yourself
(``posventa send-test``).

A preview goes through the renderer delivery uses (:class:`app.render.Renderer`): the same template in
the same locale, the same context, links signed with the installation's key. It renders the *draft* (the
journey file as it is now), so a marketer sees an edit before publishing it. Two sources:

* ``sample`` — a realistic built-in customer and order (several items, delivered, with warranty and
  run-out dates), and the event the step would have seen (a survey answer after an NPS wait…); needs no
  database;
* ``customer`` — a customer from the database: their order and, when they are in the journey, the event
  and split variant their enrollment holds, and the ledger key the message would carry. Nothing is
  written (the look happens in a transaction that is rolled back).

The links are real: a survey button in a preview of a real customer answers for them when clicked.

A test send is a preview sent through the configured sender to an allowed address: marked as a test (a
``[TEST]``/``[PRUEBA]`` subject, the ``posventa_test`` custom arg, ``test:`` categories), never a ledger
row, and rate-limited by the ``test_sends`` rows (so separate invocations count).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any, cast

from app.ports import Outcome, OutgoingEmail, Sender, SendResult, Store, Tx, mask_email
from app.records import Fact, LedgerWork, ledger_key
from app.render import Renderer
from posventa.errors import PosventaError
from posventa.facts import derive_order, order_items
from posventa.plan import JourneyPlan, SendStep, SplitStep, WaitForStep

#: How long the test-send rate limit looks back.
TEST_WINDOW = timedelta(hours=1)
TEST_PREFIX = {"es": "[PRUEBA] ", "en": "[TEST] "}
#: The custom arg (SendGrid echoes it in every webhook event; the outbox writes it as a header).
TEST_ARG = "posventa_test"


@dataclass(frozen=True)
class Previewed:
    journey: str
    step: str
    locale: str
    source: str  # sample | customer
    customer_id: str
    order_id: str | None
    draft_version: str
    message: OutgoingEmail


# --- the sample customer ---------------------------------------------------------------------------------
def sample_customer(locale: str) -> Fact:
    es = locale == "es"
    return {
        "id": "sample-1",
        "email": "ana.perez@example.com" if es else "ann.parker@example.com",
        "name": "Ana Pérez" if es else "Ann Parker",
        "locale": locale,
        "timezone": "Europe/Madrid" if es else "Europe/London",
        "consent_email": True,
        "birthday": "1990-05-14",
        "attributes": {"vip": False},
    }


def _delivered_by(plan: JourneyPlan, step: str) -> bool:
    """Whether the order has arrived when ``step`` runs: after a wait for the delivery, or in a journey
    that does not start at the order."""
    if plan.trigger.event not in (None, "order.placed"):
        return True
    if plan.trigger.date or plan.trigger.segment:
        return True
    before = plan.order[: plan.order.index(step)]
    return any(
        isinstance(spec, WaitForStep) and spec.event == "order.delivered"
        for spec in (plan.steps[s] for s in before)
    )


#: The sample order's carrier tracking page when no POSVENTA_SHOP_URL is set: a shop's own page, as an
#: ``order.shipped`` event would carry — never Posventa's server, which has no tracking page.
SAMPLE_SHOP = "https://tienda.example"


def sample_order(plan: JourneyPlan, step: str, now: datetime, shop_url: str | None = None) -> Fact:
    """A realistic order for ``step``: on its way at a thank-you, delivered later on; for a journey that
    starts on an order date (warranty expiry, run-out date), dated so that the date falls due today. Its
    tracking link is a shop's tracking page with a carrier's parcel number."""
    shop = (shop_url or SAMPLE_SHOP).rstrip("/")
    day = now.date()
    order: Fact = {
        "id": "A-1042",
        "customer_id": "sample-1",
        "status": "placed",
        "placed_at": now.isoformat(),
        "promised_delivery_date": (day + timedelta(days=4)).isoformat(),
        "delivered_at": None,
        "total": 107.4,
        "currency": "EUR",
        "channel": "web",
        "tracking_url": f"{shop}/pedidos/A-1042/seguimiento?envio=PK43BG0012345678Z",
        "referral_code": None,
        "attributes": {},
        "items": [
            {
                "sku": "CEP-01",
                "name": "Cepillo eléctrico Sonic",
                "quantity": 1,
                "price": 59.9,
                "warranty_months": 24,
            },
            {
                "sku": "REC-04",
                "name": "Recambios (4 cabezales)",
                "quantity": 2,
                "price": 14.9,
                "consumable": True,
                "runs_out_in_days": 90,
            },
            {"sku": "EST-02", "name": "Estuche de viaje", "quantity": 1, "price": 17.7},
        ],
    }
    if not _delivered_by(plan, step):
        return order
    shift = timedelta(days=9)
    field = str(plan.trigger.date or "")
    if field.startswith(("order.", "item.")):
        delivered = {**order, "delivered_at": (now - timedelta(days=4)).isoformat()}
        name = field.split(".", 1)[1]
        derived = (
            derive_order(delivered) or {}
            if field.startswith("order.")
            else next((i for i in order_items(delivered) if i.get(name)), {})
        )
        due = derived.get(name)
        if due:
            offset = timedelta(seconds=plan.trigger.offset_s or 0)
            shift += date.fromisoformat(str(due)[:10]) + offset - day
    placed = now - shift
    order.update(
        status="delivered",
        placed_at=placed.isoformat(),
        promised_delivery_date=(placed + timedelta(days=4)).date().isoformat(),
        delivered_at=(placed + timedelta(days=5)).isoformat(),
    )
    return order


def sample_event(plan: JourneyPlan, step: str, now: datetime) -> dict[str, Any]:
    """The event an enrollment holds at ``step``: what the last ``wait_for`` before it received, else
    the trigger's event; its data carries every field a shipped template reads."""
    kind = plan.trigger.event or "order.placed"
    for sid in plan.order[: plan.order.index(step)]:
        spec = plan.steps[sid]
        if isinstance(spec, WaitForStep):
            kind = spec.event
    return {
        "id": "sample-event",
        "type": kind,
        "order_id": "A-1042",
        "occurred_at": (now - timedelta(hours=2)).isoformat(),
        "data": {
            "score": 9,
            "survey": "nps",
            "comment": "Todo bien, aunque la caja llegó algo dañada.",
            "rma_id": "RMA-2077",
            "reason": "size",
            "sku": "CEP-01",
        },
    }


def sample_item(plan: JourneyPlan, order: Fact | None) -> dict[str, Any] | None:
    """The order item a journey started per item (``date: item.*``) is about: the first with that date."""
    field = str(plan.trigger.date or "")
    if not field.startswith("item."):
        return None
    name = field.removeprefix("item.")
    return next((i for i in order_items(order) if i.get(name)), None)


def _variant(plan: JourneyPlan, step: str) -> str | None:
    for spec in plan.steps.values():
        if isinstance(spec, SplitStep):
            for v in spec.variants:
                if v.goto == step:
                    return v.name
    return None


class _Referrals:
    def code_for(self, customer_id: str, journey_id: str | None) -> str:
        return "ANA10PV"


class _SampleTx:
    """What rendering needs from a transaction for the sample customer: a referral code (none stored)."""

    referrals = _Referrals()


# --- previews --------------------------------------------------------------------------------------------
class Preview:
    """Previews of the drafts ``plans`` through ``renderer``; ``store`` for real customers (None: the
    sample only)."""

    def __init__(self, renderer: Renderer, plans: Mapping[str, JourneyPlan], store: Store | None) -> None:
        self.renderer = renderer
        self.plans = plans
        self.store = store

    def send_step(self, journey: str, step: str) -> tuple[JourneyPlan, SendStep]:
        plan = self.plans.get(journey)
        if plan is None:
            raise PosventaError(f"no journey '{journey}' (journeys: {', '.join(sorted(self.plans))})")
        spec = plan.steps.get(step)
        if not isinstance(spec, SendStep):
            sends = [s for s in plan.order if isinstance(plan.steps[s], SendStep)]
            what = "is not a send step" if spec is not None else "does not exist"
            raise PosventaError(f"step '{step}' of '{journey}' {what} (send steps: {', '.join(sends)})")
        return plan, spec

    @staticmethod
    def _locale(plan: JourneyPlan, wanted: str | None, customer: Fact | None) -> str:
        locales = list(plan.policy.locales)
        if wanted is not None:
            if wanted not in locales:
                raise PosventaError(f"journey '{plan.id}' is written in {', '.join(locales)}, not '{wanted}'")
            return wanted
        own = (customer or {}).get("locale")
        return str(own) if own in locales else plan.policy.default_locale

    def _render(
        self,
        tx: Tx,
        plan: JourneyPlan,
        step: str,
        key: str,
        customer: Fact,
        order: Fact | None,
        locale: str,
        payload: Mapping[str, Any],
        now: datetime,
    ) -> OutgoingEmail:
        spec = plan.steps[step]
        assert isinstance(spec, SendStep)
        work = LedgerWork(
            key,
            plan.id,
            step,
            "message",
            customer["id"],
            spec.template,
            spec.category,
            {
                "locale": locale,
                "order_id": order["id"] if order else None,
                "sendgrid_template_id": spec.sendgrid_template_id,
                **payload,
            },
        )
        return self.renderer.render(tx, work, customer, order, locale, now)

    def sample(self, journey: str, step: str, now: datetime, locale: str | None = None) -> Previewed:
        """The step's email for the built-in sample customer (no database)."""
        plan, _ = self.send_step(journey, step)
        loc = self._locale(plan, locale, None)
        customer = sample_customer(loc)
        order = sample_order(plan, step, now, self.renderer.config.shop_url)
        event = sample_event(plan, step, now)
        payload = {
            "event": event,
            "trigger_event": event,
            "variant": _variant(plan, step),
            "item": sample_item(plan, order),
        }
        key = f"preview:{journey}:{step}:0"
        tx = cast(Tx, _SampleTx())
        message = self._render(tx, plan, step, key, customer, order, loc, payload, now)
        return Previewed(journey, step, loc, "sample", customer["id"], order["id"], plan.version, message)

    def customer(
        self, journey: str, step: str, customer_id: str, now: datetime, locale: str | None = None
    ) -> Previewed:
        """The step's email for a customer in the database, with their order and enrollment."""
        if self.store is None:
            raise PosventaError("a customer preview needs the database")
        plan, _ = self.send_step(journey, step)
        with self.store.read() as tx:  # rolled back: a referral code made for the preview is not kept
            customer = tx.customers.fact(customer_id)
            if customer is None:
                raise PosventaError(f"no customer '{customer_id}'")
            enrollments = tx.enrollments.for_customer(customer_id)
            mine = [e for e in enrollments if e.journey_id == journey]
            enrollment = mine[-1] if mine else None
            order_ids = [e.order_id for e in reversed(enrollments) if e.order_id]
            order_id = (
                enrollment.order_id if enrollment and enrollment.order_id else next(iter(order_ids), None)
            )
            order = tx.orders.fact(order_id) if order_id else None
            if enrollment is not None:
                visits = enrollment.state.get("visits") or {}
                key = ledger_key(enrollment.id, f"{step}:{int(visits.get(step, 0))}")
                payload = {"event": enrollment.state.get("event"), "variant": enrollment.state.get("variant")}
            else:
                key, payload = f"preview:{journey}:{step}:0", {"event": None, "variant": _variant(plan, step)}
            loc = self._locale(plan, locale, customer)
            message = self._render(tx, plan, step, key, customer, order, loc, payload, now)
        return Previewed(journey, step, loc, "customer", customer_id, order_id, plan.version, message)


# --- test sends ------------------------------------------------------------------------------------------
def allowed(address: str, allow_list: str) -> bool:
    """Whether ``address`` is on the allow-list: comma-separated addresses or ``@domain`` entries."""
    addr = address.strip().lower()
    for entry in (e.strip().lower() for e in allow_list.split(",")):
        if not entry:
            continue
        if entry.startswith("@") and addr.endswith(entry) and addr.count("@") == 1:
            return True
        if addr == entry:
            return True
    return False


@dataclass(frozen=True)
class SentTest:
    previewed: Previewed
    message: OutgoingEmail
    result: SendResult
    used: int  # test sends in the last hour, this one included
    limit: int


def send_test(
    previewed: Previewed,
    to: str,
    sender: Sender,
    store: Store,
    *,
    allow_list: str,
    limit: int,
    now: datetime,
) -> SentTest:
    """Send ``previewed`` to ``to`` as a test: refused unless ``to`` is allowed and fewer than ``limit``
    test messages left in the last hour. Never a ledger row."""
    if not allow_list.strip():
        raise PosventaError(
            "no test recipients are allowed: set POSVENTA_TEST_RECIPIENTS (addresses or @domain)"
        )
    if not allowed(to, allow_list):
        raise PosventaError(f"{mask_email(to)} is not in POSVENTA_TEST_RECIPIENTS: test sends go only there")
    with store.begin() as tx:
        recent = tx.test_sends.since(now - TEST_WINDOW)
        if len(recent) >= limit:
            again = recent[len(recent) - limit] + TEST_WINDOW
            raise PosventaError(
                f"{limit} test messages in the last hour already (POSVENTA_TEST_SEND_LIMIT): "
                f"the next one can go at {again:%H:%M} UTC"
            )
        # Counted before the call: a send that fails still used the provider.
        row = tx.test_sends.record(previewed.journey, previewed.step, to, "sending", None, now)
    m = previewed.message
    message = replace(
        m,
        ledger_key=f"test:{previewed.journey}:{previewed.step}:{uuid.uuid4().hex[:12]}",
        to_email=to.strip(),
        to_name=None,
        subject=TEST_PREFIX.get(previewed.locale, "[TEST] ") + m.subject if m.subject else m.subject,
        journey=f"test:{m.journey}",
        extra_custom_args={**dict(m.extra_custom_args), TEST_ARG: "true"},
    )
    [result] = sender.send([message])
    with store.begin() as tx:
        tx.test_sends.finish(row, str(result.outcome), result.error or result.provider_message_id)
    return SentTest(previewed, message, result, len(recent) + 1, limit)


def succeeded(sent: SentTest) -> bool:
    return sent.result.outcome == Outcome.SENT
