"""Careless or hostile input meets a clear error, never a traceback: the sandbox's limits at run time,
the renderer's guarantees (errors name file and line, partials bound once stay per-message, compiled
once per process), durations and dates in range, and the event shapes that used to crash the API."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from posventa import expressions, templates
from posventa.errors import EventError, ExpressionError, TemplateError
from posventa.events import MAX_AMOUNT, parse_event
from posventa.expressions import compile_condition
from posventa.templates import Templates, message_context, sample_context
from posventa.timeutil import MAX_DURATION, parse_date, parse_duration, parse_instant

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "journeys" / "templates"
BLOCKS = (
    "{{% block subject %}}S{{% endblock %}}{{% block text %}}{text}{{% endblock %}}"
    "{{% block html %}}{html}{{% endblock %}}"
)


def _templates(root: Path, files: dict[str, str]) -> Templates:
    for name, body in files.items():
        for locale in ("es", "en"):
            (root / locale).mkdir(parents=True, exist_ok=True)
            (root / locale / f"{name}.j2").write_text(body.replace("LOC/", f"{locale}/"), encoding="utf-8")
    return Templates(root)


def _ctx(name: str = "Ana Pérez", **links: Any) -> dict[str, Any]:
    return message_context(
        customer={"id": "c", "name": name, "email": "a@example.com", "locale": "es"},
        order={"id": "A-1"},
        journey="j",
        step="s",
        links=links,
        brand={"name": "Shop"},
    )


# ---------------------------------------------------------------------------------------- rendering
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{{ customer.name + 1 }}", "TypeError: can only concatenate str"),
        ("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "calls itself without end"),
        ("{{ range(10**6)|list }}", "range() of 1,000,000 numbers"),
        ("{{ customer.name * 10**6 }}", "a repetition making more than 100,000"),
        ("{{ customer.name|center(10**9) }}", "a width or count of 1000000000"),
        ("{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}", "100,000 steps"),
        ("{{ customer.attributes.update({'a': 1}) }}", "is unsafe"),
        ('{% include "LOC/nope.j2" %}', "the template 'es/nope.j2' does not exist"),
    ],
)
def test_a_failing_render_is_a_template_error_naming_file_and_line(
    tmp_path: Path, text: str, expected: str
) -> None:
    body = "{% block subject %}S{% endblock %}\n\n{% block text %}" + text + "{% endblock %}"
    t = _templates(tmp_path, {"bad": body + "{% block html %}H{% endblock %}"})
    with pytest.raises(TemplateError) as info:
        t.render("bad", "es", _ctx())
    assert expected in info.value.message
    assert info.value.where == "es/bad.j2:3"
    assert str(info.value).startswith("template 'bad' (es): es/bad.j2:3: ")


def test_an_error_inside_a_partial_names_the_partial(tmp_path: Path) -> None:
    t = _templates(
        tmp_path,
        {
            "_parts": "{% macro broken() %}\n{{ customer.name + 1 }}{% endmacro %}",
            "uses": BLOCKS.format(
                text='{% import "LOC/_parts.j2" as p with context %}{{ p.broken() }}', html="H"
            ),
        },
    )
    with pytest.raises(TemplateError) as info:
        t.render("uses", "en", _ctx())
    assert info.value.where == "en/_parts.j2:2"


def test_the_time_budget_stops_a_slow_render(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(templates, "RENDER_SECONDS", 0.05)
    slow = "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(40) }}"
    t = _templates(tmp_path, {"slow": BLOCKS.format(text=slow, html="H")})
    with pytest.raises(TemplateError, match="took too long"):
        t.render("slow", "es", _ctx())


def test_a_layout_bound_once_still_reads_each_message(tmp_path: Path) -> None:
    """The layout's top level is constant, so it is bound once; its macros read the message rendered."""
    t = _templates(
        tmp_path,
        {
            "_ui": '{% set GREETING = "Hola" %}'
            "{% macro hi() %}{{ GREETING }} {{ customer.first_name }}{% endmacro %}",
            "msg": BLOCKS.format(
                text='{% import "LOC/_ui.j2" as ui with context %}{{ ui.hi() }}',
                html='{% import "LOC/_ui.j2" as ui with context %}<b>{{ ui.hi() }}</b>',
            ),
        },
    )
    assert t.render("msg", "es", _ctx("Ana")).text == "Hola Ana"
    assert t.render("msg", "es", _ctx("<x>Luis Gil")).html == "<b>Hola &lt;x&gt;Luis</b>"
    _, html = t._load("msg", "es")
    layout = html.environment.get_template("es/_ui.j2")
    assert layout._posventa_bound not in (None, False), "a constant layout is bound once"


def test_a_layout_whose_top_level_reads_the_message_is_imported_per_message(tmp_path: Path) -> None:
    t = _templates(
        tmp_path,
        {
            "_ui": "{% set WHO = customer.first_name %}{% macro hi() %}Hi {{ WHO }}{% endmacro %}",
            "msg": BLOCKS.format(text='{% import "LOC/_ui.j2" as ui with context %}{{ ui.hi() }}', html="H"),
            "late": BLOCKS.format(
                text='{% set extra = "!" %}{% import "LOC/_ui2.j2" as ui with context %}{{ ui.hi() }}',
                html="H",
            ),
            "_ui2": "{% macro hi() %}Hi {{ customer.first_name }}{{ extra }}{% endmacro %}",
        },
    )
    assert t.render("msg", "es", _ctx("Ana")).text == "Hi Ana"
    assert t.render("msg", "es", _ctx("Luis")).text == "Hi Luis"
    # Something set before the import is visible to it: such an import is never the bound one.
    assert t.render("late", "es", _ctx("Eva")).text == "Hi Eva!"


def test_rendering_in_threads_gives_each_message_its_own_data() -> None:
    shared = Templates(SHIPPED)
    contexts = [_ctx(f"Cliente{i} Apellido", support=f"https://help.example/{i}") for i in range(40)]
    expected = [Templates(SHIPPED).render("thank_you", "es", c) for c in contexts]
    results: dict[int, Any] = {}

    def work(offset: int) -> None:
        for round_ in range(5):
            for i in range(offset, len(contexts), 4):
                results[i * 10 + round_] = shared.render("thank_you", "es", contexts[i])

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(results) == 200
    for key, rendered in results.items():
        assert rendered == expected[key // 10]


def test_each_template_is_compiled_once_per_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    compiled: list[str | None] = []
    original = templates._TemplateEnvironment.compile

    def counting(self: Any, source: Any, name: str | None = None, *args: Any, **kwargs: Any) -> Any:
        compiled.append(name)
        return original(self, source, name, *args, **kwargs)

    monkeypatch.setattr(templates._TemplateEnvironment, "compile", counting)
    root = tmp_path / "t"
    _templates(root, {"once": BLOCKS.format(text="{{ customer.name }}", html="<p>{{ customer.name }}</p>")})
    Templates(root).render("once", "es", _ctx())
    assert sorted(compiled) == ["es/once.j2", "es/once.j2"]  # the plain and the HTML environment
    compiled.clear()
    Templates(root).render("once", "es", _ctx())  # a new Templates, as each validate makes: no compile
    assert compiled == []
    (root / "es" / "once.j2").write_text(BLOCKS.format(text="changed", html="H"), encoding="utf-8")
    assert Templates(root).render("once", "es", _ctx()).text == "changed"  # an edit is seen
    assert sorted(compiled) == ["es/once.j2", "es/once.j2"]


def test_every_shipped_template_passes_the_check() -> None:
    t = Templates(SHIPPED)
    for name in t.names():
        for locale in ("es", "en"):
            assert t.check(name, locale) is None, (name, locale)
    assert t.render("thank_you", "es", sample_context("es")).subject


# --------------------------------------------------------------------------------------- conditions
@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("customer.__class__", "the attribute '__class__' starts with '_'"),
        ("customer['_x'] == 1", "the key '_x' starts with '_'"),
        ("_x", "the name '_x' starts with '_'"),
        ("customer|attr('name')", "the 'attr' filter is not allowed"),
        ("customer.name|map(attribute='__len__')|list", "starts with '__'"),
        ("order.total > 10**100000000", "a power of more than 4,096 bits"),
        ("'ab' * 10**9", "a repetition making more than 100,000"),
        ("order.total > 1/0", "ZeroDivisionError"),
        ("x" * 2001, "longer than 2,000 characters"),
        ("(" * 300 + "1" + ")" * 300, "nested too deeply"),
        ("1 }}{% if true %}{{ 1", "chunk after expression"),
    ],
)
def test_a_condition_that_reaches_for_internals_or_explodes_does_not_compile(
    source: str, expected: str
) -> None:
    compile_condition.cache_clear()
    with pytest.raises(ExpressionError) as info:
        compile_condition(source)
    assert expected in info.value.message


def test_ten_to_the_hundred_million_is_refused_at_once() -> None:
    """Jinja's optimizer used to compute this constant while compiling (validate hung)."""
    compile_condition.cache_clear()
    started = datetime.now(UTC)
    with pytest.raises(ExpressionError):
        compile_condition("event.data.score > 10 ** 100000000")
    assert datetime.now(UTC) - started < timedelta(seconds=30)  # a hang guard, not a speed claim


@pytest.mark.parametrize(
    ("source", "context", "expected"),
    [
        ("range(event.data.n)|list", {"event": {"data": {"n": 10**6}}}, "range() of 1,000,000"),
        (
            "customer.name * event.data.n",
            {"customer": {"name": "ab"}, "event": {"data": {"n": 10**6}}},
            "repetition",
        ),
        ("event.data.n ** event.data.n", {"event": {"data": {"n": 10**4}}}, "a power of more than"),
        ("customer.name + 1", {"customer": {"name": "a"}}, "TypeError"),
    ],
)
def test_a_condition_that_explodes_on_data_is_an_expression_error(
    source: str, context: dict[str, Any], expected: str
) -> None:
    with pytest.raises(ExpressionError) as info:
        compile_condition(source)(context)
    assert expected in info.value.message


def test_limits_leave_ordinary_conditions_alone() -> None:
    ctx = {"order": {"total": 120, "items": [1, 2]}, "customer": {"name": "Ana", "locale": "es"}}
    assert compile_condition("order.total > 100 and customer.locale == 'es'")(ctx)
    assert compile_condition("order['items'] | length > 1 and 'a' * 3 == 'aaa'")(ctx)
    assert compile_condition("2 ** 10 == 1024 and (customer.name ~ '!') == 'Ana!'")(ctx)
    assert expressions.MAX_RANGE == 10_000 and expressions.MAX_SEQUENCE == 100_000


# ---------------------------------------------------------------------------------------- time
def test_durations_stop_at_ten_years_whatever_their_size() -> None:
    assert parse_duration("3660d") == MAX_DURATION
    assert parse_duration("-3660d") == -MAX_DURATION
    for text in ("3661d", "523w", "99999999999999999999d", "999999999d", "5270401m", "1" * 5000 + "d"):
        with pytest.raises(ValueError):
            parse_duration(text)


def test_dates_outside_the_calendar_read_as_unknown() -> None:
    assert parse_date("2026-01-05") == date(2026, 1, 5)
    assert parse_date("9999-12-31") is None and parse_date("0001-01-01") is None
    assert parse_instant("9999-12-31T23:59:59-01:00") is None
    assert parse_instant("1850-01-01T00:00:00+00:00") is None
    assert parse_instant("2026-01-05T10:00:00+01:00") == datetime(2026, 1, 5, 9, tzinfo=UTC)


# ---------------------------------------------------------------------------------------- events
BASE = {"id": "e1", "type": "order.placed", "occurred_at": "2026-03-02T09:00:00+01:00", "customer_id": "c1"}

#: Shapes that made ``POST /v1/events`` answer 500 (the database refused them mid-batch) or broke email.
CRASHERS: list[tuple[str, dict[str, Any], str]] = [
    ("NUL in the id", {**BASE, "id": "e\x00"}, "id:"),
    ("NUL in the customer id", {**BASE, "customer_id": "c\x00"}, "customer_id:"),
    ("NUL in a name", {**BASE, "customer": {"id": "c1", "name": "Ana\x00"}}, "customer.name:"),
    (
        "NUL in an attribute",
        {**BASE, "customer": {"id": "c1", "attributes": {"a": ["x\x00"]}}},
        "customer.attributes:",
    ),
    (
        "NUL in an attribute key",
        {**BASE, "order": {"id": "o", "attributes": {"k\x00": 1}}},
        "order.attributes:",
    ),
    (
        "NUL in a comment",
        {**BASE, "type": "feedback.submitted", "data": {"score": 3, "comment": "\x00"}},
        "data.comment:",
    ),
    (
        "CR LF in a name",
        {**BASE, "customer": {"id": "c1", "name": "Ana\r\nBcc: x@example.com"}},
        "customer.name:",
    ),
    ("a lone surrogate", {**BASE, "customer": {"id": "c1", "name": "Ana\ud800"}}, "customer.name:"),
    ("year 1 with an offset", {**BASE, "occurred_at": "0001-01-01T00:00:00+01:00"}, "occurred_at:"),
    ("year 9999 with an offset", {**BASE, "occurred_at": "9999-12-31T23:30:00-01:00"}, "occurred_at:"),
    ("a total beyond NUMERIC(12,2)", {**BASE, "order": {"id": "o", "total": 1e12}}, "order.total:"),
    (
        "an infinite price",
        {**BASE, "order": {"id": "o", "items": [{"sku": "s", "price": float("inf")}]}},
        "price",
    ),
    (
        "NaN in attributes",
        {**BASE, "customer": {"id": "c1", "attributes": {"x": float("nan")}}},
        "customer.attributes:",
    ),
    (
        "a ticket subject over 300",
        {**BASE, "type": "ticket.opened", "data": {"ticket_id": "t", "subject": "s" * 301}},
        "data.subject:",
    ),
    (
        "a ticket id over 128",
        {**BASE, "type": "ticket.opened", "data": {"ticket_id": "t" * 129}},
        "data.ticket_id:",
    ),
    (
        "an unsubscribe source over 40",
        {**BASE, "type": "customer.unsubscribed", "data": {"source": "s" * 41}},
        "data.source:",
    ),
    (
        "a tracking URL over 2000",
        {**BASE, "type": "order.shipped", "order_id": "o", "data": {"tracking_url": "u" * 2001}},
        "data.tracking_url:",
    ),
    (
        "a birthday in year 1",
        {**BASE, "customer": {"id": "c1", "birthday": "0001-01-01"}},
        "customer.birthday:",
    ),
    (
        "a delivery in year 1",
        {
            **BASE,
            "type": "order.delivered",
            "order_id": "o",
            "data": {"delivered_at": "0001-01-01T00:00:00+05:00"},
        },
        "data.delivered_at:",
    ),
    (
        "JSON nested 100 deep",
        {**BASE, "customer": {"id": "c1", "attributes": {"a": [[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]}}},
        "nested",
    ),
    (
        "an integer of 40 digits",
        {**BASE, "customer": {"id": "c1", "attributes": {"n": 10**40}}},
        "out of range",
    ),
]


@pytest.mark.parametrize(("label", "raw", "where"), CRASHERS, ids=[c[0] for c in CRASHERS])
def test_shapes_that_crashed_the_api_are_event_errors(label: str, raw: dict[str, Any], where: str) -> None:
    raw = {**raw, "order_id": raw.get("order_id") or (raw.get("order") or {}).get("id") or "o1"}
    with pytest.raises(EventError) as info:
        parse_event(raw)
    assert any(where in p for p in info.value.problems), info.value.problems


def test_parse_event_raises_only_event_errors_for_odd_shapes() -> None:
    class Weird(dict):  # a mapping whose reading fails
        def get(self, *args: Any) -> Any:
            raise RuntimeError("boom")

    for raw in (None, [], "text", 42, {"data": object()}, Weird(type="order.placed")):
        with pytest.raises(EventError):
            parse_event(raw)  # type: ignore[arg-type]


def test_what_the_store_can_hold_is_still_accepted() -> None:
    event = parse_event(
        {
            **BASE,
            "occurred_at": "2200-12-31T10:00:00+01:00",
            "customer": {
                "id": "c1",
                "name": "Zoë O'Neil-Ñúñez",
                "attributes": {"notes": "line 1\nline 2\t(tab)"},
            },
            "order": {"id": "o1", "total": MAX_AMOUNT, "items": [{"sku": "s", "price": 0}]},
        }
    )
    assert event.order is not None and event.order.total == MAX_AMOUNT


# ---------------------------------------------------------------------------------------- docs
def test_every_limit_in_the_docs_names_a_real_constant_and_a_documented_code() -> None:
    import importlib
    import re

    doc = (REPO / "docs" / "journey-language.md").read_text(encoding="utf-8")
    limits = doc.split("## Limits", 1)[1].split("## Diagnostic codes", 1)[0]
    codes_table = doc.split("## Diagnostic codes", 1)[1]
    rows = re.findall(r"^\| (.+?) \| (.+?) \| `?([\w.—]+)`? \| (.+?) \|$", limits, re.M)
    assert len(rows) >= 15
    for _, _, constant, code in rows:
        if constant.startswith("posventa."):
            module, name = constant.rsplit(".", 1)
            assert hasattr(importlib.import_module(module), name), constant
        for c in re.findall(r"`([a-z-]+)`", code):
            assert f"| `{c}` |" in codes_table, c
