"""The fake SendGrid on its own: raw HTTP requests, SendGrid-shaped answers, faults and webhooks."""

from __future__ import annotations

import contextlib
import http.client
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest

from infra.email.fake_sendgrid import FakeSendGrid
from infra.email.message import OutgoingEmail
from infra.email.sendgrid_sender import SendGridSender
from infra.email.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, WebhookRejected, verify_signature

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _post(fake: FakeSendGrid, body: Any, key: str | None = None) -> tuple[int, dict[str, str], Any]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(
        f"{fake.url}/v3/mail/send",
        data=data,
        method="POST",
        headers={"Authorization": f"Bearer {key or fake.api_key}", "Content-Type": "application/json"},
    )
    try:
        with _OPENER.open(request, timeout=5) as response:
            raw = response.read()
            return response.status, dict(response.headers), json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        return exc.code, dict(exc.headers), json.loads(raw) if raw else None


def _body(*addresses: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "personalizations": [{"to": [{"email": a}], "custom_args": {"posventa_key": a}} for a in addresses],
        "from": {"email": "tienda@posventa.example"},
        "subject": "Hola",
        "content": [{"type": "text/plain", "value": "hola"}, {"type": "text/html", "value": "<p>hola</p>"}],
    }
    body.update(extra)
    return body


def _fields(answer: Any) -> list[str | None]:
    return [e["field"] for e in answer["errors"]]


def test_accepts_and_stores_one_record_per_personalization(fake: FakeSendGrid) -> None:
    status, headers, answer = _post(fake, _body("a@example.com", "b@example.com"))

    assert status == 202 and answer is None
    assert headers["X-Message-Id"]
    assert [m.to for m in fake.messages] == ["a@example.com", "b@example.com"]
    assert {m.message_id for m in fake.messages} == {headers["X-Message-Id"]}
    assert fake.messages[0].sg_message_id.startswith(headers["X-Message-Id"] + ".")


def test_bad_key_is_401_with_errors_body(fake: FakeSendGrid) -> None:
    status, _, answer = _post(fake, _body("a@example.com"), key="SG.nope")

    assert status == 401
    assert answer == {
        "errors": [
            {
                "message": "The provided authorization grant is invalid, expired, or revoked",
                "field": None,
                "help": None,
            }
        ]
    }
    assert fake.messages == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (_body("a@example.com", "A@example.com"), "personalizations.1.to.0.email"),
        (_body("not-an-address"), "personalizations.0.to.0.email"),
        (_body(), "personalizations"),
        (_body("a@example.com", **{"from": {}}), "from.email"),
        (_body("a@example.com", subject=None), "subject"),
        (_body("a@example.com", content=[]), "content"),
        (
            _body(
                "a@example.com",
                content=[{"type": "text/html", "value": "x"}, {"type": "text/plain", "value": "y"}],
            ),
            "content",
        ),
        (
            _body("a@example.com", mail_settings={"sandbox_mode": {"enable": "true"}}),
            "mail_settings.sandbox_mode.enable",
        ),
    ],
)
def test_invalid_requests_are_400_naming_the_field(
    fake: FakeSendGrid, body: dict[str, Any], field: str
) -> None:
    status, _, answer = _post(fake, body)

    assert status == 400
    assert field in _fields(answer)
    assert fake.messages == []


def test_custom_args_must_be_strings(fake: FakeSendGrid) -> None:
    body = _body("a@example.com")
    body["personalizations"][0]["custom_args"]["attempt"] = 1
    status, _, answer = _post(fake, body)

    assert status == 400
    assert _fields(answer) == ["personalizations.0.custom_args.attempt"]


def test_more_than_1000_personalizations_is_400(fake: FakeSendGrid) -> None:
    status, _, answer = _post(fake, _body(*(f"c{i}@example.com" for i in range(1001))))

    assert status == 400
    assert "limited to 1000 personalizations" in answer["errors"][0]["message"]


def test_template_id_needs_no_subject_or_content(fake: FakeSendGrid) -> None:
    body = _body("a@example.com", template_id="d-1")
    del body["subject"], body["content"]
    body["personalizations"][0]["dynamic_template_data"] = {"nombre": "Ana"}
    status, _, _ = _post(fake, body)

    assert status == 202
    assert fake.messages[0].dynamic_template_data == {"nombre": "Ana"}


def test_sandbox_is_200_and_stores_nothing(fake: FakeSendGrid) -> None:
    status, headers, _ = _post(fake, _body("a@example.com", mail_settings={"sandbox_mode": {"enable": True}}))

    assert status == 200
    assert "X-Message-Id" not in headers
    assert fake.messages == []


def test_429_carries_rate_limit_headers(fake: FakeSendGrid) -> None:
    fake.fail_next(429, count=2)
    first = _post(fake, _body("a@example.com"))
    second = _post(fake, _body("a@example.com"))
    third = _post(fake, _body("a@example.com"))

    assert [first[0], second[0], third[0]] == [429, 429, 202]
    assert first[1]["X-RateLimit-Remaining"] == "0"
    assert int(first[1]["X-RateLimit-Reset"]) >= int(time.time())
    assert first[2] == {"errors": [{"message": "too many requests", "field": None, "help": None}]}
    assert [r.status for r in fake.requests] == [429, 429, 202]
    assert len(fake.messages) == 1


def test_fail_with_store_keeps_the_message(fake: FakeSendGrid) -> None:
    fake.fail_next(500, store=True)
    status, _, _ = _post(fake, _body("a@example.com"))

    assert status == 500
    assert [m.to for m in fake.messages] == ["a@example.com"]


def test_drop_with_store_keeps_the_message(fake: FakeSendGrid) -> None:
    fake.drop_next(store=True)
    with pytest.raises((http.client.HTTPException, ConnectionError)):
        _post(fake, _body("a@example.com"))

    assert [m.to for m in fake.messages] == ["a@example.com"]
    assert fake.requests[0].status is None


def test_slow_without_store_loses_the_message(fake: FakeSendGrid) -> None:
    fake.slow_next(0.2, store=False)
    status, _, _ = _post(fake, _body("a@example.com"))

    assert status == 504
    assert fake.messages == []


def test_stop_does_not_wait_for_a_slow_reply() -> None:
    fake = FakeSendGrid(api_key="SG.k").start()
    fake.slow_next(30)
    thread = threading.Thread(target=lambda: _post_quietly(fake), daemon=True)
    thread.start()
    time.sleep(0.2)
    started = time.monotonic()
    fake.stop()
    assert time.monotonic() - started < 2
    thread.join(timeout=5)


def _post_quietly(fake: FakeSendGrid) -> None:
    with contextlib.suppress(OSError):
        _post(fake, _body("a@example.com"))


def test_inspection_endpoints(fake: FakeSendGrid) -> None:
    _post(fake, _body("a@example.com"))
    with _OPENER.open(f"{fake.url}/fake/messages", timeout=5) as response:
        assert [m["to"] for m in json.loads(response.read())] == ["a@example.com"]
    with _OPENER.open(f"{fake.url}/fake/webhook-public-key", timeout=5) as response:
        assert json.loads(response.read())["public_key"] == fake.webhook_public_key_b64


# -- webhook events ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("processed", {}),
        ("delivered", {"response": "250 OK"}),
        ("open", {"sg_machine_open": False}),
        ("click", {"url": "https://posventa.example/nps?s=9"}),
        ("bounce", {"type": "bounce", "status": "5.1.1"}),
        ("dropped", {"reason": "Bounced Address"}),
        ("spamreport", {}),
        ("unsubscribe", {}),
        ("group_unsubscribe", {"asm_group_id": 77}),
    ],
)
def test_webhook_events_have_sendgrid_shape(
    fake: FakeSendGrid,
    make_sender: Callable[..., SendGridSender],
    make_message: Callable[..., OutgoingEmail],
    kind: str,
    expected: dict[str, Any],
) -> None:
    promo = {"promotional": True, "unsubscribe_url": "https://posventa.example/u/1"}
    make_sender(asm_group_id=77).send([make_message(1, extra_custom_args={"tenant": "acme"}, **promo)])
    [event] = fake.webhook_events(kind, timestamp=1_700_000_000)

    assert event["event"] == kind
    assert event["email"] == "cliente1@example.com"
    assert event["timestamp"] == 1_700_000_000
    assert event["sg_event_id"]
    assert event["sg_message_id"] == fake.messages[0].sg_message_id
    assert event["category"] == ["post_purchase", "post_purchase:nps_survey"]
    assert event["posventa_key"] == "enr-1:nps_survey:0"  # custom args flattened, as SendGrid does
    assert event["tenant"] == "acme"
    assert expected.items() <= event.items()
    if kind == "bounce":
        assert event["reason"]


def test_unknown_event_kind_is_an_error(fake: FakeSendGrid) -> None:
    with pytest.raises(ValueError, match="unknown event kind"):
        fake.webhook_events("opened")


def test_webhook_events_for_selected_messages(fake: FakeSendGrid) -> None:
    _post(fake, _body("a@example.com", "b@example.com"))
    [event] = fake.webhook_events("delivered", for_messages=fake.messages[1:])
    assert event["email"] == "b@example.com"
    assert len({e["sg_event_id"] for e in fake.webhook_events("open")}) == 2


@pytest.fixture
def receiver(fake: FakeSendGrid) -> Iterator[tuple[str, list[int]]]:
    """A tiny loopback webhook endpoint that verifies signatures like the web app will."""
    statuses: list[int] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            try:
                verify_signature(
                    fake.webhook_public_key_b64,
                    body,
                    self.headers.get(SIGNATURE_HEADER),
                    self.headers.get(TIMESTAMP_HEADER),
                    now=time.time(),
                )
                status = 204
            except WebhookRejected:
                status = 403
            statuses.append(status)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/webhooks/sendgrid", statuses
    finally:
        server.shutdown()
        server.server_close()


def test_post_webhook_delivers_a_verifiable_batch(
    fake: FakeSendGrid, receiver: tuple[str, list[int]]
) -> None:
    url, statuses = receiver
    _post(fake, _body("a@example.com"))

    assert fake.post_webhook(url, fake.webhook_events("delivered")) == 204
    with FakeSendGrid() as impostor:
        assert impostor.post_webhook(url, fake.webhook_events("open")) == 403
    assert statuses == [204, 403]
