"""What every email channel checks and shares: address validity, the problems that stop a message before
any network call, our custom args and categories, and collapsing repeated ledger keys.

The contract itself — :class:`OutgoingEmail`, :class:`Sender`, the four :class:`Outcome` values — is the
use cases' port (:mod:`app.ports`): delivery records a ledger row as ``sending`` before it calls
``Sender.send`` and records the ``SendResult`` after it. ``RETRY`` means nothing left this process,
``UNKNOWN`` means the provider may have it and the ledger must be reconciled before anything is sent again.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from email.utils import parseaddr

from app.ports import Outcome, OutgoingEmail, Sender, SendResult, mask_email

__all__ = [
    "Outcome",
    "OutgoingEmail",
    "SendResult",
    "Sender",
    "display_name",
    "mailbox",
    "mask_email",
    "message_problems",
    "valid_address",
]


# Deliberately ASCII-only: SendGrid's v3 API rejects SMTPUTF8 local parts, and IDN domains must arrive
# as punycode (``xn--``). Quoted local parts are legal in RFC 5322 but no customer uses them.
_LOCAL = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_TLD = r"(?:[A-Za-z]{2,63}|xn--[A-Za-z0-9-]{1,59})"
_ADDRESS = re.compile(rf"(?:{_LOCAL})@(?:{_LABEL}\.)+{_TLD}")
_URL = re.compile(r"https?://[^\s<>\"]+")
_CUSTOM_ARG_KEY = "posventa_key"


def valid_address(address: str) -> bool:
    """Whether SendGrid would accept ``address``: one invalid address makes it reject a whole batch."""
    if len(address) > 254 or not _ADDRESS.fullmatch(address):
        return False
    return len(address.rsplit("@", 1)[0]) <= 64


def mailbox(text: str) -> tuple[str, str | None]:
    """``Soporte <ayuda@tienda.example>`` or a bare address → (address, display name or None); ValueError
    when it holds no valid address (a setting such as ``POSVENTA_REPLY_TO``)."""
    name, address = parseaddr(text.strip())
    if not valid_address(address) or "\r" in name or "\n" in name:
        raise ValueError(f"not an email address: {mask_email(text.strip())}")
    return address, name.strip() or None


#: Never in a display name: C0/C1 controls (CR and LF end a header), DEL, lone surrogates.
_NOT_IN_NAME = re.compile("[\\x00-\\x1f\\x7f-\\x9f\\ud800-\\udfff]+")


def display_name(name: str | None) -> str | None:
    """A customer's name as the display name of a header (``To: Ana García <ana@…>``).

    The events API refuses names with line breaks or control characters, but older releases stored some;
    such a name must not make every email to that customer fail. Each run of them becomes one space, the
    result is trimmed, and None is returned when nothing is left (the header is then the bare address)."""
    if not name:
        return None
    cleaned = " ".join(_NOT_IN_NAME.sub(" ", name).split())
    return cleaned or None


def message_problems(message: OutgoingEmail) -> list[str]:
    """Why ``message`` must not be sent at all (empty when it may be), checked before any network call."""
    problems: list[str] = []
    if not message.ledger_key:
        problems.append("ledger_key is empty")
    if not valid_address(message.to_email):
        problems.append(f"invalid recipient address {mask_email(message.to_email)}")
    if "\r" in message.subject or "\n" in message.subject:
        problems.append("subject contains a line break")
    if message.promotional:
        # RFC 8058 one-click unsubscribe is required of bulk senders by Gmail and Yahoo.
        if not message.unsubscribe_url:
            problems.append("promotional message without unsubscribe_url")
        elif not _URL.fullmatch(message.unsubscribe_url):
            problems.append("unsubscribe_url is not an absolute http(s) URL")
    if message.sendgrid_template_id is None:
        if not message.subject.strip():
            problems.append("subject is empty")
        if not message.html and not message.text:
            problems.append("message has neither html nor text")
    for key, value in message.extra_custom_args.items():
        if key == _CUSTOM_ARG_KEY:
            problems.append(f"extra_custom_args may not override {_CUSTOM_ARG_KEY}")
        if not isinstance(value, str):
            problems.append(f"custom arg {key!r} is not a string")
    return problems


def custom_args(message: OutgoingEmail) -> dict[str, str]:
    """The arguments SendGrid echoes back in every webhook event, our key first."""
    return {**dict(message.extra_custom_args), _CUSTOM_ARG_KEY: message.ledger_key}


def categories(message: OutgoingEmail) -> list[str]:
    return [message.journey, f"{message.journey}:{message.step}"]


def unique_by_key(messages: Sequence[OutgoingEmail]) -> tuple[list[OutgoingEmail], list[int]]:
    """Collapse repeats of a ledger key so it is sent once; returns the unique messages and, for each input
    position, the index of its unique message (a repeated key then gets the same result, never a second
    delivery nor a contradicting outcome for the same ledger row)."""
    first: dict[str, int] = {}
    unique: list[OutgoingEmail] = []
    positions: list[int] = []
    for message in messages:
        if message.ledger_key not in first:
            first[message.ledger_key] = len(unique)
            unique.append(message)
        positions.append(first[message.ledger_key])
    return unique, positions
