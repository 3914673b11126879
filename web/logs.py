"""What the web app writes to its log, without personal data.

Three layers keep customers' addresses and names out of ``serve``'s log:

* the database never puts them in an error (``infra.db.session``: ``hide_parameters=True`` and the
  database's quoted values withheld), so a failed insert's traceback names the statement, not the row;
* :func:`log_unexpected` writes an unhandled error's traceback with every email address masked
  (``a***@example.com``, :func:`app.ports.mask_email`): an exception's message may quote one;
* :class:`ScrubFilter`, on the handlers ``serve`` installs, applies the same masking to every record,
  uvicorn's own included (a library may log what it was given).
"""

from __future__ import annotations

import logging
import re
import traceback

from app.ports import mask_email

#: An email address inside free text (looser than a valid address on purpose: mask what looks like one).
_EMAIL = re.compile(r"[^\s@<>()\[\]\"'`,;:/\\]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")


def scrub(text: str) -> str:
    """``text`` with every email address masked."""
    return _EMAIL.sub(lambda found: mask_email(found.group()), text)


def log_unexpected(log: logging.Logger, rid: str, method: str, path: str, exc: BaseException) -> None:
    """An unhandled error, its traceback scrubbed; ``path`` must already be redacted (tokens)."""
    trace = scrub("".join(traceback.format_exception(exc)).rstrip())
    log.error("unhandled error rid=%s %s %s\n%s", rid, method, path, trace)


class ScrubFilter(logging.Filter):
    """Masks email addresses in a record's message and traceback before any handler formats it."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a record whose arguments do not fit its format: the handler reports it
            return True
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub(record.exc_text)
        record.msg, record.args = scrub(message), None
        return True


def install_scrubbing(logger: logging.Logger | None = None) -> None:
    """Put a :class:`ScrubFilter` on every handler of ``logger`` (the root logger by default)."""
    target = logger or logging.getLogger()
    for handler in target.handlers:
        if not any(isinstance(f, ScrubFilter) for f in handler.filters):
            handler.addFilter(ScrubFilter())
