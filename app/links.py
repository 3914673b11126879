"""The links in our emails, signed and verified in one place.

``/s/<token>`` answers a survey with a score, ``/u/<token>`` unsubscribes from promotional mail: both are
signed, expiring capabilities (:mod:`posventa.tokens`), so the pages need no login and no CSRF token.
``/r/<code>`` is a referral link (a code, not a secret). Survey links are signed lazily — a template that
prints no survey link costs no signature (:class:`LazyList`).

Each token names its purpose (:data:`SURVEY`, :data:`UNSUBSCRIBE`) and each page verifies its own: a
survey link's token posted to ``/u/`` unsubscribes nobody. Links sent before tokens carried a purpose
(*legacy* tokens) are still honoured, each only where it was meant to go: a legacy payload is recognised by
its exact set of keys (:data:`LEGACY_SURVEY_KEYS`, :data:`LEGACY_UNSUBSCRIBE_KEYS`), which the two kinds
never shared. They expire like any token (30 and 400 days), so 400 days after the release that added
purposes no legacy token is still valid and the legacy rule can go.

A verified payload is also checked for shape and size (a signed token is ours, but a key that leaked or an
old format must still end on the "invalid link" page, never on an error): wrong types, over-long or
control-character text are ``TokenError("malformed")``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from app.config import Config
from posventa import tokens

SURVEY_TTL = timedelta(days=30)
UNSUBSCRIBE_TTL = timedelta(days=400)
SURVEY_SCORES = 11  # 0…10
#: Token purposes: stored in every link we send, so never renamed.
SURVEY = "survey"
UNSUBSCRIBE = "unsubscribe"
#: The exact payload keys of tokens signed before purposes existed (see the module docstring).
LEGACY_SURVEY_KEYS = frozenset({"k", "c", "o", "s", "j", "x"})
LEGACY_UNSUBSCRIBE_KEYS = frozenset({"c", "e", "j", "k", "x"})
#: Longest text a payload field may hold: the columns its value reaches (ledger key, ids, address).
_LIMITS = {"k": 255, "c": 128, "o": 128, "j": 128, "e": 320}
_CONTROL = re.compile("[\\x00-\\x1f\\x7f-\\x9f\\ud800-\\udfff]")


def _optional(p: Mapping[str, Any], name: str) -> str | None:
    """Field ``name`` of a payload: None when absent or empty, else as :func:`_required`."""
    return None if p.get(name) in (None, "") else _required(p, name)


def _required(p: Mapping[str, Any], name: str) -> str:
    """Field ``name`` of a payload: a non-empty single-line string within its limit."""
    value = p.get(name)
    if not isinstance(value, str) or not value or len(value) > _LIMITS[name] or _CONTROL.search(value):
        raise tokens.TokenError("malformed")
    return value


# --- verified links ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class SurveyLink:
    """A verified ``/s/<token>``: payload k (ledger key), c, o, s (score), j, x (expiry)."""

    payload: Mapping[str, Any]
    ledger_key: str
    customer_id: str
    order_id: str | None
    score: int
    journey: str | None
    expires: int

    @classmethod
    def from_payload(cls, p: Mapping[str, Any]) -> SurveyLink:
        s, x = p.get("s"), p.get("x")
        if isinstance(s, bool) or not isinstance(s, int) or not 0 <= s <= 10 or not isinstance(x, int):
            raise tokens.TokenError("malformed")
        k, c, o, j = _required(p, "k"), _required(p, "c"), _optional(p, "o"), _optional(p, "j")
        return cls(dict(p), k, c, o, s, j, x)

    def for_score(self, score: int, secret: str, now: datetime) -> str:
        """A token for the same survey with another score, expiring when this one does."""
        body = {n: v for n, v in self.payload.items() if n not in ("x", "p")}
        body["s"] = score
        ttl = timedelta(seconds=self.expires - now.timestamp() + 0.5)  # sign() floors to the same second
        return tokens.sign(body, secret, purpose=SURVEY, now=now, ttl=ttl)


@dataclass(frozen=True)
class UnsubscribeLink:
    """A verified ``/u/<token>``: payload c, e (the address the mail went to), j, k."""

    customer_id: str
    email: str | None
    journey: str | None
    ledger_key: str | None

    @classmethod
    def from_payload(cls, p: Mapping[str, Any]) -> UnsubscribeLink:
        return cls(_required(p, "c"), _optional(p, "e"), _optional(p, "j"), _optional(p, "k"))


def _legacy(keys: frozenset[str]) -> Callable[[Mapping[str, Any]], bool]:
    return lambda payload: set(payload) == keys


def verify_survey(token: str, secret: str, now: datetime) -> SurveyLink:
    payload = tokens.verify(token, secret, purpose=SURVEY, now=now, legacy=_legacy(LEGACY_SURVEY_KEYS))
    return SurveyLink.from_payload(payload)


def verify_unsubscribe(token: str, secret: str, now: datetime) -> UnsubscribeLink:
    payload = tokens.verify(
        token, secret, purpose=UNSUBSCRIBE, now=now, legacy=_legacy(LEGACY_UNSUBSCRIBE_KEYS)
    )
    return UnsubscribeLink.from_payload(payload)


# --- signing -------------------------------------------------------------------------------------------
class Links:
    def __init__(self, config: Config) -> None:
        self.config = config

    def survey(
        self, key: str, customer_id: str, order_id: str | None, journey: str, score: int, now: datetime
    ) -> str:
        token = tokens.sign(
            {"k": key, "c": customer_id, "o": order_id, "s": score, "j": journey},
            self.config.secret_key,
            purpose=SURVEY,
            now=now,
            ttl=SURVEY_TTL,
        )
        return f"{self.config.base_url}/s/{token}"

    def unsubscribe(self, key: str, customer_id: str, email: str | None, journey: str, now: datetime) -> str:
        token = tokens.sign(
            {"c": customer_id, "e": email, "j": journey, "k": key},
            self.config.secret_key,
            purpose=UNSUBSCRIBE,
            now=now,
            ttl=UNSUBSCRIBE_TTL,
        )
        return f"{self.config.base_url}/u/{token}"

    def referral(self, code: object) -> str:
        return f"{self.config.base_url}/r/{code}"

    def for_message(
        self, key: str, customer: Mapping[str, Any], order_id: str | None, journey: str, now: datetime
    ) -> dict[str, Any]:
        """``links.*`` for a message's template (``links.referral`` is added by the caller)."""
        cid = customer["id"]
        return {
            "survey": LazyList(SURVEY_SCORES, lambda i: self.survey(key, cid, order_id, journey, i, now)),
            "unsubscribe": self.unsubscribe(key, cid, customer.get("email"), journey, now),
            "referral": None,
            "support": f"mailto:{self.config.email_from}",
            "review": self.review(order_id),
            "shop": self.config.shop_url or None,
        }

    def review(self, order_id: str | None) -> str | None:
        """Where this order's products are reviewed: ``review_url`` with ``{order_id}`` filled in and
        ``{sku}`` kept for the template context to fill per item; the shop when no ``review_url`` is set;
        None when neither is (a template then shows no review button)."""
        pattern = self.config.review_url or self.config.shop_url
        if not pattern:
            return None
        return pattern.replace("{order_id}", quote(order_id or "", safe=""))


class Lazy:
    """A template value computed on first use (printed, tested or compared), then remembered."""

    def __init__(self, make: Callable[[], object]) -> None:
        self._make = make
        self._value: str | None = None

    def __str__(self) -> str:
        if self._value is None:
            self._value = str(self._make())
        return self._value

    def __html__(self) -> str:
        from markupsafe import escape

        return str(escape(str(self)))

    def __bool__(self) -> bool:
        return True

    def __eq__(self, other: object) -> bool:
        return str(self) == str(other)

    def __hash__(self) -> int:
        return hash(str(self))


class LazyList(Sequence[str]):
    """A list whose items are made when a template reads them (11 signed survey links per message
    would otherwise be signed for every email, survey or not)."""

    def __init__(self, n: int, make: Callable[[int], str]) -> None:
        self._n, self._make = n, make
        self._items: dict[int, str] = {}

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self._n))]
        i = index + self._n if index < 0 else index
        if not 0 <= i < self._n:
            raise IndexError(index)
        if i not in self._items:
            self._items[i] = self._make(i)
        return self._items[i]
