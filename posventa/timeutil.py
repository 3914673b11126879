"""Durations, local times and time zones: the small calendar arithmetic journeys need.

The arithmetic cannot overflow because its inputs are bounded: a duration is at most
:data:`MAX_DURATION` (ten years) and every instant or date Posventa accepts lies between
:data:`MIN_YEAR` and :data:`MAX_YEAR` (events are checked on arrival; a stored date outside the range reads
as unknown). The furthest point any computation reaches — 2200 plus ten years plus a week — is nowhere
near ``datetime.max`` (9999), and 1900 minus the same margin is nowhere near ``datetime.min``.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_DURATION = re.compile(r"^\s*(?:(\d+)\s*w)?\s*(?:(\d+)\s*d)?\s*(?:(\d+)\s*h)?\s*(?:(\d+)\s*m)?\s*$")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

#: The longest duration (or offset, either sign) a journey may write: 3660 days, about ten years. Longer
#: waits are mistakes, and the bound keeps date arithmetic far from ``datetime``'s range.
#: Diagnostic: ``bad-duration``.
MAX_DURATION = timedelta(days=3660)
#: A duration's text is at most this long (``1w6d23h59m`` is 10 characters).
MAX_DURATION_CHARS = 40
#: The years an accepted instant or date may fall in. 1900: before it, time zones were local mean times
#: and no customer or order data exists; 2200: far beyond any plausible date, so that adding
#: :data:`MAX_DURATION` or converting between time zones can never leave ``datetime``'s range.
MIN_YEAR, MAX_YEAR = 1900, 2200
_MINUTES = (7 * 24 * 60, 24 * 60, 60, 1)


def parse_duration(text: str) -> timedelta:
    """Parse ``2w``, ``7d``, ``36h``, ``1d12h``, ``90m`` (optionally signed: ``-1d``), at most
    :data:`MAX_DURATION` either way. Raises ValueError with a message for people."""
    raw = str(text).strip()
    if len(raw) > MAX_DURATION_CHARS:
        raise ValueError(f"'{raw[:20]}…' is not a duration: too long ({len(raw)} characters)")
    sign = 1
    if raw.startswith(("+", "-")):  # not raw[:1] in "+-": "" is in every string
        sign = -1 if raw[0] == "-" else 1
        raw = raw[1:]
    m = _DURATION.match(raw)
    if not raw or m is None or not any(m.groups()):
        raise ValueError(f"'{text}' is not a duration; write it like 30m, 12h, 7d, 2w or 1d12h")
    # Compared as whole minutes before timedelta sees them: timedelta overflows past 999,999,999 days.
    minutes = sum(int(g) * unit for g, unit in zip(m.groups(), _MINUTES, strict=True) if g)
    if minutes > MAX_DURATION.total_seconds() // 60:
        raise ValueError(
            f"'{text}' is longer than the longest duration a journey may use, "
            f"{MAX_DURATION.days}d (about ten years)"
        )
    return sign * timedelta(minutes=minutes)


def in_calendar(value: date) -> bool:
    """Whether a date or instant lies in the years Posventa handles (:data:`MIN_YEAR`–:data:`MAX_YEAR`)."""
    return MIN_YEAR <= value.year <= MAX_YEAR


def parse_clock(text: str) -> time:
    """Parse a local time of day ``HH:MM`` (24 h)."""
    m = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", str(text).strip())
    if m is None:
        raise ValueError(f"'{text}' is not a time of day; write it as HH:MM, e.g. 09:30")
    return time(int(m.group(1)), int(m.group(2)))


@lru_cache(maxsize=512)
def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:  # OSError: "Europe" is a tzdata folder
        raise ValueError(f"'{name}' is not an IANA time zone (e.g. Europe/Madrid)") from exc


def utc(dt: datetime) -> datetime:
    if dt.tzinfo is None:
        raise ValueError("naive datetime: Posventa only handles aware datetimes")
    return dt.astimezone(UTC)


def next_local_time(after: datetime, at: time | None, weekdays: frozenset[int] | None, tz: str) -> datetime:
    """The first instant >= ``after`` whose local time in ``tz`` is ``at`` on an allowed weekday."""
    z = zone(tz)
    local = after.astimezone(z)
    target_t = at if at is not None else local.time().replace(second=0, microsecond=0)
    for day in range(0, 8):
        d = local.date() + timedelta(days=day)
        if weekdays is not None and d.weekday() not in weekdays:
            continue
        candidate = datetime.combine(d, target_t, tzinfo=z)
        if at is None and day == 0:
            candidate = local
        if candidate >= local:
            return candidate.astimezone(UTC)
    raise AssertionError("unreachable: a week always has an allowed day")


def in_quiet_hours(moment: datetime, start: time, end: time, tz: str) -> datetime | None:
    """If ``moment`` falls in the quiet window (local), return when it ends; else None."""
    z = zone(tz)
    local = moment.astimezone(z)
    t = local.time()
    if start <= end:
        inside = start <= t < end
        end_day = local.date()
    else:  # wraps midnight, e.g. 21:00-09:00
        inside = t >= start or t < end
        end_day = local.date() + timedelta(days=1) if t >= start else local.date()
    if not inside:
        return None
    return datetime.combine(end_day, end, tzinfo=z).astimezone(UTC)


def parse_date(value: object) -> date | None:
    """Dates in facts arrive as ISO strings or date objects; anything else — or a date outside
    :data:`MIN_YEAR`–:data:`MAX_YEAR` — is 'unknown'."""
    if value is None:
        return None
    if isinstance(value, datetime):
        found = value.date()
    elif isinstance(value, date):
        found = value
    else:
        try:
            found = date.fromisoformat(str(value)[:10])
        except ValueError:
            return None
    return found if in_calendar(found) else None


def parse_instant(value: object) -> datetime | None:
    """An aware instant from a datetime or an ISO string (naive means UTC); anything else — or an instant
    outside :data:`MIN_YEAR`–:data:`MAX_YEAR` — is 'unknown'."""
    if value is None:
        return None
    if isinstance(value, datetime):
        dt = value
    else:
        try:
            dt = datetime.fromisoformat(str(value))
        except ValueError:
            return None
    dt = dt if dt.tzinfo else dt.replace(tzinfo=UTC)
    return dt if in_calendar(dt) else None
