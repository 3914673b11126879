"""FileOutboxSender: real RFC 5322 files, idempotent per ledger key."""

from __future__ import annotations

from collections.abc import Callable
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from pathlib import Path

from infra.email.message import Outcome, OutgoingEmail
from infra.email.outbox import FileOutboxSender, outbox_stem

MakeMessage = Callable[..., OutgoingEmail]


def _read(path: Path) -> EmailMessage:
    parsed = message_from_bytes(path.read_bytes(), policy=default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def test_writes_a_parseable_multipart_message(tmp_path: Path, make_message: MakeMessage) -> None:
    message = make_message(1, extra_custom_args={"tenant": "acme"})
    [result] = FileOutboxSender(tmp_path, from_email="tienda@posventa.example").send([message])

    assert result.outcome is Outcome.SENT
    eml_path = tmp_path / (result.provider_message_id or "")
    assert eml_path.suffix == ".eml" and eml_path.exists()
    assert (tmp_path / f"{eml_path.stem}.html").read_text(encoding="utf-8") == message.html
    assert b"\r\n" in eml_path.read_bytes()

    parsed = _read(eml_path)
    assert parsed.get_content_type() == "multipart/alternative"
    assert parsed["To"].addresses[0].addr_spec == "cliente1@example.com"
    assert parsed["To"].addresses[0].display_name == "Cliente 1"
    assert parsed["From"].addresses[0].addr_spec == "tienda@posventa.example"
    assert str(parsed["Subject"]) == "¿Qué tal tu compra?"
    assert parsed["X-Posventa-Key"] == "enr-1:nps_survey:0"
    assert parsed["X-Posventa-Arg-tenant"] == "acme"
    assert parsed["Content-Language"] == "es"
    assert parsed["List-Unsubscribe"] is None
    text_part = parsed.get_body(("plain",))
    html_part = parsed.get_body(("html",))
    assert text_part is not None and html_part is not None
    assert text_part.get_content().strip() == message.text
    assert html_part.get_content().strip() == message.html


def test_promotional_message_has_one_click_unsubscribe(tmp_path: Path, make_message: MakeMessage) -> None:
    message = make_message(2, promotional=True, unsubscribe_url="https://posventa.example/u/xyz")
    [result] = FileOutboxSender(tmp_path).send([message])

    parsed = _read(tmp_path / (result.provider_message_id or ""))
    assert parsed["List-Unsubscribe"] == "<https://posventa.example/u/xyz>"
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_a_long_unsubscribe_url_is_written_bare_not_rfc2047_encoded(
    tmp_path: Path, make_message: MakeMessage
) -> None:
    """A signed unsubscribe URL is ~200 characters: folding it at 78 encoded it as =?utf-8?q?…?=, which
    mail clients do not recognise as List-Unsubscribe (RFC 2369 wants the bare <URL>)."""
    url = "https://posventa.example/u/" + "eyJ0eXAiOiJKV1Qi" * 14
    message = make_message(3, promotional=True, unsubscribe_url=url)
    [result] = FileOutboxSender(tmp_path).send([message])

    raw = (tmp_path / (result.provider_message_id or "")).read_bytes()
    assert f"\r\nList-Unsubscribe: <{url}>\r\n".encode() in raw
    assert b"=?utf-8?" not in raw.split(b"\r\nList-Unsubscribe: ", 1)[1].split(b"\r\n", 1)[0]
    assert b"\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n" in raw
    assert _read(tmp_path / (result.provider_message_id or ""))["List-Unsubscribe"] == f"<{url}>"


def test_same_key_twice_is_idempotent(tmp_path: Path, make_message: MakeMessage) -> None:
    sender = FileOutboxSender(tmp_path)
    [first] = sender.send([make_message(3)])
    eml = tmp_path / (first.provider_message_id or "")
    before = eml.read_bytes()
    [second] = sender.send([make_message(3, subject="changed")])

    assert second == first
    assert eml.read_bytes() == before
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".eml", ".html"]


def test_repeated_key_in_one_batch_is_written_once(tmp_path: Path, make_message: MakeMessage) -> None:
    results = FileOutboxSender(tmp_path).send([make_message(4), make_message(4)])

    assert results[0] == results[1]
    assert len(list(tmp_path.glob("*.eml"))) == 1


def test_file_names_are_safe_and_distinct(tmp_path: Path, make_message: MakeMessage) -> None:
    keys = ["a:b", "a_b", "../../etc/passwd", "x" * 400, "ñandú/1"]
    stems = [outbox_stem(k) for k in keys]
    assert len(set(stems)) == len(keys)
    assert all("/" not in s and not s.startswith(".") and len(s) < 120 for s in stems)

    results = FileOutboxSender(tmp_path).send([make_message(i, ledger_key=k) for i, k in enumerate(keys)])
    assert all(r.outcome is Outcome.SENT for r in results)
    assert len(list(tmp_path.glob("*.eml"))) == len(keys)
    assert all(p.parent == tmp_path for p in tmp_path.rglob("*"))


def test_invalid_messages_fail_without_files(tmp_path: Path, make_message: MakeMessage) -> None:
    results = FileOutboxSender(tmp_path).send(
        [
            make_message(0, to_email="nadie"),
            make_message(1, promotional=True, unsubscribe_url=None),
            make_message(2, subject="línea\r\nBcc: otro@example.com"),
        ]
    )

    assert [r.outcome for r in results] == [Outcome.FAILED] * 3
    assert not list(tmp_path.glob("*.eml"))


def test_template_message_keeps_its_data_readable(tmp_path: Path, make_message: MakeMessage) -> None:
    message = make_message(5, html="", text="", sendgrid_template_id="d-1", template_data={"nombre": "Ana"})
    [result] = FileOutboxSender(tmp_path).send([message])

    parsed = _read(tmp_path / (result.provider_message_id or ""))
    assert parsed["X-Posventa-SendGrid-Template"] == "d-1"
    assert '"nombre": "Ana"' in parsed.get_content()


def test_unwritable_directory_is_retry(tmp_path: Path, make_message: MakeMessage) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    [result] = FileOutboxSender(blocker / "outbox").send([make_message(0)])

    assert result.outcome is Outcome.RETRY
    assert "outbox" in (result.error or "")


def test_same_key_for_another_address_is_a_collision_not_a_send(
    tmp_path: Path, make_message: MakeMessage
) -> None:
    """Two databases sharing one outbox reuse enrollment ids: never report the second mail as sent."""
    sender = FileOutboxSender(tmp_path)
    first = make_message(0)
    assert sender.send([first])[0].outcome == Outcome.SENT
    from dataclasses import replace

    other = replace(first, to_email="someone.else@example.com")
    [result] = sender.send([other])
    assert result.outcome == Outcome.FAILED and "outbox collision" in (result.error or "")
