"""Diagnostics: every problem found in a journey, with the place it was found.

Codes are stable (tools and tests match on them); messages may improve.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

Severity = Literal["error", "warning"]
#: Longest message or hint shown; longer ones (quoting a huge value from the file) are cut with '…'.
MAX_MESSAGE_CHARS = 500


@dataclass(frozen=True, order=True)
class Diagnostic:
    path: str
    line: int
    column: int
    code: str
    message: str
    hint: str | None = None
    severity: Severity = "error"

    def __post_init__(self) -> None:
        for name in ("message", "hint"):
            text = getattr(self, name)
            if text is not None and len(text) > MAX_MESSAGE_CHARS:
                object.__setattr__(self, name, text[: MAX_MESSAGE_CHARS - 1] + "…")

    def render(self) -> str:
        head = f"{self.path}:{self.line}:{self.column}: {self.severity}[{self.code}]: {self.message}"
        return head + (f"\n  hint: {self.hint}" if self.hint else "")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def did_you_mean(word: str, choices: object) -> str | None:
    """A difflib suggestion, phrased for a hint."""
    from difflib import get_close_matches

    options = [str(c) for c in choices]  # type: ignore[attr-defined]
    near = get_close_matches(str(word), options, n=1, cutoff=0.6)
    return f"did you mean '{near[0]}'?" if near else None
