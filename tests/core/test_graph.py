"""Drawing a plan: Mermaid for docs and reviews, dot for SVG."""

from __future__ import annotations

from pathlib import Path

from core_helpers import plan_of

from posventa.graph import dot, edges, mermaid

JOURNEY = """\
name: Drawn
trigger: {event: order.placed}
steps:
  - {id: short, type: wait, duration: 90m}
  - {id: long, type: wait, duration: 1d12h}
  - {id: weekly, type: wait, weekdays: [mon, thu]}
  - {id: node, type: wait, duration: 30m}
  - id: ask
    type: wait_for
    event: feedback.submitted
    timeout: 5d
    on_timeout: end
  - {id: thanks, type: send, template: hello, category: transactional}
  - {id: end, type: exit}
"""


def test_wait_labels_use_the_journey_notation(templates_root: Path) -> None:
    text = mermaid(plan_of(JOURNEY, templates_root))
    assert 'short(["short<br/>⏳ 1h30m"])' in text
    assert 'long(["long<br/>⏳ 1d12h"])' in text
    assert 'weekly(["weekly<br/>⏳ on mon,thu"])' in text
    assert 'node(["node<br/>⏳ 30m"])' in text


def test_step_ids_that_are_keywords(templates_root: Path) -> None:
    """Mermaid ends a block at a node called ``end``; dot reads ``node`` as a keyword."""
    plan = plan_of(JOURNEY, templates_root)
    lines = mermaid(plan).splitlines()
    assert '  End((("end")))' in lines
    assert '  ask -->|"timeout"| End' in lines
    assert "  thanks --> End" in lines
    assert not any(line.split()[-1] == "end" for line in lines[1:])
    graph = dot(plan)
    assert '  "node" [label="node\\n⏳ 30m"];' in graph
    assert '  "ask" -> "end" [label="timeout"];' in graph


def test_edges_make_defaults_explicit(templates_root: Path) -> None:
    plan = plan_of(JOURNEY, templates_root)
    assert edges(plan) == [
        ("short", "long", ""),
        ("long", "weekly", ""),
        ("weekly", "node", ""),
        ("node", "ask", ""),
        ("ask", "thanks", "feedback.submitted"),
        ("ask", "end", "timeout"),
        ("thanks", "end", ""),
    ]


def test_new_keywords_show_in_the_drawing(templates_root: Path) -> None:
    plan = plan_of(
        "name: D\ntrigger: {event: order.placed}\nsteps:\n"
        "  - {id: hi, type: send, template: hello, category: transactional, expires_after: 1d12h}\n"
        "  - id: s\n    type: split\n    holdout: {percent: 10, goto: tip}\n"
        "    variants: [{name: a, weight: 1, goto: x}]\n"
        "  - {id: x, type: exit}\n"
        "  - {id: tip, type: send, template: tip, category: promotional}\n",
        templates_root,
    )
    text = mermaid(plan)
    assert 'hi["hi<br/>✉ hello (transactional, expires after 1d12h)"]' in text
    assert '  s -->|"holdout 10%"| tip' in text.splitlines()
    assert ("s", "tip", "holdout 10%") in edges(plan)
