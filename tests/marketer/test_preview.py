"""Previews and test sends: every template in every locale renders for the sample customer with its
links signed; a real customer's preview carries the key the message would; a test send goes through the
real sender (the file outbox, SendGrid's client against the loopback fake), marked, allow-listed,
rate-limited across invocations, never a ledger row."""

from __future__ import annotations

import re
from datetime import timedelta
from email import message_from_bytes
from email.policy import default
from functools import lru_cache
from pathlib import Path

import pytest
from mk_builders import ROOT, T0, enrollment, placed, rows, services, settings_for

from app.config import Config
from app.links import Links, verify_survey, verify_unsubscribe
from app.preview import Preview, allowed, send_test
from app.render import Renderer
from app.services import Services
from infra.db import models as m
from infra.db.session import make_engine, session_factory
from infra.db.store import SqlStore
from infra.email.fake_sendgrid import FakeSendGrid
from infra.email.outbox import FileOutboxSender
from infra.email.sendgrid_sender import SendGridSender
from posventa.compile import load_plans
from posventa.errors import PosventaError
from posventa.plan import SendStep
from posventa.templates import Templates

SECRET = "k" * 40
BASE = "https://pv.example"
TEMPLATES = ROOT / "journeys" / "templates"
HREF = re.compile(r'href="([^"]+)"')


@lru_cache(maxsize=1)
def _previewer() -> Preview:
    """The sample previews of the shipped journeys (no database)."""
    config = Config(secret_key=SECRET, public_base_url=BASE, email_from="hola@tienda.example")
    return Preview(Renderer(config, Templates(TEMPLATES), Links(config)), load_plans(ROOT / "journeys"), None)


def _cases() -> list[tuple[str, str, str]]:
    plans = load_plans(ROOT / "journeys")
    return [
        (p.id, sid, loc)
        for p in plans.values()
        for sid in p.order
        if isinstance(p.steps[sid], SendStep) and not getattr(p.steps[sid], "sendgrid_template_id", None)
        for loc in p.policy.locales
    ]


@pytest.mark.parametrize(("journey", "step", "locale"), _cases())
def test_every_template_renders_for_the_sample_customer(journey: str, step: str, locale: str) -> None:
    p = _previewer().sample(journey, step, T0, locale)  # StrictUndefined: an unknown name raises
    msg = p.message
    assert (p.source, msg.locale, msg.ledger_key) == ("sample", locale, f"preview:{journey}:{step}:0")
    assert msg.subject.strip() and "None" not in msg.subject and "\n" not in msg.subject
    assert msg.text.strip() and msg.html.lstrip().lower().startswith("<!doctype html")
    hrefs = HREF.findall(msg.html)
    assert hrefs, "no link in the HTML"
    assert all(h.startswith(("https://", "http://", "mailto:")) for h in hrefs), hrefs
    assert "None" not in " ".join(hrefs)
    for h in hrefs:
        if h.startswith(f"{BASE}/s/"):
            link = verify_survey(h.removeprefix(f"{BASE}/s/"), SECRET, T0)
            assert (link.ledger_key, link.customer_id, link.journey) == (msg.ledger_key, "sample-1", journey)
    if msg.promotional:
        assert msg.unsubscribe_url and verify_unsubscribe(msg.unsubscribe_url.split("/u/")[1], SECRET, T0)
    if step == "nps_survey":
        assert len({h for h in hrefs if h.startswith(f"{BASE}/s/")}) == 11


def test_the_cases_cover_every_template_in_every_locale() -> None:
    plans = load_plans(ROOT / "journeys")
    covered = {(getattr(plans[j].steps[s], "template", None), loc) for j, s, loc in _cases()}
    shipped = {(f.stem, f.parent.name) for f in TEMPLATES.glob("*/*.j2") if not f.name.startswith("_")}
    assert covered == shipped


def test_sample_order_fits_the_step() -> None:
    pv = _previewer()
    assert "Te llegará a más tardar" in pv.sample("post_purchase", "thank_you", T0, "es").message.text
    survey = pv.sample("post_purchase", "referral_ask", T0, "en").message
    assert "9" in survey.subject  # the answer the NPS wait received
    warranty = pv.sample("warranty", "warranty_notice", T0, "en").message
    assert "April 2026" in warranty.subject  # the date trigger falls due today: 30 days before expiry


def test_sample_prices_read_the_locales_way_and_tracking_goes_to_the_shop() -> None:
    """Prices as the customer's language writes them, not raw floats or ``59,90 EUR``; the tracking link
    is a shop's tracking page (POSVENTA_SHOP_URL when set), never Posventa's own server."""
    es = _previewer().sample("post_purchase", "thank_you", T0, "es").message
    assert "- 1 × Cepillo eléctrico Sonic (59,90 €)" in es.text and "Total: 107,40 €" in es.text
    assert "107,40 €" in es.html and "EUR" not in es.text
    en = _previewer().sample("post_purchase", "thank_you", T0, "en").message
    assert "(€59.90)" in en.text and "Total: €107.40" in en.text
    tracking = "https://tienda.example/pedidos/A-1042/seguimiento?envio=PK43BG0012345678Z"
    assert tracking in es.text and f"{BASE}/track" not in es.text
    config = Config(
        secret_key=SECRET, public_base_url=BASE, email_from="h@t.example", shop_url="https://olivo.example/"
    )
    pv = Preview(Renderer(config, Templates(TEMPLATES), Links(config)), load_plans(ROOT / "journeys"), None)
    assert (
        "https://olivo.example/pedidos/A-1042/seguimiento"
        in pv.sample("post_purchase", "thank_you", T0).message.text
    )


def test_money_follows_the_locale() -> None:
    from posventa.money import money

    assert (money(1234.5, "EUR", "es"), money(1234.5, "EUR", "en")) == ("1.234,50 €", "€1,234.50")
    assert (money(10, "MXN", "es"), money(10, "MXN", "en"), money(3, None, "en")) == (
        "10,00 MXN",
        "MXN 10.00",
        "3.00",
    )


def test_unknown_steps_and_locales_are_clear_errors() -> None:
    pv = _previewer()
    with pytest.raises(PosventaError, match="send steps: thank_you, late_apology"):
        pv.sample("post_purchase", "by_score", T0)
    with pytest.raises(PosventaError, match="no journey 'nope'"):
        pv.sample("nope", "x", T0)
    with pytest.raises(PosventaError, match="does not exist"):
        pv.sample("post_purchase", "thanks", T0)


@pytest.fixture
def svc(sqlite_url: str, tmp_path: Path) -> Services:
    return services(settings_for(sqlite_url, tmp_path))


def test_a_customer_preview_is_the_message_they_would_get(svc: Services) -> None:
    svc.ingest.apply([placed("c1", locale="en")], "api", T0)
    pv = svc.preview()  # what the admin page calls
    p = pv.customer("post_purchase", "referral_ask_incentive", "c1", T0)
    e = enrollment(svc, "c1")
    assert (p.locale, p.order_id, p.message.ledger_key) == ("en", "o-c1", f"{e.id}:referral_ask_incentive:0")
    assert "/r/" in p.message.html  # a referral code was made for the look…
    assert rows(svc, m.ReferralCode) == []  # …and not kept
    assert pv.customer("post_purchase", "thank_you", "c1", T0, "es").locale == "es"
    with pytest.raises(PosventaError, match="no customer 'c9'"):
        pv.customer("post_purchase", "thank_you", "c9", T0)


def test_allow_list() -> None:
    allow = " ana@tienda.example , @qa.tienda.example"
    assert allowed("Ana@Tienda.example", allow) and allowed("x@qa.tienda.example", allow)
    assert not allowed("x@tienda.example", allow) and not allowed("a@b@qa.tienda.example", allow)
    assert not allowed("x@evilqa.tienda.example", "@qa.tienda.example")


def test_send_test_through_the_outbox_is_marked_limited_and_not_in_the_ledger(
    svc: Services, sqlite_url: str, tmp_path: Path
) -> None:
    p = _previewer().sample("post_purchase", "content_tip", T0, "es")
    outbox = FileOutboxSender(tmp_path / "tests-outbox", from_email="hola@tienda.example")
    allow = "@tienda.example"
    with pytest.raises(PosventaError, match="POSVENTA_TEST_RECIPIENTS"):
        send_test(p, "ana@gmail.example", outbox, svc.store, allow_list=allow, limit=2, now=T0)
    with pytest.raises(PosventaError, match="no test recipients"):
        send_test(p, "ana@tienda.example", outbox, svc.store, allow_list="", limit=2, now=T0)

    for _ in range(2):  # each invocation builds its own store: the limit is in the database
        store = SqlStore(session_factory(make_engine(sqlite_url)))
        sent = send_test(p, "ana@tienda.example", outbox, store, allow_list=allow, limit=2, now=T0)
        assert sent.result.outcome == "sent"
    with pytest.raises(PosventaError, match="2 test messages in the last hour"):
        send_test(p, "ana@tienda.example", outbox, svc.store, allow_list=allow, limit=2, now=T0)
    send_test(
        p,
        "ana@tienda.example",
        outbox,
        svc.store,
        allow_list=allow,
        limit=2,
        now=T0 + timedelta(hours=1, seconds=1),
    )

    [eml, *_] = sorted((tmp_path / "tests-outbox").glob("*.eml"))
    written = message_from_bytes(eml.read_bytes(), policy=default)
    assert written["To"] == "ana@tienda.example" and str(written["Subject"]).startswith("[PRUEBA] ")
    assert written["X-Posventa-Arg-posventa_test"] == "true"
    assert str(written["X-Posventa-Categories"]).startswith("test:post_purchase")
    assert written["List-Unsubscribe"]  # a promotional test carries what the real one does
    assert rows(svc, m.LedgerEntry) == []
    assert [r.outcome for r in rows(svc, m.SendTestLog)] == ["sent", "sent", "sent"]


def test_send_test_through_sendgrid(svc: Services, fake: FakeSendGrid) -> None:
    p = _previewer().sample("post_purchase", "nps_survey", T0, "en")
    sender = SendGridSender("SG.test", "hola@tienda.example", host=fake.url, timeout=5)
    sent = send_test(
        p, "qa@tienda.example", sender, svc.store, allow_list="qa@tienda.example", limit=5, now=T0
    )
    assert sent.result.outcome == "sent" and sent.used == 1
    [msg] = fake.messages
    assert (msg.to, msg.subject) == ("qa@tienda.example", "[TEST] " + p.message.subject)
    assert msg.custom_args["posventa_test"] == "true" and msg.custom_args["posventa_key"].startswith("test:")
    assert msg.categories == ("test:post_purchase", "test:post_purchase:nps_survey")
    assert msg.html == p.message.html
    assert rows(svc, m.LedgerEntry) == []
