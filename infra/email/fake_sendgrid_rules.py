"""What the fake SendGrid checks in a v3 ``mail/send`` body, with SendGrid's own messages (the fake's
server and faults are in :mod:`infra.email.fake_sendgrid`)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

MAX_RECIPIENTS = 1000
# Looser than the sender's own check on purpose: the fake must not hide a gap in the sender's validation.
_ADDRESS = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def validate(body: Mapping[str, Any]) -> list[tuple[str, str | None]]:
    """SendGrid's request checks that matter to us, with its messages, all collected."""
    errors: list[tuple[str, str | None]] = []
    personalizations = body.get("personalizations")
    has_template = isinstance(body.get("template_id"), str) and bool(body.get("template_id"))
    if not isinstance(personalizations, list) or not personalizations:
        errors.append(("You must have at least one personalization.", "personalizations"))
        personalizations = []
    elif len(personalizations) > MAX_RECIPIENTS:
        errors.append(
            (
                f"The personalization block is limited to {MAX_RECIPIENTS} personalizations per API "
                f"request. You have provided {len(personalizations)} personalizations. Please consider "
                "splitting this into multiple requests and resending your request.",
                "personalizations",
            )
        )
    seen: set[str] = set()
    recipients = 0
    every_subject = True
    for p_index, item in enumerate(personalizations):
        where = f"personalizations.{p_index}"
        if not isinstance(item, dict):
            errors.append(("Each personalization must be an object.", where))
            continue
        every_subject = every_subject and bool(item.get("subject"))
        tos = item.get("to")
        if not isinstance(tos, list) or not tos:
            errors.append(("The to parameter is required for all personalization objects.", f"{where}.to"))
            tos = []
        for kind in ("to", "cc", "bcc"):
            entries = tos if kind == "to" else item.get(kind) or []
            for t_index, entry in enumerate(entries if isinstance(entries, list) else []):
                email = entry.get("email") if isinstance(entry, dict) else None
                field_path = f"{where}.{kind}.{t_index}.email"
                recipients += 1
                if not isinstance(email, str) or not _ADDRESS.fullmatch(email):
                    errors.append(("Does not contain a valid address.", field_path))
                    continue
                name = entry.get("name") if isinstance(entry, dict) else None
                if isinstance(name, str) and ("," in name or ";" in name) and not name.startswith('"'):
                    # Modeled on sendgrid-python issue #578: an unquoted "García, Ana" is split.
                    errors.append(("Does not contain a valid address.", f"{where}.{kind}.{t_index}.name"))
                if email.lower() in seen:
                    errors.append(
                        (
                            "Each unique email address in the personalizations array should only be "
                            "included once. You have included email address more than once.",
                            field_path,
                        )
                    )
                seen.add(email.lower())
        for key, value in (item.get("custom_args") or {}).items():
            if not isinstance(value, str):
                errors.append(
                    (
                        "Invalid type. Expected: string, given: " + type(value).__name__ + ".",
                        f"{where}.custom_args.{key}",
                    )
                )
        for key, value in (item.get("headers") or {}).items():
            if not isinstance(value, str):
                errors.append(("Invalid type. Expected: string.", f"{where}.headers.{key}"))
    if recipients > MAX_RECIPIENTS:
        errors.append(
            (f"There is a limit of {MAX_RECIPIENTS} total recipients (to + cc + bcc) per request.", None)
        )
    sender = body.get("from")
    if not isinstance(sender, dict) or not isinstance(sender.get("email"), str):
        errors.append(
            (
                "The from object must be provided for every email send. It is an object that requires the "
                "email parameter, but may also contain a name parameter.",
                "from.email",
            )
        )
    elif not _ADDRESS.fullmatch(sender["email"]):
        errors.append(("The from email does not contain a valid address.", "from.email"))
    reply_to = body.get("reply_to")
    if reply_to is not None and (
        not isinstance(reply_to, dict)
        or not isinstance(reply_to.get("email"), str)
        or not _ADDRESS.fullmatch(reply_to["email"])
    ):
        errors.append(("The reply_to email does not contain a valid address.", "reply_to.email"))
    asm = body.get("asm")
    if asm is not None and (not isinstance(asm, dict) or type(asm.get("group_id")) is not int):
        errors.append(("The asm.group_id must be an integer.", "asm.group_id"))
    if not has_template and not body.get("subject") and not every_subject:
        errors.append(
            (
                "The subject is required. You can get around this requirement if you use a template with a "
                "subject defined or if every personalization has a subject defined.",
                "subject",
            )
        )
    content = body.get("content")
    if not has_template:
        if not isinstance(content, list) or not content:
            errors.append(
                (
                    "Unless a valid template_id is provided, the content parameter is required. There must "
                    "be at least one defined content block.",
                    "content",
                )
            )
        else:
            types = [c.get("type") if isinstance(c, dict) else None for c in content]
            for c_index, block in enumerate(content):
                if not isinstance(block, dict) or not block.get("value"):
                    errors.append(
                        (
                            "The content value must be a string at least one character in length.",
                            f"content.{c_index}.value",
                        )
                    )
            if "text/plain" in types and types.index("text/plain") != 0:
                errors.append(
                    (
                        "If present, text/plain content must be first, followed by text/html, then any other "
                        "content.",
                        "content",
                    )
                )
    for key, value in (body.get("custom_args") or {}).items():
        if not isinstance(value, str):
            errors.append(("Invalid type. Expected: string.", f"custom_args.{key}"))
    categories = body.get("categories") or []
    if (
        not isinstance(categories, list)
        or len(categories) > 10
        or not all(isinstance(c, str) and 0 < len(c) <= 255 for c in categories)
    ):
        errors.append(("Categories must be up to 10 strings of at most 255 characters.", "categories"))
    sandbox = sandbox_setting(body)
    if sandbox is not None and not isinstance(sandbox, bool):
        errors.append(
            ("The sandbox mode enable param should be a boolean value.", "mail_settings.sandbox_mode.enable")
        )
    return errors


def sandbox_setting(body: Mapping[str, Any]) -> Any:
    """``mail_settings.sandbox_mode.enable`` or None when absent (any other shape counts as invalid)."""
    settings = body.get("mail_settings")
    sandbox = settings.get("sandbox_mode") if isinstance(settings, dict) else None
    if sandbox is None:
        return None
    return sandbox.get("enable") if isinstance(sandbox, dict) else "invalid"
