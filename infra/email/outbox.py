"""The embedded email channel: every message becomes files in a folder instead of leaving the machine.

Used when no SendGrid key is configured (demo, development, a single worker). The ``.eml`` is a real
RFC 5322 message, so a person can open it in a mail client; the ``.html`` beside it opens in a browser.
The ``.eml`` is created last and exclusively, so it is the commit point: a key whose ``.eml`` exists
was sent, and sending it again changes nothing and reports SENT.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
from collections.abc import Sequence
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import EmailPolicy
from email.utils import formatdate
from pathlib import Path

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
)
from posventa.errors import ConfigError

__all__ = ["FileOutboxSender", "outbox_stem"]

logger = logging.getLogger("posventa.email.outbox")

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def outbox_stem(ledger_key: str) -> str:
    """A file name for ``ledger_key``: readable, bounded in length, and distinct for distinct keys (the
    hash suffix keeps ``a:b`` and ``a_b`` apart after the unsafe characters are replaced)."""
    readable = _UNSAFE.sub("_", ledger_key).strip("._")[:100] or "message"
    digest = hashlib.sha256(ledger_key.encode("utf-8")).hexdigest()[:12]
    return f"{readable}-{digest}"


class FileOutboxSender:
    """Writes ``<stem>.eml`` and ``<stem>.html`` per message into ``directory``; the provider message id
    it reports is the ``.eml`` file name."""

    name = "outbox"

    def __init__(
        self,
        directory: Path | str,
        from_email: str = "posventa@localhost",
        from_name: str | None = "Posventa",
        reply_to: str | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.from_email = from_email
        self.from_name = from_name
        try:
            self.reply_to = mailbox(reply_to) if reply_to else None
        except ValueError as exc:
            raise ConfigError(f"outbox reply_to: {exc}") from None

    def __repr__(self) -> str:
        return f"FileOutboxSender({str(self.directory)!r})"

    def send(self, messages: Sequence[OutgoingEmail]) -> list[SendResult]:
        unique, positions = unique_by_key(messages)
        try:
            if unique:
                self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            error = f"outbox directory unusable: {exc}"
            results = [SendResult(m.ledger_key, Outcome.RETRY, error=error) for m in unique]
        else:
            results = [self._send_one(message) for message in unique]
        return [results[i] for i in positions]

    def _send_one(self, message: OutgoingEmail) -> SendResult:
        problems = message_problems(message)
        if problems:
            return SendResult(message.ledger_key, Outcome.FAILED, error="; ".join(problems))
        stem = outbox_stem(message.ledger_key)
        eml_path = self.directory / f"{stem}.eml"
        if eml_path.exists():
            return self._already_written(eml_path, message)
        try:
            eml = self.render(message, stem)
            _write_atomic(self.directory / f"{stem}.html", message.html.encode("utf-8"), exclusive=False)
            _write_atomic(eml_path, eml, exclusive=True)
        except FileExistsError:
            pass  # another worker committed the same key first: it is sent, once
        except (OSError, ValueError) as exc:
            # Disk full or permissions: nothing was committed, so the same key may be written again.
            logger.warning("outbox write failed for %s: %s", mask_email(message.to_email), exc)
            return SendResult(message.ledger_key, Outcome.RETRY, error=f"outbox write failed: {exc}")
        logger.info("outbox wrote %s for %s", eml_path.name, mask_email(message.to_email))
        return SendResult(message.ledger_key, Outcome.SENT, provider_message_id=eml_path.name)

    @staticmethod
    def _already_written(eml_path: Path, message: OutgoingEmail) -> SendResult:
        """A retry of the same key finds its file: sent, once. A file for another address under the same
        key means two databases share this folder (their enrollment ids collide): never report that
        as sent, or the customer's mail would be silently lost."""
        from email.parser import BytesHeaderParser
        from email.utils import parseaddr

        with eml_path.open("rb") as fh:
            headers = BytesHeaderParser().parse(fh)
        written_to = parseaddr(str(headers.get("To", "")))[1].lower()
        if written_to and written_to != message.to_email.lower():
            error = (
                f"outbox collision: {eml_path.name} already holds a message for another address "
                "(do two databases share this outbox folder?)"
            )
            logger.warning("%s", error)
            return SendResult(message.ledger_key, Outcome.FAILED, error=error)
        return SendResult(message.ledger_key, Outcome.SENT, provider_message_id=eml_path.name)

    def render(self, message: OutgoingEmail, stem: str | None = None) -> bytes:
        """The message as RFC 5322 bytes (CRLF line ends), multipart/alternative text + html."""
        stem = stem or outbox_stem(message.ledger_key)
        eml = EmailMessage()
        eml["From"] = Address(self.from_name or "", addr_spec=self.from_email)
        eml["To"] = Address(display_name(message.to_name) or "", addr_spec=message.to_email)
        if self.reply_to is not None:
            eml["Reply-To"] = Address(self.reply_to[1] or "", addr_spec=self.reply_to[0])
        eml["Subject"] = message.subject
        eml["Date"] = formatdate(localtime=False, usegmt=True)
        eml["Message-ID"] = f"<{stem}@posventa.outbox>"
        eml["X-Posventa-Key"] = message.ledger_key
        eml["X-Posventa-Categories"] = ", ".join(categories(message))
        for key, value in custom_args(message).items():
            if key != "posventa_key":
                eml[f"X-Posventa-Arg-{_UNSAFE.sub('-', key)}"] = value
        if message.promotional and message.unsubscribe_url:
            eml["List-Unsubscribe"] = f"<{message.unsubscribe_url}>"
            eml["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        if message.sendgrid_template_id is not None:
            eml["X-Posventa-SendGrid-Template"] = message.sendgrid_template_id
        text = message.text
        if not text and message.template_data is not None:
            # A dynamic template renders at SendGrid; keep its data readable here instead.
            text = json.dumps(dict(message.template_data), ensure_ascii=False, indent=2, default=str)
        eml.set_content(text or " ")
        if message.html:
            eml.add_alternative(message.html, subtype="html")
        eml["Content-Language"] = message.locale  # after set_content, which clears Content-* headers
        return eml.as_bytes(policy=_EML)


class _Policy(EmailPolicy):
    """SMTP's policy, except that the ``List-Unsubscribe*`` headers are written as they are: folding a
    long URL would RFC 2047-encode it (``=?utf-8?q?<https...?=``), which mail clients do not recognise
    as an unsubscribe link (RFC 2369 wants the bare ``<URL>``, on a folded line if need be)."""

    def fold_binary(self, name: str, value: str) -> bytes:
        if name.lower().startswith("list-unsubscribe") and str(value).isascii():
            return f"{name}: {value}".encode("ascii") + self.linesep.encode("ascii")
        return super().fold_binary(name, value)


_EML = _Policy(linesep="\r\n")  # email.policy.SMTP + the rule above


def _write_atomic(path: Path, data: bytes, *, exclusive: bool) -> None:
    """Write ``data`` to a temporary file and move it into place, so a reader never sees half a file;
    with ``exclusive`` the final name is created by ``link`` and fails if it already exists."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if exclusive:
            os.link(tmp, path)
        else:
            os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
