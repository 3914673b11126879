"""Numbers as people read them in the table and the HTML page (the JSON and CSV keep raw numbers)."""

from __future__ import annotations


def percent(value: float | None, locale: str) -> str:
    """0.4567 → ``45,7 %`` (es) / ``45.7%`` (en); None → ``—``."""
    if value is None:
        return "—"
    text = f"{100 * value:.1f}"
    return text.replace(".", ",") + " %" if locale == "es" else text + "%"


def number(value: float | int | None, locale: str, decimals: int = 0) -> str:
    """Thousands grouped the local way: ``12.345,50`` (es) / ``12,345.50`` (en)."""
    if value is None:
        return "—"
    text = f"{value:,.{decimals}f}"
    if locale == "es":
        text = text.replace(",", "\0").replace(".", ",").replace("\0", ".")
    return text


def count(value: int | None, locale: str) -> str:
    """A funnel count; None (no Event Webhook data for it, ``StepFunnel``'s doc) → ``n/a`` / ``s/d``."""
    return ("s/d" if locale == "es" else "n/a") if value is None else number(value, locale)


def money(value: float | None, locale: str) -> str:
    return number(value, locale, 2)


def duration(seconds: float | None, locale: str) -> str:
    """``45 s``, ``12 min``, ``3,5 h``, ``2,1 d`` — the largest unit that reads as a number above one."""
    if seconds is None:
        return "—"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{number(seconds / size, locale, 1)} {unit}"
    return f"{number(seconds, locale)} s"


def signed_percent_points(value: float | None, locale: str) -> str:
    """A difference of rates in percentage points: ``+3,2 pp``."""
    if value is None:
        return "—"
    text = f"{100 * value:+.1f}"
    return (text.replace(".", ",") if locale == "es" else text) + " pp"
