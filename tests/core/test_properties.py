"""Property-based tests (Hypothesis): for any input, the loader, the validator, the duration parser, the
conditions and the event schema answer with a result or their own error — positioned where it applies —
and never with a traceback. Bounded: a fixed number of examples each, a deadline per example, no example
database; together they take about 5 s.
"""

from __future__ import annotations

import json
import math
import string
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from posventa.errors import EventError, ExpressionError, JourneyError
from posventa.events import EVENT_TYPES, MAX_AMOUNT, parse_event
from posventa.expressions import compile_condition
from posventa.loader import LoadFailed, load_bytes, load_text
from posventa.timeutil import MAX_DURATION, MAX_YEAR, MIN_YEAR, parse_duration
from posventa.validate import check_text

TEMPLATES = Path(__file__).resolve().parents[2] / "journeys" / "templates"


def bounded(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=timedelta(seconds=2),
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )


# ------------------------------------------------------------------------------------ journey files
#: Pieces of YAML and of journeys, good and bad, for texts that look like journeys more than random
#: text does (so they reach the later stages of validation).
FRAGMENTS = [
    "name: N\n",
    "trigger:\n",
    "  event: order.placed\n",
    "steps:\n",
    "  - id: a\n",
    "    type: exit\n",
    "    type: send\n",
    "    template: thank_you\n",
    "    category: transactional\n",
    "    type: wait\n",
    "    duration: 3d\n",
    "    duration: 99999999999999999999d\n",
    "    type: branch\n",
    "    cases:\n",
    '      - when: "order.total > 10**9999"\n',
    "        goto: a\n",
    "policy:\n",
    "  locales: [es]\n",
    "- ",
    "  ",
    "\t",
    ": ",
    "{",
    "}",
    "[",
    "]",
    ", ",
    "&a ",
    "*a",
    "&b [*a, *a, *a]",
    "<<: *a\n",
    "? ",
    "!!python/object:os.system ",
    "!!binary ",
    "!!set ",
    "!custom ",
    "'",
    '"',
    "# c\n",
    "---\n",
    "...\n",
    "~",
    "9" * 30,
    ".inf",
    ".nan",
    "0x" + "f" * 30,
    "\x00",
    "\x07",
    "\x85",
    "\ufeff",
    "\ufffe",
    "\u2028",
    "\r\n",
    "\r",
    "%YAML 1.1\n",
    "é",
    "🙂",
    "\n",
]
journey_like = st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=4), max_size=40).map("".join)
any_text = st.text(max_size=300) | journey_like


def _lines(text: str) -> int:
    return text.count("\n") + text.count("\r") + 2


@bounded(300)
@given(any_text)
def test_loading_text_gives_data_or_positioned_diagnostics(text: str) -> None:
    try:
        load_text(text, "p.yaml")
    except LoadFailed as exc:
        assert exc.diagnostics
        for d in exc.diagnostics:
            assert 1 <= d.line <= _lines(text) and d.column >= 1, d.render()


@bounded(200)
@given(st.binary(max_size=300) | journey_like.map(lambda t: t.encode("utf-8", "surrogatepass")))
def test_loading_bytes_gives_data_or_positioned_diagnostics(data: bytes) -> None:
    try:
        load_bytes(data, "p.yaml")
    except LoadFailed as exc:
        for d in exc.diagnostics:
            assert d.line >= 1 and d.column >= 1 and d.path == "p.yaml", d.render()


@bounded(300)
@given(any_text)
def test_validating_any_text_never_raises_anything_but_journey_error(text: str) -> None:
    try:
        check_text(text, "journeys/prop.yaml", TEMPLATES)
    except JourneyError as exc:
        assert exc.diagnostics
        for d in exc.diagnostics:
            assert d.line >= 1 and d.column >= 1, d.render()
            assert d.code != "internal-error", d.render()


# ---------------------------------------------------------------------------------------- durations
@bounded(300)
@given(st.text(alphabet=string.digits + "wdhm+- \t" + "x.", max_size=50) | st.text(max_size=50))
def test_parse_duration_returns_a_bounded_duration_or_a_value_error(text: str) -> None:
    try:
        value = parse_duration(text)
    except ValueError as exc:
        assert str(exc)
    else:
        assert -MAX_DURATION <= value <= MAX_DURATION


@bounded(300)
@given(
    st.sampled_from(["", "+", "-"]),
    st.lists(st.none() | st.integers(0, 10**25), min_size=4, max_size=4),
)
def test_parse_duration_is_exact_up_to_the_limit(sign: str, parts: list[int | None]) -> None:
    if all(p is None for p in parts):
        parts[1] = 0
    text = sign + "".join(f"{n}{unit}" for n, unit in zip(parts, "wdhm", strict=True) if n is not None)
    minutes = sum((n or 0) * unit for n, unit in zip(parts, (10080, 1440, 60, 1), strict=True))
    try:
        value = parse_duration(text)
    except ValueError:
        assert minutes > MAX_DURATION.total_seconds() // 60 or len(text) > 40
    else:
        assert value == (-1 if sign == "-" else 1) * timedelta(minutes=minutes)


# ---------------------------------------------------------------------------------------- conditions
NAMES = [
    "customer.name",
    "customer.locale",
    "customer.attributes.vip",
    "order.total",
    "order['items']",
    "event.data.score",
    "event.data.comment",
    "feedback.score",
    "journey.days_in_journey",
    "_x",
    "customer.__class__",
    "order.total.__class__.__mro__",
    "customer['__init__']",
    "lipsum",
    "range",
]
LITERALS = st.one_of(
    st.integers(-(10**30), 10**30).map(str),
    st.sampled_from(["10**100000000", "10**9", "'x' * 10**9", "1e308", "0", "none", "true", "'a'", "[1, 2]"]),
    st.text(alphabet=string.ascii_letters + " _'\"\\", max_size=8).map(repr),
)
FILTERS = [
    "|length",
    "|int",
    "|string",
    "|list",
    "|sum",
    "|join",
    "|lower",
    "|center(10**9)",
    "|attr('__class__')",
    "|format(1)",
    "|map(attribute='__len__')|list",
    "|first",
    "|default(1)",
]
atoms = (
    st.sampled_from(NAMES) | LITERALS | st.sampled_from(["range(10**6)", "range(5)", "'%0999999999d' % 1"])
)


def _combine(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    binary = st.tuples(
        children,
        st.sampled_from(
            [" + ", " - ", " * ", " ** ", " / ", " // ", " % ", " ~ ", " == ", " < ", " and ", " or ", " in "]
        ),
        children,
    ).map("".join)
    return st.one_of(
        binary,
        children.map(lambda c: f"({c})"),
        children.map(lambda c: f"not {c}"),
        st.tuples(children, st.sampled_from(FILTERS)).map("".join),
        children.map(lambda c: f"{c}.upper()"),
    )


conditions = st.recursive(atoms, _combine, max_leaves=8)
CONTEXTS = [
    {
        "customer": {"name": "Ana", "locale": "es", "attributes": {"vip": True}},
        "order": {"total": 10.5, "items": [1]},
        "event": {"data": {"score": 9, "comment": "x" * 50}},
        "feedback": {},
        "journey": {"days_in_journey": 3},
    },
    {"customer": {}, "order": {}, "event": {"data": {}}, "feedback": {}, "journey": {}},
]


@bounded(300)
@given(conditions | st.text(max_size=120))
def test_conditions_compile_and_evaluate_or_raise_expression_error(source: str) -> None:
    try:
        compiled = compile_condition(source)
    except ExpressionError as exc:
        assert exc.message
        return
    for context in CONTEXTS:
        try:
            assert compiled(context) in (True, False)
        except ExpressionError as exc:
            assert exc.message


# ---------------------------------------------------------------------------------------- events
nasty_text = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["", "\x00", "a\r\nb", "\ud800", "x" * 400, "é🙂", "\x1b[31m", "\t", " "]),
)
nasty_number = st.one_of(
    st.integers(-(10**40), 10**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, -1, 9_999_999_999.99, 10_000_000_000, 1e308]),
)
nasty_instant = st.one_of(
    st.datetimes().map(lambda d: d.isoformat()),
    st.sampled_from(
        [
            "0001-01-01T00:00:00+01:00",
            "9999-12-31T23:59:59-01:00",
            "2026-03-02T09:00:00+01:00",
            "2026-03-02T09:00:00",
            "1899-12-31T23:00:00Z",
            "2200-12-31T23:59:59+00:00",
            "not a date",
        ]
    ),
)
json_values = st.recursive(
    st.none() | st.booleans() | nasty_number | nasty_text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(nasty_text, children, max_size=4),
    max_leaves=12,
)
anything = st.one_of(nasty_text, nasty_number, nasty_instant, json_values)
customers = st.fixed_dictionaries(
    {"id": nasty_text},
    optional={
        "email": nasty_text,
        "name": nasty_text,
        "locale": st.sampled_from(["es", "en", "fr"]),
        "timezone": st.sampled_from(["Europe/Madrid", "Mars/Olympus", "UTC"]),
        "birthday": anything,
        "attributes": json_values,
    },
)
orders = st.fixed_dictionaries(
    {"id": nasty_text},
    optional={
        "total": nasty_number,
        "currency": nasty_text,
        "promised_delivery_date": anything,
        "items": st.lists(
            st.fixed_dictionaries(
                {"sku": nasty_text}, optional={"price": nasty_number, "quantity": nasty_number}
            ),
            max_size=3,
        ),
        "attributes": json_values,
    },
)
events = (
    st.fixed_dictionaries(
        {
            "id": nasty_text,
            "type": st.sampled_from(sorted(EVENT_TYPES)) | nasty_text,
            "occurred_at": nasty_instant,
        },
        optional={
            "customer_id": nasty_text,
            "customer": customers,
            "order_id": nasty_text,
            "order": orders,
            "data": st.dictionaries(
                st.sampled_from(
                    [
                        "score",
                        "comment",
                        "delivered_at",
                        "ticket_id",
                        "subject",
                        "rma_id",
                        "refund_amount",
                        "total",
                        "url",
                        "code",
                        "x",
                    ]
                ),
                anything,
                max_size=4,
            ),
        },
    )
    | json_values
)


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (*_strings(k), *_strings(v))]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


@bounded(300)
@given(events)
def test_an_event_is_storable_or_an_event_error(raw: Any) -> None:
    try:
        event = parse_event(raw)
    except EventError as exc:
        assert exc.problems and all(":" in p for p in exc.problems)
        return
    dumped = event.model_dump(mode="json")
    json.dumps(dumped, allow_nan=False)  # what JSONB and the API can hold
    for text in _strings(dumped):
        assert "\x00" not in text
        text.encode("utf-8")  # no lone surrogate
    assert MIN_YEAR <= event.occurred_at.astimezone(UTC).year <= MAX_YEAR
    if event.customer is not None and event.customer.name is not None:
        assert "\r" not in event.customer.name and "\n" not in event.customer.name
    if event.order is not None and event.order.total is not None:
        assert math.isfinite(event.order.total) and 0 <= event.order.total <= MAX_AMOUNT
