"""Amounts as a customer reads them in their language: ``1.234,50 €`` (es), ``€1,234.50`` (en).

Templates use it as the ``money`` filter (``{{ order.total|money(order.currency) }}``), in the
template's locale; a currency without a symbol here is shown by its code (``1.234,50 MXN``, ``MXN
1,234.50``). Two decimals always: prices are quoted to the cent.
"""

from __future__ import annotations

from typing import Any

from jinja2 import pass_context
from jinja2.runtime import Context

SYMBOLS = {"EUR": "€", "USD": "US$", "GBP": "£", "CHF": "CHF", "JPY": "¥"}


def money(amount: float | int, currency: str | None, locale: str | None) -> str:
    """``amount`` in ``currency`` the way ``locale`` writes it (English for any locale but Spanish)."""
    digits = f"{amount:,.2f}"
    code = (currency or "").upper()
    symbol = SYMBOLS.get(code, code)
    if (locale or "").startswith("es"):
        digits = digits.replace(",", "\0").replace(".", ",").replace("\0", ".")
        return f"{digits} {symbol}".rstrip()
    if not symbol:
        return digits
    return f"{symbol}{digits}" if len(symbol) <= 3 and not symbol.isalpha() else f"{symbol} {digits}"


@pass_context
def money_filter(context: Context, amount: Any, currency: str | None = None) -> str:
    """The ``money`` template filter: the template's locale folder decides (``es/_layout.j2``: Spanish,
    also in a macro imported without context), else the message's ``locale``; a non-number renders as
    is."""
    if isinstance(amount, bool) or not isinstance(amount, int | float):
        return "" if amount is None else str(amount)
    folder = (context.name or "").partition("/")
    return money(amount, currency, folder[0] if folder[1] else context.get("locale"))
