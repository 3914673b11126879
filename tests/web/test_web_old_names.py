"""A name with CR/LF is refused at the event boundary, but older releases stored some: such a customer's
emails still go out, with the name cleaned in the ``To`` header (never a header injection, never a
permanently failing customer)."""

from __future__ import annotations

from email import message_from_bytes, policy
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session
from web_builders import T0, order_placed, post_purchase

from app.services import Services
from infra.db import models as m
from infra.email.fake_sendgrid import FakeSendGrid
from infra.email.message import display_name
from infra.email.sendgrid_sender import SendGridSender
from infra.settings import Settings
from infra.wiring import build_services

pytestmark = pytest.mark.postgres

OLD_NAME = "Ana\r\nBcc: intruso@example.com\r\n"


@pytest.mark.parametrize(
    "name, shown",
    [
        ("Ana García", "Ana García"),
        (OLD_NAME, "Ana Bcc: intruso@example.com"),
        ("Ana\nGarcía", "Ana García"),
        ("Ana\x00\x1b[31m García", "Ana [31m García"),
        ("\r\n\t", None),
        ("", None),
        (None, None),
        ("  Ana   García  ", "Ana García"),
        ("Ana\u0085García\ud800", "Ana García"),
    ],
)
def test_display_name(name: str | None, shown: str | None) -> None:
    assert display_name(name) == shown


def store_old_name(svc: Services, session: Session, customer_id: str) -> None:
    """What an older release stored: the API refuses it now, so it is written as the old code did."""
    assert svc.ingest.apply([order_placed(customer_id, f"o-{customer_id}")], "api", T0).accepted == 1
    session.execute(text("UPDATE customers SET name = :n WHERE id = :c"), {"n": OLD_NAME, "c": customer_id})
    session.commit()


def thank_you_status(session: Session, customer_id: str) -> str | None:
    session.expire_all()
    return session.scalar(
        select(m.LedgerEntry.status).where(
            m.LedgerEntry.customer_id == customer_id, m.LedgerEntry.step_id == "thank_you"
        )
    )


def test_the_outbox_writes_one_clean_to_header(svc: Services, session: Session, settings: Settings) -> None:
    store_old_name(svc, session, "old-1")
    svc.sweep(T0)
    assert thank_you_status(session, "old-1") == "sent"
    [eml] = list(Path(settings.outbox_dir).glob("*.eml"))
    raw = eml.read_bytes()
    head = raw.split(b"\r\n\r\n", 1)[0]  # (the greeting in the body may show the name as stored)
    assert b"\nBcc:" not in head and b"intruso@example.com\r\n" not in head
    parsed = message_from_bytes(raw, policy=policy.default)
    assert parsed["Bcc"] is None
    [to] = parsed["To"].addresses
    assert (to.display_name, to.addr_spec) == ("Ana Bcc: intruso@example.com", "old-1@example.com")


def test_sendgrid_gets_the_clean_name(session: Session, settings: Settings, svc: Services) -> None:
    store_old_name(svc, session, "old-2")
    with FakeSendGrid(api_key="SG.test") as fake:
        sender = SendGridSender("SG.test", settings.email_from, host=fake.url, timeout=2.0)
        runtime = build_services(settings, sender=sender, plans={"post_purchase": post_purchase()})
        try:
            runtime.sweep(T0)
        finally:
            runtime.store.dispose()  # type: ignore[attr-defined]
        [message] = fake.messages
    assert thank_you_status(session, "old-2") == "sent"
    assert (message.to, message.to_name) == ("old-2@example.com", "Ana Bcc: intruso@example.com")
