"""A SendGrid v3 Mail Send look-alike on loopback, for tests, the demo and benchmarks.

It is built on the standard library's ``ThreadingHTTPServer`` so it runs anywhere without a framework,
and it is driven by the real ``sendgrid`` client, so what passes here is what the client really sends.
Besides validating like SendGrid (Bearer key, required fields, 1000 recipients, each address once,
string ``custom_args``, ``{"errors": [...]}`` bodies, 202 + ``X-Message-Id``, 200 in sandbox mode) it
injects the faults the sender must classify: statuses (429 with rate-limit headers, 413, 5xx), slow
replies, dropped connections, and the ambiguous "stored but answered 500". It also produces Event
Webhook batches for what it accepted, signed with its own P-256 key exactly as SendGrid signs them.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import secrets
import signal
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from infra.email.fake_sendgrid_rules import sandbox_setting, validate
from infra.email.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER

__all__ = [
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "FakeSendGrid",
    "RecordedRequest",
    "StoredMessage",
    "serve",
]

logger = logging.getLogger("posventa.email.fake_sendgrid")

EVENT_KINDS = frozenset(
    {
        "processed",
        "delivered",
        "deferred",
        "open",
        "click",
        "bounce",
        "dropped",
        "spamreport",
        "unsubscribe",
        "group_unsubscribe",
    }
)
_HREF = re.compile(r"""href=["'](https?://[^"']+)["']""")
_STATUS_MESSAGES = {
    400: "Bad Request",
    401: "The provided authorization grant is invalid, expired, or revoked",
    403: "access forbidden",
    404: "not found",
    413: "Request Entity Too Large",
    429: "too many requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


@dataclass(frozen=True)
class StoredMessage:
    """One accepted personalization recipient, as SendGrid would queue it."""

    message_id: str  # the request's X-Message-Id
    sg_message_id: str  # per recipient; starts with message_id, as in real events
    to: str
    to_name: str | None
    from_email: str
    subject: str | None
    html: str | None
    text: str | None
    headers: Mapping[str, str]
    custom_args: Mapping[str, str]
    categories: tuple[str, ...]
    template_id: str | None
    dynamic_template_data: Mapping[str, Any] | None
    asm_group_id: int | None
    request_index: int
    from_name: str | None = None
    reply_to: str | None = None
    reply_to_name: str | None = None


@dataclass(frozen=True)
class RecordedRequest:
    index: int
    status: int | None  # None: the connection was dropped without a reply
    personalizations: int
    stored: int
    fault: str | None


@dataclass
class _Fault:
    kind: str  # "status" | "slow" | "drop"
    status: int = 500
    headers: Mapping[str, str] | None = None
    store: bool = False
    seconds: float = 0.0
    body: bytes | None = None


@dataclass
class _Outcome:
    status: int | None
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def _error_body(*errors: tuple[str, str | None]) -> bytes:
    items = [{"message": message, "field": where, "help": None} for message, where in errors]
    return json.dumps({"errors": items}).encode("utf-8")


def _random_id() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(16)).decode("ascii").rstrip("=")


class FakeSendGrid:
    """``with FakeSendGrid(api_key="SG.test") as fake: SendGridSender(..., host=fake.url)``."""

    def __init__(
        self,
        api_key: str = "SG.test",
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        max_body_bytes: int = 30 * 1024 * 1024,
        webhook_private_key: ec.EllipticCurvePrivateKey | None = None,
        poll_interval: float = 0.01,
    ) -> None:
        self.api_key = api_key
        self.poll_interval = poll_interval  # how soon stop() is noticed; short keeps test teardown fast
        self.max_body_bytes = max_body_bytes
        self._bind = (host, port)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._faults: deque[_Fault] = deque()
        self._messages: list[StoredMessage] = []
        self._requests: list[RecordedRequest] = []
        self._webhook_key = webhook_private_key or ec.generate_private_key(ec.SECP256R1())
        #: Seconds every mail/send request waits before it is answered (``delay_every``).
        self._delay = 0.0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------------------

    def start(self) -> FakeSendGrid:
        server = ThreadingHTTPServer(self._bind, _Handler)
        server.daemon_threads = True
        server.block_on_close = False  # a handler sleeping in slow_next must not hold up stop()
        server.fake = self  # type: ignore[attr-defined]
        self._server = server
        self._stop.clear()
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": self.poll_interval},
            name="fake-sendgrid",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server, self._thread = None, None

    def __enter__(self) -> FakeSendGrid:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeSendGrid is not running")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self._bind[0]}:{self.port}"

    # -- inspection -----------------------------------------------------------------------------------

    @property
    def messages(self) -> list[StoredMessage]:
        with self._lock:
            return list(self._messages)

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def request_count(self) -> int:
        with self._lock:
            return len(self._requests)

    def reset(self) -> None:
        """Forget messages, requests, pending faults and the delay (the webhook key stays)."""
        with self._lock:
            self._messages.clear()
            self._requests.clear()
            self._faults.clear()
            self._delay = 0.0

    # -- fault injection ------------------------------------------------------------------------------

    def fail_next(
        self,
        status: int,
        count: int = 1,
        headers: Mapping[str, str] | None = None,
        *,
        store: bool = False,
        body: bytes | None = None,
    ) -> None:
        """Answer the next ``count`` mail/send requests with ``status``. With ``store`` the request is
        validated and stored first (SendGrid queued it, then answered 500: the ambiguous case)."""
        self._push(count, _Fault("status", status=status, headers=headers, store=store, body=body))

    def slow_next(self, seconds: float, count: int = 1, *, store: bool = True) -> None:
        """Reply ``seconds`` late. By default the request is stored before the wait, like a real timeout
        after queuing; with ``store=False`` it is lost and the late reply is a 504."""
        self._push(count, _Fault("slow", seconds=seconds, store=store))

    def delay_every(self, seconds: float) -> None:
        """From now on, answer every mail/send request ``seconds`` late (after validating and storing it,
        like a slow provider that has already queued the message); 0 turns the delay off. Unlike
        :meth:`slow_next` it is not used up, and combines with the other faults."""
        with self._lock:
            self._delay = max(0.0, seconds)

    def drop_next(self, count: int = 1, *, store: bool = False) -> None:
        """Read the whole request, then close the connection without any reply."""
        self._push(count, _Fault("drop", store=store))

    def _push(self, count: int, fault: _Fault) -> None:
        with self._lock:
            self._faults.extend(_Fault(**asdict(fault)) for _ in range(count))

    def _take_fault(self) -> _Fault | None:
        with self._lock:
            return self._faults.popleft() if self._faults else None

    # -- mail/send ------------------------------------------------------------------------------------

    def _handle_send(self, headers: Mapping[str, str], raw: bytes) -> _Outcome:
        """Everything but the socket: validate, store, apply the next fault, and say what to reply."""
        fault = self._take_fault()
        if fault is not None and fault.kind == "status" and not fault.store:
            return self._record(self._fault_reply(fault), _count_personalizations(raw), 0, fault)
        if headers.get("authorization", "") != f"Bearer {self.api_key}":
            return self._record(_Outcome(401, _error_body((_STATUS_MESSAGES[401], None))), 0, 0, fault)
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            body = None
        if not isinstance(body, dict):
            return self._record(_Outcome(400, _error_body(("Bad Request", None))), 0, 0, fault)
        personalizations = body.get("personalizations")
        count = len(personalizations) if isinstance(personalizations, list) else 0
        errors = validate(body)
        if errors:
            return self._record(_Outcome(400, _error_body(*errors)), count, 0, fault)
        sandbox = sandbox_setting(body) is True
        message_id = _random_id()
        stored = 0
        if not sandbox and (fault is None or fault.kind == "status" or fault.store):
            stored = self._store(body, message_id)
        with self._lock:
            delay = self._delay
        if delay:
            self._stop.wait(delay)
        if fault is not None and fault.kind == "drop":
            return self._record(_Outcome(None), count, stored, fault)
        if fault is not None and fault.kind == "slow":
            self._stop.wait(fault.seconds)
            if not fault.store:
                reply = _Outcome(504, _error_body((_STATUS_MESSAGES[504], None)))
                return self._record(reply, count, stored, fault)
        if fault is not None and fault.kind == "status":
            return self._record(self._fault_reply(fault), count, stored, fault)
        if sandbox:
            return self._record(_Outcome(200), count, 0, fault)
        return self._record(_Outcome(202, headers={"X-Message-Id": message_id}), count, stored, fault)

    def _fault_reply(self, fault: _Fault) -> _Outcome:
        headers = dict(fault.headers or {})
        if fault.status == 429:
            headers.setdefault("X-RateLimit-Limit", "600")
            headers.setdefault("X-RateLimit-Remaining", "0")
            headers.setdefault("X-RateLimit-Reset", str(int(time.time()) + 1))
        body = fault.body
        if body is None:
            body = _error_body((_STATUS_MESSAGES.get(fault.status, "error"), None))
        return _Outcome(fault.status, body, headers)

    def _record(
        self, outcome: _Outcome, personalizations: int, stored: int, fault: _Fault | None
    ) -> _Outcome:
        with self._lock:
            self._requests.append(
                RecordedRequest(
                    len(self._requests),
                    outcome.status,
                    personalizations,
                    stored,
                    fault.kind if fault else None,
                )
            )
        return outcome

    def _store(self, body: Mapping[str, Any], message_id: str) -> int:
        content = {c["type"]: c["value"] for c in body.get("content") or []}
        categories = tuple(body.get("categories") or ())
        asm = body.get("asm") or {}
        sender = body["from"]
        reply_to = body.get("reply_to") or {}
        records: list[StoredMessage] = []
        with self._lock:
            request_index = len(self._requests)
            for p_index, item in enumerate(body["personalizations"]):
                for t_index, to in enumerate(item["to"]):
                    records.append(
                        StoredMessage(
                            message_id=message_id,
                            sg_message_id=f"{message_id}.filterfake-{p_index}-{t_index}.0",
                            to=to["email"],
                            to_name=to.get("name"),
                            from_email=(item.get("from") or body["from"])["email"],
                            subject=item.get("subject", body.get("subject")),
                            html=content.get("text/html"),
                            text=content.get("text/plain"),
                            headers={**(body.get("headers") or {}), **(item.get("headers") or {})},
                            custom_args={
                                **(body.get("custom_args") or {}),
                                **(item.get("custom_args") or {}),
                            },
                            categories=categories,
                            template_id=body.get("template_id"),
                            dynamic_template_data=item.get("dynamic_template_data"),
                            asm_group_id=asm.get("group_id"),
                            request_index=request_index,
                            from_name=(item.get("from") or sender).get("name"),
                            reply_to=reply_to.get("email"),
                            reply_to_name=reply_to.get("name"),
                        )
                    )
            self._messages.extend(records)
        return len(records)

    # -- event webhook --------------------------------------------------------------------------------

    @property
    def webhook_public_key_b64(self) -> str:
        """The verification key as SendGrid's settings page shows it: base64 DER SubjectPublicKeyInfo."""
        der = self._webhook_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return base64.b64encode(der).decode("ascii")

    def webhook_events(
        self,
        kind: str,
        for_messages: Iterable[StoredMessage] | None = None,
        *,
        timestamp: int | None = None,
        url: str | None = None,
    ) -> list[dict[str, Any]]:
        """Events of one ``kind`` for stored messages (all by default), shaped like SendGrid's: custom
        args flattened at the top level, ``category`` as a list, kind-specific fields added."""
        if kind not in EVENT_KINDS:
            raise ValueError(f"unknown event kind {kind!r}; expected one of {sorted(EVENT_KINDS)}")
        when = int(time.time()) if timestamp is None else timestamp
        targets = self.messages if for_messages is None else list(for_messages)
        events: list[dict[str, Any]] = []
        for message in targets:
            event: dict[str, Any] = dict(message.custom_args)
            event.update(
                {
                    "email": message.to,
                    "timestamp": when,
                    "event": kind,
                    "sg_event_id": _random_id(),
                    "sg_message_id": message.sg_message_id,
                    "smtp-id": f"<{message.message_id}@fake.sendgrid.local>",
                    "category": list(message.categories),
                }
            )
            if message.asm_group_id is not None:
                event["asm_group_id"] = message.asm_group_id
            event.update(_kind_fields(kind, message, url))
            events.append(event)
        return events

    def signed_webhook_request(
        self, events: Sequence[Mapping[str, Any]], *, timestamp: int | None = None
    ) -> tuple[bytes, dict[str, str]]:
        """The body and headers SendGrid would POST: ECDSA P-256 / SHA-256 over ``timestamp + body``
        (the body exactly as sent, with SendGrid's trailing CRLF), DER signature in base64."""
        body = json.dumps(list(events), separators=(",", ":")).encode("utf-8") + b"\r\n"
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        signature = self._webhook_key.sign(stamp.encode("ascii") + body, ec.ECDSA(hashes.SHA256()))
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: base64.b64encode(signature).decode("ascii"),
            TIMESTAMP_HEADER: stamp,
        }
        return body, headers

    def post_webhook(self, url: str, events: Sequence[Mapping[str, Any]], *, timeout: float = 5.0) -> int:
        """POST a signed batch to ``url`` (a loopback test server) and return the HTTP status."""
        body, headers = self.signed_webhook_request(events)
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(request, timeout=timeout) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)


def _kind_fields(kind: str, message: StoredMessage, url: str | None) -> dict[str, Any]:
    if kind == "delivered":
        return {"response": "250 OK", "ip": "127.0.0.1", "tls": 1}
    if kind == "deferred":
        return {"response": "421 try again later", "attempt": "1", "ip": "127.0.0.1"}
    if kind in ("open", "click", "group_unsubscribe", "unsubscribe"):
        extra: dict[str, Any] = {"useragent": "Mozilla/5.0 (fake)", "ip": "127.0.0.1"}
        if kind == "open":
            extra["sg_machine_open"] = False
        if kind == "click":
            found = _HREF.search(message.html or "")
            extra["url"] = url or (found.group(1) if found else "https://example.com/")
            extra["url_offset"] = {"index": 0, "type": "html"}
        return extra
    if kind == "bounce":
        return {
            "reason": "550 5.1.1 The email account that you tried to reach does not exist.",
            "status": "5.1.1",
            "type": "bounce",
            "bounce_classification": "Invalid Address",
        }
    if kind == "dropped":
        return {"reason": "Bounced Address", "status": "5.0.0"}
    return {}


def _count_personalizations(raw: bytes) -> int:
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return 0
    items = body.get("personalizations") if isinstance(body, dict) else None
    return len(items) if isinstance(items, list) else 0


class _Handler(BaseHTTPRequestHandler):
    server_version = "FakeSendGrid/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("fake sendgrid: " + format, *args)

    @property
    def fake(self) -> FakeSendGrid:
        return self.server.fake  # type: ignore[attr-defined]

    def do_POST(self) -> None:
        if self.path.rstrip("/") != "/v3/mail/send":
            self._reply(_Outcome(404, _error_body(("not found", None))))
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length > self.fake.max_body_bytes:
            _drain(self.rfile, length)
            self._reply(_Outcome(413, _error_body((_STATUS_MESSAGES[413], None))))
            return
        raw = self.rfile.read(length)
        headers = {k.lower(): v for k, v in self.headers.items()}
        outcome = self.fake._handle_send(headers, raw)
        if outcome.status is None:
            self.close_connection = True  # dropped: the client reads end-of-stream instead of a reply
            return
        self._reply(outcome)

    def do_GET(self) -> None:
        """Inspection for people running the fake by hand: stored messages and the webhook key."""
        if self.path.rstrip("/") == "/fake/messages":
            body = json.dumps([asdict(m) for m in self.fake.messages], default=str).encode("utf-8")
            self._reply(_Outcome(200, body))
        elif self.path.rstrip("/") == "/fake/webhook-public-key":
            self._reply(_Outcome(200, json.dumps({"public_key": self.fake.webhook_public_key_b64}).encode()))
        else:
            self._reply(_Outcome(404, _error_body(("not found", None))))

    def _reply(self, outcome: _Outcome) -> None:
        try:
            self.send_response(outcome.status or 500)
            if outcome.body:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(outcome.body)))
            for key, value in outcome.headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(outcome.body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up first (timeout): exactly what slow_next is for


def _drain(stream: Any, length: int) -> None:
    while length > 0:
        chunk = stream.read(min(length, 1 << 16))
        if not chunk:
            return
        length -= len(chunk)


def serve(host: str, port: int, api_key: str) -> None:
    """Run the fake in the foreground until interrupted (``posventa fake-sendgrid``)."""
    fake = FakeSendGrid(api_key=api_key, host=host, port=port, poll_interval=0.5).start()
    print(f"fake SendGrid on {fake.url} (POST /v3/mail/send; what it accepted: GET /fake/messages)")
    print(f"point Posventa at it: POSVENTA_SENDGRID_HOST={fake.url} POSVENTA_SENDGRID_API_KEY={api_key}")
    print(f"POSVENTA_SENDGRID_WEBHOOK_PUBLIC_KEY={fake.webhook_public_key_b64}")
    print("Ctrl-C stops it (messages are kept in memory only)", flush=True)
    stopped = threading.Event()
    if threading.current_thread() is threading.main_thread():
        # docker stop / kill send SIGTERM; stop cleanly as for Ctrl-C.
        signal.signal(signal.SIGTERM, lambda signum, frame: stopped.set())
    try:
        while not stopped.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()
