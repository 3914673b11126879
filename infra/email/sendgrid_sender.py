"""SendGrid v3 Mail Send through the official ``sendgrid`` client, batched and honestly classified.

Why it is shaped this way:

* Batching: messages of one step with identical rendered content (or one dynamic template) share one
  request with one personalization each, so 500 customers cost one HTTP call instead of 500. SendGrid
  rejects a whole request for one invalid or repeated address, so addresses are checked here first and
  an address repeated in a group goes to a later request.
* Classification decides whether the ledger may send again. Only an error raised while the request was
  still being written (connection refused, DNS, connect timeout: ``URLError``) proves nothing was sent
  (RETRY). A read timeout, a dropped connection or a 5xx after the body was written may have been
  accepted (UNKNOWN: reconcile through the event webhook, never resend blindly).
* Secrets: ``python_http_client`` logs the ``Authorization: Bearer`` header at DEBUG, so its loggers are
  held at INFO and filtered; our own logs mask addresses.
"""

from __future__ import annotations

import http.client
import json
import logging
import random
import re
import threading
import time
import urllib.error
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from python_http_client.exceptions import HTTPError as ProviderHTTPError
from sendgrid import SendGridAPIClient

from infra.email.message import (
    Outcome,
    OutgoingEmail,
    SendResult,
    categories,
    custom_args,
    display_name,
    mailbox,
    mask_email,
    message_problems,
    unique_by_key,
    valid_address,
)
from posventa.errors import ConfigError

__all__ = ["SENDGRID_HOST", "SENDGRID_MAX_PERSONALIZATIONS", "SendGridSender", "quiet_http_client_logging"]

logger = logging.getLogger("posventa.email.sendgrid")

SENDGRID_MAX_PERSONALIZATIONS = 1000
SENDGRID_HOST = "https://api.sendgrid.com"
_HTTP_CLIENT_LOGGERS = ("python_http_client", "python_http_client.client")
_BEARER = re.compile(r"Bearer\s+[^\s'\",}]+")
_ADDRESS_IN_TEXT = re.compile(r"[^\s@'\"<>(),;:]+@[A-Za-z0-9.-]+")
_PERSONALIZATION_FIELD = re.compile(r"^personalizations\.(\d+)\b")
_MAX_400_ROUNDS = 3


class _RedactingFilter(logging.Filter):
    """Drops python_http_client's DEBUG records (headers with the key, payloads with addresses) and
    scrubs a Bearer token from anything else, even if someone lowers the level later."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.INFO:
            return False
        message = record.getMessage()
        if "Bearer" in message:
            record.msg, record.args = _BEARER.sub("Bearer [redacted]", message), None
        return True


_FILTER = _RedactingFilter()


def quiet_http_client_logging() -> None:
    """Hold python_http_client's loggers at INFO or above: at DEBUG they log the API key."""
    for name in _HTTP_CLIENT_LOGGERS:
        http_logger = logging.getLogger(name)
        if http_logger.level < logging.INFO:
            http_logger.setLevel(logging.INFO)
        if _FILTER not in http_logger.filters:
            http_logger.addFilter(_FILTER)


def _mask_text(text: str) -> str:
    return _ADDRESS_IN_TEXT.sub(lambda m: mask_email(m.group(0)), text)


@dataclass(frozen=True)
class _Reply:
    """What came back for one request, or the exception that stood in for a reply."""

    status: int | None
    headers: Mapping[str, str]
    body: bytes
    error: str | None = None
    outcome: Outcome | None = None  # set when there was no HTTP status to classify


class SendGridSender:
    """A ``Sender`` for SendGrid's v3 Mail Send; safe to share between threads (one HTTP client each)."""

    name = "sendgrid"

    def __init__(
        self,
        api_key: str,
        from_email: str,
        from_name: str | None = None,
        host: str = SENDGRID_HOST,
        timeout: float = 10.0,
        asm_group_id: int | None = None,
        max_batch: int = 500,
        sandbox: bool = False,
        *,
        concurrency: int = 1,
        passthrough_template_id: str | None = None,
        reply_to: str | None = None,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        if not api_key or not api_key.strip():
            raise ConfigError("SendGrid API key is empty")
        if not valid_address(from_email):
            raise ConfigError(f"SendGrid from_email is not a valid address: {mask_email(from_email)}")
        if not host.startswith(("http://", "https://")):
            raise ConfigError(f"SendGrid host must be an http(s) URL, got {host!r}")
        if not timeout > 0:
            raise ConfigError("SendGrid timeout must be positive: without one a hung server hangs us")
        if not 1 <= max_batch <= SENDGRID_MAX_PERSONALIZATIONS:
            raise ConfigError(f"max_batch must be between 1 and {SENDGRID_MAX_PERSONALIZATIONS}")
        try:
            self.reply_to = mailbox(reply_to) if reply_to else None
        except ValueError as exc:
            raise ConfigError(f"SendGrid reply_to: {exc}") from None
        self._api_key = api_key.strip()
        self.from_email = from_email
        self.from_name = from_name
        self.host = host.rstrip("/")
        self.timeout = float(timeout)
        self.asm_group_id = asm_group_id
        self.max_batch = max_batch
        self.sandbox = sandbox
        if not 1 <= concurrency <= 64:
            raise ConfigError("SendGrid concurrency must be between 1 and 64")
        # Personalised mail (a name, an order, signed links) cannot share a request body, so one call may
        # need many requests: up to ``concurrency`` of them are in flight at once (one client per thread).
        self.concurrency = concurrency
        # A dynamic template in the SendGrid account whose subject is {{subject}}, HTML {{{html}}} and
        # text {{{text}}}: locally rendered, personalised messages of one step can then share a request
        # (one personalization each, up to max_batch) instead of needing a request each.
        self.passthrough_template_id = passthrough_template_id
        self._clock = clock
        self._rng = rng or random.Random()
        self._local = threading.local()
        quiet_http_client_logging()

    def __repr__(self) -> str:
        return f"SendGridSender(host={self.host!r}, from_email={mask_email(self.from_email)!r}, key=***)"

    # -- public ---------------------------------------------------------------------------------------

    def send(self, messages: Sequence[OutgoingEmail]) -> list[SendResult]:
        quiet_http_client_logging()
        if self.passthrough_template_id:
            messages = [self._through_template(m) for m in messages]
        unique, positions = unique_by_key(messages)
        results: dict[int, SendResult] = {}
        groups: dict[tuple[Any, ...], list[int]] = defaultdict(list)
        for index, message in enumerate(unique):
            problem = self._local_problem(message)
            if problem is not None:
                logger.info("sendgrid refused %s locally: %s", mask_email(message.to_email), problem)
                results[index] = SendResult(message.ledger_key, Outcome.FAILED, error=problem)
            else:
                groups[_batch_key(message)].append(index)
        chunks = [chunk for indices in groups.values() for chunk in self._chunks(unique, indices)]
        limited: list[float] = []  # retry_after of a 429 seen in this call
        lock = threading.Lock()

        def run(chunk: list[int]) -> dict[int, SendResult]:
            with lock:
                retry_after = max(limited) if limited else None
            if retry_after is not None:
                # Rate limited: the rest of this call would only collect more 429s.
                note = "not attempted: rate limited by SendGrid earlier in this batch"
                return {
                    i: SendResult(unique[i].ledger_key, Outcome.RETRY, None, note, retry_after) for i in chunk
                }
            chunk_results = self._send_chunk(unique, chunk, rounds=0)
            waits = [r.retry_after for r in chunk_results.values() if r.retry_after is not None]
            if waits:
                with lock:
                    limited.append(max(waits))
            return chunk_results

        if self.concurrency > 1 and len(chunks) > 1:
            with ThreadPoolExecutor(max_workers=min(self.concurrency, len(chunks))) as pool:
                for chunk_results in pool.map(run, chunks):
                    results.update(chunk_results)
        else:
            for chunk in chunks:
                results.update(run(chunk))
        return [results[i] for i in positions]

    def _through_template(self, message: OutgoingEmail) -> OutgoingEmail:
        if message.sendgrid_template_id is not None or self.passthrough_template_id is None:
            return message
        return replace(
            message,
            sendgrid_template_id=self.passthrough_template_id,
            template_data={"subject": message.subject, "html": message.html, "text": message.text},
        )

    # -- batching -------------------------------------------------------------------------------------

    @staticmethod
    def _local_problem(message: OutgoingEmail) -> str | None:
        problems = message_problems(message)
        if message.template_data is not None:
            try:
                json.dumps(dict(message.template_data))
            except (TypeError, ValueError) as exc:
                problems.append(f"template_data is not JSON: {exc}")
        return "; ".join(problems) or None

    def _chunks(self, unique: Sequence[OutgoingEmail], indices: list[int]) -> list[list[int]]:
        """Split one group so no request holds an address twice or more than ``max_batch`` messages:
        the n-th occurrence of an address goes to the n-th layer, each layer cut to ``max_batch``."""
        layers: dict[int, list[int]] = defaultdict(list)
        seen: dict[str, int] = defaultdict(int)
        for index in indices:
            address = unique[index].to_email.lower()
            layers[seen[address]].append(index)
            seen[address] += 1
        return [
            layer[start : start + self.max_batch]
            for _, layer in sorted(layers.items())
            for start in range(0, len(layer), self.max_batch)
        ]

    def payload(self, messages: Sequence[OutgoingEmail]) -> dict[str, Any]:
        """The v3 request body for messages that share a batch key (see ``_batch_key``)."""
        first = messages[0]
        body: dict[str, Any] = {
            "personalizations": [self._personalization(m) for m in messages],
            "from": _address(self.from_email, self.from_name),
            "categories": categories(first),
        }
        if self.reply_to is not None:
            body["reply_to"] = _address(*self.reply_to)
        if first.sendgrid_template_id is not None:
            body["template_id"] = first.sendgrid_template_id
        else:
            body["subject"] = first.subject
            # SendGrid requires text/plain before text/html when both are present.
            body["content"] = [
                {"type": kind, "value": value}
                for kind, value in (("text/plain", first.text), ("text/html", first.html))
                if value
            ]
        if first.promotional and self.asm_group_id is not None:
            # Only promotional mail joins the unsubscribe group: an order confirmation must still reach
            # someone who unsubscribed from surveys.
            body["asm"] = {"group_id": self.asm_group_id}
        if self.sandbox:
            body["mail_settings"] = {"sandbox_mode": {"enable": True}}
        return body

    @staticmethod
    def _personalization(message: OutgoingEmail) -> dict[str, Any]:
        item: dict[str, Any] = {
            "to": [_address(message.to_email, display_name(message.to_name))],
            "custom_args": custom_args(message),
        }
        if message.promotional and message.unsubscribe_url:
            item["headers"] = {
                "List-Unsubscribe": f"<{message.unsubscribe_url}>",
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            }
        if message.sendgrid_template_id is not None:
            item["dynamic_template_data"] = dict(message.template_data or {})
            if message.subject:
                item["subject"] = message.subject
        return item

    # -- one request ----------------------------------------------------------------------------------

    def _send_chunk(
        self, unique: Sequence[OutgoingEmail], chunk: list[int], *, rounds: int
    ) -> dict[int, SendResult]:
        messages = [unique[i] for i in chunk]
        started = time.monotonic()
        reply = self._post(self.payload(messages))
        elapsed_ms = (time.monotonic() - started) * 1000
        logger.info(
            "sendgrid request: %d message(s), status=%s, %.0f ms%s",
            len(chunk),
            reply.status,
            elapsed_ms,
            f", {_mask_text(reply.error)}" if reply.error else "",
        )
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("sendgrid recipients: %s", ", ".join(mask_email(m.to_email) for m in messages))

        def every(outcome: Outcome, error: str | None = None, **extra: Any) -> dict[int, SendResult]:
            return {i: SendResult(unique[i].ledger_key, outcome, error=error, **extra) for i in chunk}

        if reply.outcome is not None:
            return every(reply.outcome, reply.error)
        status = reply.status
        if status == 202:
            message_id = reply.headers.get("x-message-id") or None
            return every(Outcome.SENT, provider_message_id=message_id)
        if status == 200:
            if self.sandbox:
                return every(Outcome.SENT)  # validated by SendGrid, deliberately not delivered
            return every(Outcome.UNKNOWN, "unexpected 200 from mail/send outside sandbox mode")
        error = f"{status}: {_error_text(reply)}"
        if status == 429:
            return every(Outcome.RETRY, error, retry_after=self._retry_after(reply.headers))
        if status == 413:
            if len(chunk) == 1:
                return every(Outcome.FAILED, error)
            half = len(chunk) // 2
            return {
                **self._send_chunk(unique, chunk[:half], rounds=rounds),
                **self._send_chunk(unique, chunk[half:], rounds=rounds),
            }
        if status == 400 and len(chunk) > 1:
            return self._split_rejected_batch(unique, chunk, reply, error, rounds=rounds)
        if status == 408:
            return every(Outcome.RETRY, error)  # the server gave up before reading the whole request
        if status is not None and 400 <= status < 500:
            return every(Outcome.FAILED, error)
        return every(Outcome.UNKNOWN, error)  # 5xx and anything unexpected: it may have been queued

    def _split_rejected_batch(
        self, unique: Sequence[OutgoingEmail], chunk: list[int], reply: _Reply, error: str, *, rounds: int
    ) -> dict[int, SendResult]:
        """A 400 rejects the whole request. When its errors name personalizations, only those messages
        failed; the others were rejected for their company and are sent again without them."""
        culprits: dict[int, list[str]] = defaultdict(list)
        for item in _errors(reply.body):
            match = _PERSONALIZATION_FIELD.match(str(item.get("field") or ""))
            if match and int(match.group(1)) < len(chunk):
                culprits[chunk[int(match.group(1))]].append(_render_error(item))
        if not culprits or len(culprits) == len(chunk):
            return {i: SendResult(unique[i].ledger_key, Outcome.FAILED, error=error) for i in chunk}
        results = {
            i: SendResult(unique[i].ledger_key, Outcome.FAILED, error="400: " + "; ".join(found))
            for i, found in culprits.items()
        }
        rest = [i for i in chunk if i not in culprits]
        if rounds + 1 >= _MAX_400_ROUNDS:
            note = "batch rejected (400) because of other recipients; nothing was sent"
            results.update({i: SendResult(unique[i].ledger_key, Outcome.RETRY, error=note) for i in rest})
        else:
            results.update(self._send_chunk(unique, rest, rounds=rounds + 1))
        return results

    def _retry_after(self, headers: Mapping[str, str]) -> float:
        """Seconds until SendGrid's rate-limit window resets (``X-RateLimit-Reset`` is epoch seconds),
        plus jitter so that workers do not return in lockstep."""
        wait = 1.0
        reset = headers.get("x-ratelimit-reset")
        retry_after = headers.get("retry-after")
        try:
            if reset is not None:
                wait = float(reset) - self._clock()
            elif retry_after is not None:
                wait = float(retry_after)
        except ValueError:
            pass
        return max(0.0, wait) + self._rng.uniform(0.0, 1.0)

    def _client(self) -> Any:
        """One SendGrid client per thread: python_http_client mutates a shared headers dict per call."""
        api = getattr(self._local, "api", None)
        if api is None:
            api = SendGridAPIClient(api_key=self._api_key, host=self.host)
            # SendGridAPIClient takes no timeout; python_http_client.Client honours this attribute, and it
            # is also passed on every call below.
            api.client.timeout = self.timeout
            self._local.api = api
        return api

    def _post(self, body: dict[str, Any]) -> _Reply:
        try:
            response = self._client().client.mail.send.post(request_body=body, timeout=self.timeout)
        except ProviderHTTPError as exc:
            return _Reply(exc.status_code, _headers(exc.headers), exc.body or b"")
        except urllib.error.HTTPError as exc:  # python_http_client converts these; kept for safety
            return _Reply(exc.code, _headers(exc.headers), exc.read() or b"")
        except urllib.error.URLError as exc:
            # urllib raises URLError only while connecting or writing the request: SendGrid cannot have
            # a complete request, so sending again is safe.
            return _Reply(None, {}, b"", f"not sent: {exc.reason}", Outcome.RETRY)
        except (OSError, http.client.HTTPException) as exc:
            # Raised while waiting for or reading the reply: the request was written and may be queued.
            kind = "timed out waiting for SendGrid" if isinstance(exc, TimeoutError) else "no reply"
            return _Reply(None, {}, b"", f"{kind}: {type(exc).__name__}: {exc}", Outcome.UNKNOWN)
        except Exception as exc:  # a bug must not turn into a blind resend
            logger.exception("unexpected error calling SendGrid")
            return _Reply(None, {}, b"", f"unexpected error: {type(exc).__name__}", Outcome.UNKNOWN)
        return _Reply(response.status_code, _headers(response.headers), response.body or b"")


def _batch_key(message: OutgoingEmail) -> tuple[Any, ...]:
    """Messages with equal keys may share one request: same step, same content or template, same
    promotional flag (it decides the unsubscribe group)."""
    shared = (message.journey, message.step, message.promotional)
    if message.sendgrid_template_id is not None:
        return ("template", message.sendgrid_template_id, *shared)
    return ("content", message.subject, message.html, message.text, *shared)


def _address(email: str, name: str | None) -> dict[str, str]:
    """SendGrid splits an unquoted display name at ``,`` or ``;`` ("García, Ana" then fails the whole
    request: sendgrid-python issue #578), so such names are sent as an RFC 5322 quoted string."""
    if not name:
        return {"email": email}
    if ("," in name or ";" in name) and not (name.startswith('"') and name.endswith('"')):
        name = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return {"email": email, "name": name}


def _headers(raw: Any) -> dict[str, str]:
    """Response headers keyed by lower-case name (HTTP header names are case-insensitive)."""
    if raw is None:
        return {}
    items = raw.items() if hasattr(raw, "items") else raw
    return {str(key).lower(): str(value) for key, value in items}


def _errors(body: bytes) -> list[dict[str, Any]]:
    try:
        parsed = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return []
    errors = parsed.get("errors") if isinstance(parsed, dict) else None
    return [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []


def _render_error(item: Mapping[str, Any]) -> str:
    message = str(item.get("message") or "error")
    return f"{message} (field {item['field']})" if item.get("field") else message


def _error_text(reply: _Reply) -> str:
    """SendGrid's ``{"errors": [{"message", "field", "help"}]}`` as one line, or the raw body."""
    errors = _errors(reply.body)
    if errors:
        return "; ".join(_render_error(e) for e in errors)
    text = reply.body.decode("utf-8", "replace").strip()
    return text[:300] or "no error body"
