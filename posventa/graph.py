"""Draw a plan: Mermaid text always, SVG when Graphviz's ``dot`` is installed."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from posventa.plan import JourneyPlan
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


def _label(sid: str, spec: dict) -> str:
    kind = spec["type"]
    if kind == "send":
        return f"{sid}<br/>✉ {spec['template']} ({spec['category']})"
    if kind == "wait":
        parts = []
        if spec.get("duration_s"):
            parts.append(_duration(spec["duration_s"]))
        if spec.get("until_date"):
            parts.append(f"until {spec['until_date']['field']}")
        if spec.get("at"):
            parts.append(f"at {spec['at']}")
        if spec.get("weekdays"):
            parts.append("on " + ",".join(WEEKDAYS[d] for d in spec["weekdays"]))
        return f"{sid}<br/>⏳ {' '.join(parts)}"
    if kind == "wait_for":
        return f"{sid}<br/>⏳ {spec['event']}"
    if kind == "action":
        return f"{sid}<br/>⚙ {spec['action']}"
    if kind == "repeat":
        return f"{sid}<br/>↻ ×{spec['times']}"
    return sid


def edges(plan: JourneyPlan) -> list[tuple[str, str, str]]:
    out: list[tuple[str, str, str]] = []
    for sid in plan.order:
        s = plan.steps[sid]
        kind = s["type"]
        if kind == "wait_for":
            out.append((sid, s["next"] or "END", s["event"]))
            out.append((sid, s["on_timeout"], "timeout"))
        elif kind == "branch":
            out += [(sid, c["goto"], c["when"]) for c in s["cases"]]
            out.append((sid, s["otherwise"] or "END", "otherwise"))
        elif kind == "split":
            out += [(sid, v["goto"], f"{v['name']} {v['weight']}") for v in s["variants"]]
            if s["holdout"]:
                out.append((sid, "END", f"holdout {s['holdout']}%"))
        elif kind == "goto":
            out.append((sid, s["target"], ""))
        elif kind == "repeat":
            out.append((sid, s["from"], f"again (×{s['times']})"))
            out.append((sid, s["next"] or "END", "done"))
        elif kind != "exit":
            out.append((sid, s.get("next") or "END", ""))
    return out


def mermaid(plan: JourneyPlan) -> str:
    start = plan.trigger.get("event") or plan.trigger.get("date") or "segment"
    lines = ["flowchart TD", f'  START(["{start}"])']
    lines.append(f"  START --> {_node(plan.start)}")
    for sid in plan.order:
        spec = dict(plan.steps[sid])
        left, right = _SHAPES[spec["type"]]
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
        label = _label(sid, dict(plan.steps[sid])).replace("<br/>", "\\n").replace('"', "'")
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
