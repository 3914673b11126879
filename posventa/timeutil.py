"""Durations, local times and time zones: the small calendar arithmetic journeys need."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_DURATION = re.compile(r"^\s*(?:(\d+)\s*w)?\s*(?:(\d+)\s*d)?\s*(?:(\d+)\s*h)?\s*(?:(\d+)\s*m)?\s*$")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def parse_duration(text: str) -> timedelta:
    """Parse ``2w``, ``7d``, ``36h``, ``1d12h``, ``90m`` (optionally signed: ``-1d``)."""
    raw = str(text).strip()
    sign = 1
    if raw[:1] in "+-":
        sign = -1 if raw[0] == "-" else 1
        raw = raw[1:]
    m = _DURATION.match(raw)
    if not raw or m is None or not any(m.groups()):
        raise ValueError(f"'{text}' is not a duration; write it like 30m, 12h, 7d, 2w or 1d12h")
    w, d, h, mi = (int(g) if g else 0 for g in m.groups())
    return sign * timedelta(weeks=w, days=d, hours=h, minutes=mi)


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
    """Dates in facts arrive as ISO strings or date objects; anything else is 'unknown'."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def parse_instant(value: object) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    try:
        dt = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)
