"""What the settings say reaches the wire: the sender built from settings (``infra.wiring``), as a
deployment builds it, sends the sender's name, the reply-to address and — on promotional mail only —
the unsubscribe group, as read back from the request bodies the loopback fake received."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import API_KEY

from infra.email.fake_sendgrid import FakeSendGrid
from infra.email.message import OutgoingEmail, mailbox
from infra.email.outbox import FileOutboxSender
from infra.settings import make_settings
from infra.wiring import sender_from
from posventa.errors import ConfigError

PROMO = {"promotional": True, "unsubscribe_url": "https://posventa.example/u/tok"}


def settings(fake: FakeSendGrid, tmp_path: Path, **extra: Any) -> Any:
    return make_settings(
        sendgrid_api_key=API_KEY,
        sendgrid_host=fake.url,
        email_from="hola@tienda.example",
        email_from_name="Tienda Ejemplo",
        outbox_dir=str(tmp_path / "outbox"),
        **extra,
    )


def test_from_name_reply_to_and_asm_group_reach_the_wire(
    fake: FakeSendGrid, tmp_path: Path, make_message: Callable[..., OutgoingEmail]
) -> None:
    s = settings(
        fake, tmp_path, reply_to="Atención al cliente <ayuda@tienda.example>", sendgrid_asm_group_id=4242
    )
    sender = sender_from(s)
    results = sender.send([make_message(1), make_message(2, **PROMO, step="review_ask")])
    assert {r.outcome for r in results} == {"sent"}
    wire = {m.to: m for m in fake.messages}
    for msg in wire.values():
        assert (msg.from_email, msg.from_name) == ("hola@tienda.example", "Tienda Ejemplo")
        assert (msg.reply_to, msg.reply_to_name) == ("ayuda@tienda.example", "Atención al cliente")
    # Only promotional mail joins the unsubscribe group: an order confirmation reaches everyone.
    assert wire["cliente1@example.com"].asm_group_id is None
    assert wire["cliente2@example.com"].asm_group_id == 4242


def test_without_reply_to_or_group_the_body_has_neither(
    fake: FakeSendGrid, tmp_path: Path, make_message: Callable[..., OutgoingEmail]
) -> None:
    sender_from(settings(fake, tmp_path, reply_to="  ")).send([make_message(1, **PROMO)])
    [msg] = fake.messages
    assert (msg.from_name, msg.reply_to, msg.asm_group_id) == ("Tienda Ejemplo", None, None)


def test_a_bad_reply_to_is_a_configuration_error(fake: FakeSendGrid, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="reply_to: not an email address"):
        sender_from(settings(fake, tmp_path, reply_to="ayuda en tienda.example"))
    with pytest.raises(ValueError):
        settings(fake, tmp_path, sendgrid_asm_group_id=0)
    assert mailbox("ayuda@tienda.example") == ("ayuda@tienda.example", None)


def test_the_outbox_writes_the_same_sender_and_reply_to(
    tmp_path: Path, make_message: Callable[..., OutgoingEmail]
) -> None:
    s = make_settings(
        email_from="hola@tienda.example",
        email_from_name="Tienda Ejemplo",
        reply_to="ayuda@tienda.example",
        outbox_dir=str(tmp_path / "outbox"),
    )
    sender = sender_from(s)
    assert isinstance(sender, FileOutboxSender)
    sender.send([make_message(1)])
    [eml] = (tmp_path / "outbox").glob("*.eml")
    head = eml.read_text(encoding="utf-8").split("\r\n\r\n", 1)[0]
    assert "From: Tienda Ejemplo <hola@tienda.example>" in head
    assert "Reply-To: ayuda@tienda.example" in head


def test_delay_every_holds_each_answer_until_turned_off(
    fake: FakeSendGrid, make_sender: Callable[..., Any], make_message: Callable[..., OutgoingEmail]
) -> None:
    """Every request is stored, then answered late: past the client's timeout the outcome is unknown;
    with the delay off the same sender gets its 202."""
    sender = make_sender(timeout=0.2)
    fake.delay_every(1.0)
    first = sender.send([make_message(1), make_message(2, subject="otro asunto")])  # two requests
    assert [r.outcome for r in first] == ["unknown", "unknown"]
    fake.delay_every(0)
    assert [r.outcome for r in sender.send([make_message(3)])] == ["sent"]
    assert sorted(m.to for m in fake.messages) == [f"cliente{i}@example.com" for i in (1, 2, 3)]
