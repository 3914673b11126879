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
) -> Sender:
    """SendGrid when a key is configured, otherwise the file outbox, so the demo needs no account."""
    if api_key is None or not api_key.strip():
        return FileOutboxSender(outbox_dir, from_email=from_email)
    from infra.email.sendgrid_sender import SendGridSender  # the sendgrid package only when used

    if host:
        return SendGridSender(
            api_key,
            from_email,
            host=host,
            timeout=timeout,
            concurrency=concurrency,
            passthrough_template_id=passthrough_template_id,
        )
    return SendGridSender(
        api_key,
        from_email,
        timeout=timeout,
        concurrency=concurrency,
        passthrough_template_id=passthrough_template_id,
    )
