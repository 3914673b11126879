"""Posventa's exceptions: one root, each carrying data and rendering its own message.

    PosventaError
    ├── JourneyError          a journey file cannot be used; carries every Diagnostic found
    ├── EventError            an event is malformed; carries every problem with its field path
    ├── TemplateError         a message template is missing or fails to render
    ├── ExpressionError       a condition does not parse or names an unknown field
    ├── EngineError           a plan and a stored state disagree (e.g. a step id no longer exists)
    ├── ConfigError           a setting is missing or invalid (raised by infra, defined here for the CLI)
    └── LimitError            a condition or template exceeded a sandbox limit (becomes one of the above)

The CLI is the error boundary: it prints these as messages, never as tracebacks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from posventa.diagnostics import Diagnostic


class PosventaError(Exception):
    """Root of every error Posventa raises on purpose."""


class JourneyError(PosventaError):
    def __init__(self, diagnostics: Sequence[Diagnostic]) -> None:
        self.diagnostics = list(diagnostics)
        super().__init__("\n".join(d.render() for d in self.diagnostics))


class EventError(PosventaError):
    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


class TemplateError(PosventaError):
    """``where`` is the template file and line the problem was found at (``es/thank_you.j2:12``), when
    known: it may be a partial the template imports."""

    def __init__(self, template: str, locale: str, message: str, where: str | None = None) -> None:
        self.template, self.locale, self.message, self.where = template, locale, message, where
        super().__init__(f"template '{template}' ({locale}): " + (f"{where}: " if where else "") + message)


class ExpressionError(PosventaError):
    def __init__(self, expression: str, message: str) -> None:
        self.expression, self.message = expression, message
        super().__init__(f"condition '{expression}': {message}")


class EngineError(PosventaError):
    pass


class ConfigError(PosventaError):
    pass


class LimitError(PosventaError):
    """A resource limit of the sandbox (range length, string size, steps, time…) was exceeded. Raised
    inside a condition or a template; surfaces as :class:`ExpressionError` or :class:`TemplateError`."""
