"""Malformed journeys, one per row: every diagnostic with its exact line, column, code and message.

Each case is a small YAML text checked as ``journeys/case.yaml`` against a temporary templates folder
(see conftest: hello/thank_you/promo/tip/reminder in es+en, only_es, broken, no_html). A row lists
*all* the diagnostics the text must produce — an extra or a missing one fails the case.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from core_helpers import plan_of

from posventa.diagnostics import Diagnostic
from posventa.errors import JourneyError
from posventa.plan import EventRule, ExitStep, RepeatStep, SendStep, WaitStep
from posventa.validate import check_text

PATH = "journeys/case.yaml"
# Four lines; the first step starts on line 5 ("  - id: …", so its first key is at column 5).
HEAD = "name: Case\ntrigger:\n  event: order.placed\nsteps:\n"


@dataclass(frozen=True)
class E:
    """One expected diagnostic."""

    line: int
    col: int
    code: str
    message: str  # a substring of the message
    hint: str | None = None  # a substring of the hint (None: any hint, or none)


CASES: list[tuple[str, str, list[E]]] = [
    # ------------------------------------------------------------------ loading
    (
        "yaml-syntax",
        "name: Case\ntrigger: [order.placed\nsteps: []\n",
        [E(3, 6, "yaml-syntax", "invalid YAML: expected ',' or ']'")],
    ),
    (
        "yaml-tab-indent",
        "name: Case\ntrigger:\n\tevent: order.placed\n",
        [E(3, 1, "yaml-syntax", "found character '\\t'")],
    ),
    (
        "duplicate-key",
        "name: Case\ntrigger:\n  event: order.placed\nname: Again\nsteps:\n  - {id: a, type: exit}\n",
        [E(4, 1, "duplicate-key", "key 'name' appears twice (first at line 1)")],
    ),
    ("empty-file", "", [E(1, 1, "empty-file", "the file is empty")]),
    ("comments-only", "# nothing yet\n", [E(1, 1, "empty-file", "the file is empty")]),
    (
        "non-mapping-file",
        "- name: Case\n- steps: []\n",
        [E(1, 1, "invalid-journey", "must be a mapping with name, trigger and steps")],
    ),
    (
        "merge-key",
        "defaults: &d {name: Case}\n<<: *d\ntrigger: {event: order.placed}\n"
        "steps:\n  - {id: a, type: exit}\n",
        [E(2, 1, "invalid-key", "merge keys ('<<') are not supported")],
    ),
    (
        "recursive-alias",  # once a RecursionError traceback
        "name: Case\ntrigger: {event: order.placed}\nsteps: &s\n  - {id: a, type: exit, extra: *s}\n",
        [E(3, 8, "yaml-syntax", "an alias refers to a collection that contains it")],
    ),
    (
        "unknown-tag",
        HEAD + "  - id: a\n    type: exit\n    reason: !upper done\n",
        [E(7, 13, "yaml-syntax", "the tag '!upper' is not allowed in journeys")],
    ),
    # ------------------------------------------------------------------ envelope
    (
        "missing-name",
        "trigger:\n  event: order.placed\nsteps:\n  - {id: a, type: exit}\n",
        [E(1, 1, "missing-field", "missing required field 'name'")],
    ),
    (
        "missing-trigger",
        "name: Case\nsteps:\n  - {id: a, type: exit}\n",
        [E(1, 1, "missing-field", "missing required field 'trigger'")],
    ),
    (
        "missing-steps",
        "name: Case\ntrigger:\n  event: order.placed\n",
        [E(1, 1, "missing-field", "missing required field 'steps'")],
    ),
    (
        "empty-steps",
        "name: Case\ntrigger:\n  event: order.placed\nsteps: []\n",
        [E(4, 8, "invalid-value", "steps: List should have at least 1 item")],
    ),
    (
        "unknown-top-level-field",
        "name: Case\ndescripton: typo\ntrigger:\n  event: order.placed\nsteps:\n  - {id: a, type: exit}\n",
        [E(2, 1, "unknown-field", "unknown field 'descripton'", "did you mean 'description'?")],
    ),
    (
        "trigger-two-kinds",
        'name: Case\ntrigger:\n  event: order.placed\n  segment: "customer.orders_count > 3"\n'
        "steps:\n  - {id: a, type: exit}\n",
        [E(3, 3, "invalid-value", "exactly one of 'event', 'date' or 'segment' (found event, segment)")],
    ),
    (
        "trigger-no-kind",
        'name: Case\ntrigger:\n  when: "order.total > 10"\nsteps:\n  - {id: a, type: exit}\n',
        [E(3, 3, "invalid-value", "a trigger needs exactly one of 'event', 'date' or 'segment'")],
    ),
    (
        "trigger-offset-needs-date",
        "name: Case\ntrigger:\n  event: order.placed\n  offset: 1d\nsteps:\n  - {id: a, type: exit}\n",
        [E(3, 3, "invalid-value", "'offset' and 'yearly' only apply to a 'date' trigger")],
    ),
    (
        "unknown-event",
        "name: Case\ntrigger:\n  event: order.deliverd\nsteps:\n  - {id: a, type: exit}\n",
        [E(3, 10, "unknown-event", "unknown event 'order.deliverd' (did you mean 'order.delivered'?)")],
    ),
    (
        "unknown-date-field",
        "name: Case\ntrigger:\n  date: customer.birthdy\n  yearly: true\nsteps:\n  - {id: a, type: exit}\n",
        [
            E(
                3,
                9,
                "unknown-date-field",
                "'customer.birthdy' is not a date field (did you mean 'customer.birthday'?)",
            )
        ],
    ),
    (
        "bad-timezone",
        HEAD.replace("steps:\n", "policy:\n  default_timezone: Europe/Madird\nsteps:\n")
        + "  - {id: a, type: exit}\n",
        [E(5, 21, "bad-timezone", "'Europe/Madird' is not an IANA time zone")],
    ),
    (
        "timezone-is-a-region",  # a tzdata folder, not a zone: once an IsADirectoryError traceback
        HEAD.replace("steps:\n", "policy:\n  default_timezone: America\nsteps:\n")
        + "  - {id: a, type: exit}\n",
        [E(5, 21, "bad-timezone", "'America' is not an IANA time zone")],
    ),
    (
        "default-locale-not-in-locales",
        HEAD.replace("steps:\n", "policy:\n  default_locale: en\n  locales: [es]\nsteps:\n")
        + "  - {id: a, type: exit}\n",
        [E(5, 19, "missing-locale", "default locale 'en' is not in policy.locales ['es']")],
    ),
    (
        "unsupported-locale",
        HEAD.replace("steps:\n", "policy:\n  locales: [es, fr]\nsteps:\n") + "  - {id: a, type: exit}\n",
        [E(5, 17, "invalid-value", "'fr' is not allowed for 'locales'; expected 'es' or 'en'")],
    ),
    (
        "frequency-cap-zero",
        HEAD.replace("steps:\n", "policy:\n  frequency_cap: {max: 0, per: 7d}\nsteps:\n")
        + "  - {id: a, type: exit}\n",
        [E(5, 24, "invalid-value", "max: Input should be greater than or equal to 1 (got 0)")],
    ),
    (
        "cooldown-negative",
        HEAD.replace("steps:\n", "entry:\n  cooldown: -3d\nsteps:\n") + "  - {id: a, type: exit}\n",
        [E(5, 13, "bad-duration", "'-3d' must be a positive duration")],
    ),
    # The YAML 1.1 boolean trap: `on` stays the key "on" (else this would be "unknown field 'True'").
    (
        "exit-on-key-is-text",
        HEAD.replace("steps:\n", "exit:\n  on:\n    - order.cancelled\nsteps:\n")
        + "  - {id: a, type: exit}\n",
        [E(6, 7, "unknown-event", "unknown event 'order.cancelled' (did you mean 'order.canceled'?)")],
    ),
    (
        "exit-on-bad-item",
        HEAD.replace("steps:\n", "exit:\n  on: [order.canceled, 5]\nsteps:\n") + "  - {id: a, type: exit}\n",
        [E(5, 24, "invalid-value", "on: expected a valid string or a valid dictionary")],
    ),
    (
        "exit-rule-missing-event",
        HEAD.replace("steps:\n", 'exit:\n  goal: {when: "order.total > 1"}\nsteps:\n')
        + "  - {id: a, type: exit}\n",
        [E(5, 3, "missing-field", "missing required field 'event'")],
    ),
    # ------------------------------------------------------------------ steps, one by one
    (
        "unknown-step-type",
        HEAD + "  - id: a\n    type: sned\n",
        [E(6, 11, "unknown-step-type", "unknown step type 'sned'", "did you mean 'send'?")],
    ),
    (
        "unknown-step-type-far",
        HEAD + "  - id: a\n    type: teleport\n",
        [E(6, 11, "unknown-step-type", "unknown step type 'teleport'", "one of: send, wait, wait_for")],
    ),
    (
        "step-type-not-text",
        HEAD + "  - id: a\n    type: [send]\n",
        [E(6, 11, "unknown-step-type", "unknown step type")],
    ),
    (
        "missing-step-type",
        HEAD + "  - id: a\n    template: hello\n",
        [E(5, 5, "missing-field", "missing required field 'type'", "one of: send, wait")],
    ),
    # The second step lacks its id: reported at that step (line 9), not at `steps:`.
    (
        "missing-step-id",
        HEAD + "  - id: a\n    type: wait\n    duration: 1d\n  - type: exit\n",
        [E(8, 5, "missing-field", "missing required field 'id'")],
    ),
    (
        "invalid-step-id",
        HEAD + "  - id: Thank-You\n    type: exit\n",
        [E(5, 9, "invalid-value", "'Thank-You' is not a valid id", "lower-case letters")],
    ),
    (
        "duplicate-step-id",
        HEAD + "  - id: a\n    type: wait\n    duration: 1d\n  - id: a\n    type: exit\n",
        [E(8, 9, "duplicate-step-id", "step id 'a' is already used by step 1")],
    ),
    (
        "step-not-a-mapping",
        HEAD + "  - exit\n",
        [E(5, 5, "invalid-step", "a step must be a mapping with 'id' and 'type'")],
    ),
    (
        "unknown-step-field",
        HEAD + "  - id: a\n    type: send\n    template: hello\n    category: transactional\n"
        "    chanel: email\n",
        [E(9, 5, "unknown-field", "unknown field 'chanel'", "did you mean 'channel'?")],
    ),
    (
        "misspelt-required-field",
        HEAD + "  - id: a\n    type: send\n    tempalte: hello\n    category: transactional\n",
        [
            E(5, 5, "missing-field", "missing required field 'template'"),
            E(7, 5, "unknown-field", "unknown field 'tempalte'", "did you mean 'template'?"),
        ],
    ),
    (
        "bad-category",
        HEAD + "  - id: a\n    type: send\n    template: hello\n    category: promo\n",
        [E(8, 15, "invalid-value", "'promo' is not allowed for 'category'", "did you mean 'promotional'?")],
    ),
    (
        "sendgrid-template-id-pattern",
        HEAD + "  - id: a\n    type: send\n    template: hello\n"
        "    category: transactional\n    sendgrid_template_id: tmpl-123\n",
        [E(9, 27, "invalid-value", "'tmpl-123' is not a valid sendgrid_template_id")],
    ),
    (
        "bad-duration-words",
        HEAD + "  - id: a\n    type: wait\n    duration: 7 days\n",
        [E(7, 15, "bad-duration", "'7 days' is not a duration; write it like 30m, 12h, 7d")],
    ),
    (
        "bad-duration-negative",
        HEAD + "  - id: a\n    type: wait\n    duration: -3d\n",
        [E(7, 15, "bad-duration", "'-3d' must be a positive duration")],
    ),
    (
        "bad-time",
        HEAD + '  - id: a\n    type: wait\n    at: "25:00"\n',
        [E(7, 9, "bad-time", "'25:00' is not a time of day; write it as HH:MM")],
    ),
    (
        "bad-weekday",
        HEAD + "  - id: a\n    type: wait\n    weekdays: [mon, fry]\n",
        [E(7, 21, "invalid-value", "'fry' is not allowed for 'weekdays'", "did you mean 'fri'?")],
    ),
    (
        "wait-with-nothing",
        HEAD + "  - id: a\n    type: wait\n",
        [E(5, 5, "invalid-value", "a wait needs 'duration', 'until_date', 'at' or 'weekdays'")],
    ),
    (
        "wait-duration-and-until-date",
        HEAD + "  - id: a\n    type: wait\n    duration: 1d\n"
        "    until_date: {field: order.promised_delivery_date}\n",
        [E(5, 5, "invalid-value", "use either 'duration' or 'until_date', not both")],
    ),
    (
        "wait-until-unknown-date-field",
        HEAD + "  - id: a\n    type: wait\n    until_date: {field: order.delivery_date}\n",
        [E(7, 25, "unknown-date-field", "'order.delivery_date' is not a date field")],
    ),
    (
        "wait-for-no-limit",
        HEAD + "  - id: a\n    type: wait_for\n    event: order.delivered\n    on_timeout: b\n"
        "  - {id: b, type: exit}\n",
        [E(5, 5, "invalid-value", "a wait_for needs a 'timeout', a 'deadline', or both")],
    ),
    (
        "action-two-actions",
        HEAD + "  - id: a\n    type: action\n    set_attribute: {vip: true}\n"
        '    webhook: {url: "https://crm.example/hook", event: vip}\n',
        [E(5, 5, "invalid-value", "exactly one of 'set_attribute', 'open_ticket' or 'webhook'")],
    ),
    (
        "set-attribute-list-value",
        HEAD + "  - id: a\n    type: action\n    set_attribute: {tags: [a, b]}\n",
        [E(7, 27, "invalid-value", "'tags' cannot be set to ['a', 'b']", "{from: event.data.<field>}")],
    ),
    (
        "split-weight-zero",
        HEAD + "  - id: s\n    type: split\n    variants:\n      - {name: a, weight: 0, goto: b}\n"
        "  - {id: b, type: exit}\n",
        [E(8, 27, "invalid-value", "weight: Input should be greater than or equal to 1 (got 0)")],
    ),
    (
        "repeat-once",
        HEAD + "  - id: w\n    type: wait\n    duration: 1d\n  - id: r\n    type: repeat\n    from: w\n"
        "    times: 1\n",
        [E(11, 12, "invalid-value", "times: Input should be greater than or equal to 2 (got 1)")],
    ),
    (
        "bad-condition-syntax",
        HEAD + '  - id: a\n    type: branch\n    cases:\n      - when: "event.data.score >>= 9"\n'
        "        goto: b\n  - {id: b, type: exit}\n",
        [E(8, 15, "bad-condition", "does not parse")],
    ),
    # ------------------------------------------------------------------ the step graph
    (
        "goto-target-missing",
        HEAD + "  - id: start\n    type: goto\n    target: referal_ask\n  - id: referral_ask\n"
        "    type: exit\n",
        [
            E(
                7,
                13,
                "unknown-step",
                "goto target 'referal_ask' does not exist",
                "did you mean 'referral_ask'?",
            )
        ],
    ),
    (
        "next-target-missing",
        HEAD + "  - id: a\n    type: send\n    template: hello\n    category: transactional\n"
        "    next: referal_ask\n  - id: referral_ask\n    type: exit\n",
        [
            E(
                9,
                11,
                "unknown-step",
                "next target 'referal_ask' does not exist",
                "did you mean 'referral_ask'?",
            )
        ],
    ),
    (
        "on-timeout-target-missing",
        HEAD + "  - id: a\n    type: wait_for\n    event: feedback.submitted\n"
        "    timeout: 5d\n    on_timeout: remindr\n  - id: reminder\n    type: exit\n",
        [E(9, 17, "unknown-step", "on_timeout target 'remindr' does not exist", "did you mean 'reminder'?")],
    ),
    (
        "otherwise-target-missing",
        HEAD + '  - id: a\n    type: branch\n    cases:\n      - {when: "order.total > 100", '
        "goto: big}\n    otherwise: smal\n  - {id: big, type: exit}\n  - {id: small, type: exit}\n",
        [E(9, 16, "unknown-step", "otherwise target 'smal' does not exist", "did you mean 'small'?")],
    ),
    (
        "variant-target-missing",
        HEAD + "  - id: s\n    type: split\n    variants:\n"
        "      - {name: plain, weight: 50, goto: referal_ask}\n"
        "      - {name: other, weight: 50, goto: referral_ask}\n"
        "  - id: referral_ask\n    type: exit\n",
        [
            E(
                8,
                41,
                "unknown-step",
                "goto target 'referal_ask' does not exist",
                "did you mean 'referral_ask'?",
            )
        ],
    ),
    (
        "self-loop",
        HEAD + "  - id: a\n    type: goto\n    target: a\n",
        [E(7, 13, "self-loop", "step 'a' jumps to itself")],
    ),
    (
        "unreachable-step",
        HEAD + "  - id: a\n    type: exit\n  - id: lost\n    type: send\n    template: hello\n"
        "    category: transactional\n",
        [E(7, 9, "unreachable-step", "step 'lost' can never be reached", "link it with next/goto")],
    ),
    (
        "wait-free-cycle",
        HEAD + "  - id: a\n    type: send\n    template: hello\n    category: transactional\n"
        "  - id: b\n    type: action\n    set_attribute: {n: 1}\n"
        "  - id: back\n    type: goto\n    target: a\n",
        [E(5, 9, "wait-free-cycle", "steps a → b → back → a form a loop with no wait", "add a wait")],
    ),
    (
        "repeat-jumps-forward",
        HEAD + "  - id: r\n    type: repeat\n    from: w\n    times: 2\n  - id: w\n"
        "    type: wait\n    duration: 1d\n",
        [E(7, 11, "invalid-repeat", "repeat 'r' must jump back to an earlier step, not 'w'")],
    ),
    # ------------------------------------------------------------------ conditions
    (
        "condition-unknown-root",
        HEAD + "  - id: a\n    type: branch\n    cases:\n"
        "      - when: \"custmer.locale == 'es'\"\n        goto: b\n  - {id: b, type: exit}\n",
        [E(8, 15, "unknown-name", "condition names unknown value 'custmer'", "did you mean 'customer'?")],
    ),
    (
        "condition-unknown-field",
        HEAD + '  - id: a\n    type: branch\n    cases:\n      - when: "order.totl > 100"\n'
        "        goto: b\n  - {id: b, type: exit}\n",
        [E(8, 15, "unknown-name", "'order' has no field 'totl'", "did you mean 'total'?")],
    ),
    (
        "condition-unknown-event-data",
        HEAD + "  - id: a\n    type: wait_for\n    event: feedback.submitted\n"
        '    match: "event.data.scroe >= 9"\n    timeout: 5d\n    on_timeout: b\n  - {id: b, type: exit}\n',
        [E(8, 12, "unknown-name", "no event carries a data field 'scroe'", "did you mean 'score'?")],
    ),
    (
        "condition-in-trigger",
        'name: Case\ntrigger:\n  event: order.placed\n  when: "custmer.orders_count > 1"\n'
        "steps:\n  - {id: a, type: exit}\n",
        [E(4, 9, "unknown-name", "unknown value 'custmer'", "did you mean 'customer'?")],
    ),
    # ------------------------------------------------------------------ templates
    (
        "missing-template",
        HEAD + "  - id: a\n    type: send\n    template: thank_yu\n    category: transactional\n",
        [E(7, 15, "missing-template", "template 'thank_yu' not found", "did you mean 'thank_you'?")],
    ),
    (
        "missing-locale",
        HEAD + "  - id: a\n    type: send\n    template: only_es\n    category: transactional\n",
        [E(7, 15, "missing-locale", "template 'only_es' has no 'en' version")],
    ),
    (
        "template-does-not-parse",
        HEAD + "  - id: a\n    type: send\n    template: broken\n    category: transactional\n",
        [E(7, 15, "bad-template", "en/broken.j2:1:"), E(7, 15, "bad-template", "es/broken.j2:1:")],
    ),
    (
        "template-lacks-block",
        HEAD + "  - id: a\n    type: send\n    template: no_html\n    category: transactional\n",
        [
            E(7, 15, "bad-template", "en/no_html.j2 does not define the block(s) html"),
            E(7, 15, "bad-template", "es/no_html.j2 does not define the block(s) html"),
        ],
    ),
]


def _diagnostics(text: str, templates_root: Path) -> list[Diagnostic]:
    with pytest.raises(JourneyError) as info:
        check_text(text, PATH, templates_root)
    return info.value.diagnostics


@pytest.mark.parametrize(("text", "expected"), [pytest.param(t, e, id=name) for name, t, e in CASES])
def test_case(text: str, expected: list[E], templates_root: Path) -> None:
    got = _diagnostics(text, templates_root)
    rendered = "\n".join(d.render() for d in got)
    assert [(d.line, d.column, d.code) for d in got] == [(e.line, e.col, e.code) for e in expected], rendered
    for d, e in zip(got, expected, strict=True):
        assert d.path == PATH
        assert e.message in d.message, rendered
        if e.hint is not None:
            assert d.hint is not None and e.hint in d.hint, rendered


def test_there_are_enough_cases() -> None:
    assert len(CASES) >= 35
    assert len({name for name, _, _ in CASES}) == len(CASES)


def test_file_name_is_the_journey_id(templates_root: Path) -> None:
    with pytest.raises(JourneyError) as info:
        check_text(HEAD + "  - {id: a, type: exit}\n", "journeys/Post-Purchase.yaml", templates_root)
    [d] = info.value.diagnostics
    assert (d.line, d.column, d.code) == (1, 1, "bad-journey-id")
    assert "'Post-Purchase' is not a valid journey id" in d.message


def test_collects_every_problem_in_one_file(templates_root: Path) -> None:
    """Envelope and steps are checked independently: a typo in one place hides nothing elsewhere."""
    text = (
        "name: Case\n"  # 1
        "trigger:\n"  # 2
        "  event: order.shiped\n"  # 3
        "polcy: {}\n"  # 4
        "steps:\n"  # 5
        "  - id: a\n"  # 6
        "    type: wait\n"  # 7
        "    duration: 7 days\n"  # 8
        "  - id: b\n"  # 9
        "    type: sned\n"  # 10
        "  - id: c\n"  # 11
        "    type: send\n"  # 12
        "    template: hello\n"  # 13
        "    category: promo\n"  # 14
        "  - type: exit\n"  # 15
    )
    got = _diagnostics(text, templates_root)
    assert [(d.line, d.column, d.code) for d in got] == [
        (3, 10, "unknown-event"),
        (4, 1, "unknown-field"),
        (8, 15, "bad-duration"),
        (10, 11, "unknown-step-type"),
        (14, 15, "invalid-value"),
        (15, 5, "missing-field"),
    ]


def test_collects_every_graph_problem(templates_root: Path) -> None:
    text = HEAD + (
        "  - id: a\n"  # 5
        "    type: goto\n"  # 6
        "    target: nowhere\n"  # 7
        "  - id: r\n"  # 8
        "    type: repeat\n"  # 9
        "    from: w\n"  # 10
        "    times: 2\n"  # 11
        "  - id: w\n"  # 12
        "    type: wait\n"  # 13
        "    duration: 1d\n"  # 14
        "    next: elsewhere\n"  # 15
    )
    got = _diagnostics(text, templates_root)
    assert [(d.line, d.column, d.code) for d in got] == [
        (7, 13, "unknown-step"),
        (10, 11, "invalid-repeat"),
        (15, 11, "unknown-step"),
    ]


def test_cycle_names_every_step_of_the_loop(templates_root: Path) -> None:
    text = HEAD + (
        "  - {id: first, type: wait, duration: 1d}\n"
        "  - {id: ping, type: goto, target: pong}\n"
        "  - {id: pong, type: goto, target: ping}\n"
    )
    [d] = _diagnostics(text, templates_root)
    assert d.code == "wait-free-cycle"
    assert (d.line, d.column) == (6, 10)
    assert "ping → pong → ping" in d.message


def test_rendered_form(templates_root: Path) -> None:
    [d] = _diagnostics(
        HEAD + "  - id: start\n    type: goto\n    target: referal_ask\n  - id: referral_ask\n"
        "    type: exit\n",
        templates_root,
    )
    assert d.render() == (
        "journeys/case.yaml:7:13: error[unknown-step]: goto target 'referal_ask' does not exist\n"
        "  hint: did you mean 'referral_ask'?"
    )
    no_hint = Diagnostic("journeys/x.yaml", 2, 3, "bad-time", "'25:00' is not a time of day")
    assert no_hint.render() == "journeys/x.yaml:2:3: error[bad-time]: '25:00' is not a time of day"
    assert no_hint.to_json() == {
        "path": "journeys/x.yaml",
        "line": 2,
        "column": 3,
        "code": "bad-time",
        "message": "'25:00' is not a time of day",
        "hint": None,
        "severity": "error",
    }


# --------------------------------------------------------------------- things that must stay valid
def test_yaml_1_1_words_stay_words(templates_root: Path) -> None:
    """`on`/`yes`/`no` are not booleans and `10:00` is not the base-60 number 600."""
    plan = plan_of(
        HEAD.replace("steps:\n", "exit:\n  on: [order.canceled]\nsteps:\n")
        + "  - id: w\n    type: wait\n    at: 10:00\n  - id: done\n    type: exit\n    reason: no\n",
        templates_root,
    )
    assert plan.exit.on == (EventRule("order.canceled", None),)
    assert plan.steps["w"] == WaitStep(None, None, "10:00", None, "done")
    assert plan.steps["done"] == ExitStep("no")


def test_dates_stay_text(templates_root: Path) -> None:
    plan = plan_of(HEAD + "  - id: done\n    type: exit\n    reason: 2026-01-01\n", templates_root)
    assert plan.steps["done"] == ExitStep("2026-01-01")


def test_sendgrid_template_needs_no_local_template(templates_root: Path) -> None:
    plan = plan_of(
        HEAD + "  - id: a\n    type: send\n    template: hosted_only\n    category: transactional\n"
        "    sendgrid_template_id: d-0123abcd4567\n",
        templates_root,
    )
    step = plan.steps["a"]
    assert isinstance(step, SendStep) and step.sendgrid_template_id == "d-0123abcd4567"
    assert "hosted_only" not in plan.templates


def test_repeat_back_over_a_wait_is_fine(templates_root: Path) -> None:
    plan = plan_of(
        HEAD + "  - {id: w, type: wait, duration: 1d}\n  - {id: t, type: send, template: tip, "
        "category: promotional}\n  - {id: r, type: repeat, from: w, times: 3}\n",
        templates_root,
    )
    assert plan.steps["r"] == RepeatStep("w", 3, None)
    assert plan.to_json()["steps"]["r"] == {"type": "repeat", "from": "w", "times": 3, "next": None}


@pytest.mark.parametrize(
    ("envelope", "where", "message"),
    [
        (
            "entry: {once_per: order, cooldown: 30d}\n",
            (3, 36),
            "'cooldown' only applies with once_per: customer",
        ),
        ("entry: {once_per: occurrence}\n", None, None),
    ],
)
def test_settings_without_effect_are_warnings_not_errors(
    tmp_path: Path, envelope: str, where: tuple[int, int] | None, message: str | None
) -> None:
    text = "name: x\ntrigger: {event: order.placed}\n" + envelope + "steps:\n  - {id: a, type: exit}\n"
    checked = check_text(text, "journeys/case.yaml", tmp_path)
    if where is None:
        assert checked.warnings == ()
        return
    [w] = checked.warnings
    assert (w.line, w.column, w.code, w.severity) == (*where, "no-effect", "warning")
    assert message in w.message
