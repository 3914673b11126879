"""The email channel: senders for the ``app.ports.Sender`` port — a file outbox (embedded default) and
SendGrid v3 (batched, honest about ambiguous outcomes) — a loopback SendGrid fake for tests, and Event
Webhook verification."""

from __future__ import annotations

from pathlib import Path

from infra.email.message import Outcome, OutgoingEmail, Sender, SendResult, mask_email
from infra.email.outbox import FileOutboxSender

__all__ = [
    "FileOutboxSender",
    "Outcome",
    "OutgoingEmail",
    "SendResult",
    "Sender",
    "make_sender",
    "mask_email",
]


def make_sender(
    api_key: str | None,
    host: str | None,
    from_email: str,
    outbox_dir: Path,
    timeout: float = 10.0,
    concurrency: int = 1,
    passthrough_template_id: str | None = None,
    *,
    from_name: str | None = None,
    reply_to: str | None = None,
    asm_group_id: int | None = None,
) -> Sender:
    """SendGrid when a key is configured, otherwise the file outbox, so the demo needs no account. The
    sender's name, the reply-to address and (SendGrid, promotional mail only) the unsubscribe group
    reach every message."""
    if api_key is None or not api_key.strip():
        return FileOutboxSender(outbox_dir, from_email=from_email, from_name=from_name, reply_to=reply_to)
    from infra.email.sendgrid_sender import SENDGRID_HOST, SendGridSender  # sendgrid only when used

    return SendGridSender(
        api_key,
        from_email,
        from_name,
        host=host or SENDGRID_HOST,
        timeout=timeout,
        asm_group_id=asm_group_id,
        concurrency=concurrency,
        passthrough_template_id=passthrough_template_id,
        reply_to=reply_to,
    )
