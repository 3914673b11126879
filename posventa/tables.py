"""Plain-text tables and times for the CLI: every command that prints rows (``customer``, ``retry``…)
aligns them here, so columns never run together whatever the values' lengths.

Columns are as wide as their widest cell (header included), two spaces apart; numbers are right-aligned
where the caller says so; the last column is not padded. Times are shown in the business's time zone with
its abbreviation (``2026-03-02 11:05 CET``), never as bare UTC.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import UTC, datetime

from posventa.timeutil import zone

EMPTY = "-"


def table(
    header: Sequence[str],
    rows: Iterable[Sequence[object]],
    *,
    right: Collection[int] = (),
    indent: str = "",
    gap: str = "  ",
) -> list[str]:
    """``header`` and ``rows`` as aligned lines; ``right`` holds the indexes of right-aligned columns.
    ``None`` shows as ``-``; line breaks inside a cell become spaces."""
    cells = [[_cell(v) for v in header]] + [[_cell(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = []
    for r in cells:
        parts = [
            v.rjust(w) if i in right else v.ljust(w) for i, (v, w) in enumerate(zip(r, widths, strict=True))
        ]
        lines.append((indent + gap.join(parts)).rstrip())
    return lines


def _cell(value: object) -> str:
    if value is None:
        return EMPTY
    return " ".join(str(value).split()) if isinstance(value, str) else str(value)


def local_time(at: datetime | str | None, timezone: str) -> str:
    """``at`` (an aware datetime or ISO text; naive means UTC) as ``YYYY-MM-DD HH:MM ZONE`` in
    ``timezone``; ``-`` for none."""
    if at is None or at == "":
        return EMPTY
    when = datetime.fromisoformat(at) if isinstance(at, str) else at
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(zone(timezone)).strftime("%Y-%m-%d %H:%M %Z")
