"""Draw a plan: Mermaid text always, SVG when Graphviz's ``dot`` is installed."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import assert_never

from posventa.plan import (
    ActionStep,
    BranchStep,
    ExitStep,
    GotoStep,
    JourneyPlan,
    RepeatStep,
    SendStep,
    SplitStep,
    Step,
    WaitForStep,
    WaitStep,
)
from posventa.timeutil import WEEKDAYS

_SHAPES = {
    "send": ('["', '"]'),
    "wait": ('(["', '"])'),
    "wait_for": ('(["', '"])'),
    "branch": ('{"', '"}'),
    "split": ('{{"', '"}}'),
    "action": ('[/"', '"/]'),
    "goto": ('(("', '"))'),
    "exit": ('((("', '")))'),
    "repeat": ('[["', '"]]'),
}


def _duration(seconds: int) -> str:
    """``5400`` → ``1h30m``, ``129600`` → ``1d12h`` (the journey's own notation)."""
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    return "".join(f"{n}{unit}" for n, unit in ((days, "d"), (hours, "h"), (minutes, "m")) if n) or "0m"


def _node(sid: str) -> str:
    """Mermaid reads a node called ``end`` as the end of a subgraph; step ids are lower-case."""
    return "End" if sid == "end" else sid


def _label(sid: str, spec: Step) -> str:
    match spec:
        case SendStep():
            expires = f", expires after {_duration(spec.expires_after_s)}" if spec.expires_after_s else ""
            return f"{sid}<br/>✉ {spec.template} ({spec.category}{expires})"
        case WaitStep():
            parts = []
            if spec.duration_s:
                parts.append(_duration(spec.duration_s))
            if spec.until_date:
                parts.append(f"until {spec.until_date.field}")
            if spec.at:
                parts.append(f"at {spec.at}")
            if spec.weekdays:
                parts.append("on " + ",".join(WEEKDAYS[d] for d in spec.weekdays))
            return f"{sid}<br/>⏳ {' '.join(parts)}"
        case WaitForStep():
            return f"{sid}<br/>⏳ {spec.event}"
        case ActionStep():
            return f"{sid}<br/>⚙ {spec.action}"
        case RepeatStep():
            return f"{sid}<br/>↻ ×{spec.times}"
        case BranchStep() | SplitStep() | GotoStep() | ExitStep():
            return sid
        case _:
            assert_never(spec)


def edges(plan: JourneyPlan) -> list[tuple[str, str, str]]:
    """(from, to, label) of every edge; ``END`` is the end of the journey."""
    out: list[tuple[str, str, str]] = []
    for sid in plan.order:
        s = plan.steps[sid]
        match s:
            case WaitForStep():
                out.append((sid, s.next or "END", s.event))
                out.append((sid, s.on_timeout, "timeout"))
            case BranchStep():
                out += [(sid, c.goto, c.when) for c in s.cases]
                out.append((sid, s.otherwise or "END", "otherwise"))
            case SplitStep():
                out += [(sid, v.goto, f"{v.name} {v.weight}") for v in s.variants]
                if s.holdout:
                    out.append((sid, s.holdout_goto or "END", f"holdout {s.holdout}%"))
            case GotoStep():
                out.append((sid, s.target, ""))
            case RepeatStep():
                out.append((sid, s.from_, f"again (×{s.times})"))
                out.append((sid, s.next or "END", "done"))
            case SendStep() | WaitStep() | ActionStep():
                out.append((sid, s.next or "END", ""))
            case ExitStep():
                pass
            case _:
                assert_never(s)
    return out


def after_split(plan: JourneyPlan) -> frozenset[str]:
    """The steps reachable from a split step (its targets and everything they lead to): the only steps
    whose results can differ by split variant. A step before every split is one population."""
    succ: dict[str, list[str]] = {}
    for a, b, _ in edges(plan):
        succ.setdefault(a, []).append(b)
    seen: set[str] = set()
    todo = [b for sid in plan.order if isinstance(plan.steps[sid], SplitStep) for b in succ.get(sid, [])]
    while todo:
        sid = todo.pop()
        if sid in seen or sid not in plan.steps:
            continue
        seen.add(sid)
        todo += succ.get(sid, [])
    return frozenset(seen)


def mermaid(plan: JourneyPlan) -> str:
    start = plan.trigger.event or plan.trigger.date or "segment"
    lines = ["flowchart TD", f'  START(["{start}"])']
    lines.append(f"  START --> {_node(plan.start)}")
    for sid in plan.order:
        spec = plan.steps[sid]
        left, right = _SHAPES[spec.TYPE]
        lines.append(f"  {_node(sid)}{left}{_label(sid, spec)}{right}")
    lines.append('  END((("end")))')
    for a, b, label in edges(plan):
        text = label.replace('"', "'").replace("|", "/")
        a, b = _node(a), _node(b)
        lines.append(f'  {a} -->|"{text}"| {b}' if text else f"  {a} --> {b}")
    return "\n".join(lines)


def dot(plan: JourneyPlan) -> str:
    lines = ["digraph journey {", "  rankdir=TB; node [fontname=Helvetica, shape=box, style=rounded];"]
    for sid in plan.order:
        label = _label(sid, plan.steps[sid]).replace("<br/>", "\\n").replace('"', "'")
        lines.append(f'  "{sid}" [label="{label}"];')  # quoted: 'node', 'edge', 'graph' are dot keywords
    for a, b, label in edges(plan):
        lines.append(f'  "{a}" -> "{b}" [label="{label.replace(chr(34), chr(39))}"];')
    lines.append("}")
    return "\n".join(lines)


def write_svg(plan: JourneyPlan, path: Path) -> Path | None:
    exe = shutil.which("dot")
    if exe is None:
        return None
    svg = subprocess.run([exe, "-Tsvg"], input=dot(plan).encode(), capture_output=True, check=True).stdout
    path.write_bytes(svg)
    return path
