"""Charts as inline SVG: Altair (Vega-Lite) specifications rendered by ``vl-convert`` (no browser, no
network: the report must work offline), and the journey diagram by Graphviz ``dot`` when it is installed.

Every function returns SVG markup (a string starting with ``<svg``) or None when there is nothing to draw
or, for the diagram, no ``dot``: the page then shows the numbers as a table instead.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Sequence

import altair as alt
import vl_convert as vlc

from infra.report.i18n import label
from infra.report.model import DeliveryCounts, JourneyFunnel, NpsCounts

#: Funnel stages in order, as bars per step.
FUNNEL_STAGES = ("entered", "sent", "delivered", "opened", "clicked", "converted")
_WIDTH = 560
_FONT = "Helvetica, Arial, sans-serif"
_SVG_START = re.compile(r"<svg\b")
_DOT_TIMEOUT_S = 30


def _svg(chart: alt.TopLevelMixin) -> str:
    spec = chart.configure(font=_FONT).configure_view(stroke=None).to_dict()
    return str(vlc.vegalite_to_svg(spec))


def funnel_chart(journey: JourneyFunnel, locale: str) -> str | None:
    """Horizontal bars per step (all variants together): entered → sent → delivered → opened → clicked →
    converted, the way a marketer reads a flow."""
    # a stage with no data (no Event Webhook events: None) is left out, not drawn as zero
    stages = [s for s in FUNNEL_STAGES if all(getattr(st, s) is not None for st in journey.steps)]
    totals: dict[str, dict[str, int]] = {}
    for st in journey.steps:
        step = totals.setdefault(st.step_id, dict.fromkeys(stages, 0))
        for stage in stages:
            step[stage] += int(getattr(st, stage))
    if not totals or not any(v for step in totals.values() for v in step.values()):
        return None
    stage_names = [label(s, locale) for s in stages]
    rows = [
        {"step": step, "stage": label(stage, locale), "order": i, "count": values[stage]}
        for step, values in totals.items()
        for i, stage in enumerate(stages)
    ]
    steps = list(totals)
    chart = (
        alt.Chart(alt.Data(values=rows), title=f"{label('chart_funnel', locale)}: {journey.journey_id}")
        .mark_bar()
        .encode(
            y=alt.Y("step:N", sort=steps, title=label("step_id", locale)),
            yOffset=alt.YOffset("stage:N", sort=stage_names),
            x=alt.X("count:Q", title=label("chart_count", locale)),
            color=alt.Color("stage:N", sort=stage_names, title=label("chart_stage", locale)),
            tooltip=["step:N", "stage:N", "count:Q"],
        )
        .properties(width=_WIDTH, height=alt.Step(7))
    )
    return _svg(chart)


def nps_chart(weeks: Sequence[NpsCounts], locale: str) -> str | None:
    """NPS per ISO week on a −100…100 scale, the number of answers as the points' size."""
    rows = [{"week": w.key, "nps": w.nps, "responses": w.responses} for w in weeks if w.nps is not None]
    if not rows:
        return None
    base = alt.Chart(alt.Data(values=rows), title=label("chart_nps", locale)).encode(
        x=alt.X("week:O", title=label("week", locale)),
        y=alt.Y("nps:Q", title="NPS", scale=alt.Scale(domain=[-100, 100])),
    )
    chart = base.mark_line() + base.mark_point(filled=True).encode(
        size=alt.Size("responses:Q", title=label("responses", locale))
    )
    return _svg(chart.properties(width=_WIDTH, height=220))


def on_time_chart(weeks: Sequence[DeliveryCounts], locale: str) -> str | None:
    """Share of deliveries on or before the promised day, per ISO week of delivery."""
    rows = [
        {"week": w.key, "rate": w.on_time_rate, "delivered": w.delivered}
        for w in weeks
        if w.on_time_rate is not None
    ]
    if not rows:
        return None
    base = alt.Chart(alt.Data(values=rows), title=label("chart_on_time", locale)).encode(
        x=alt.X("week:O", title=label("week", locale)),
        y=alt.Y(
            "rate:Q",
            title=label("on_time_rate", locale),
            scale=alt.Scale(domain=[0, 1]),
            axis=alt.Axis(format="%"),
        ),
    )
    chart = base.mark_line() + base.mark_point(filled=True).encode(
        size=alt.Size("delivered:Q", title=label("delivered", locale))
    )
    return _svg(chart.properties(width=_WIDTH, height=220))


# --- the journey diagram ----------------------------------------------------------------------------------
def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', "'")


def diagram_dot(journey: JourneyFunnel, locale: str) -> str:
    """The journey as Graphviz DOT: each step with its type, what it does and its counts."""
    lines = [
        "digraph journey {",
        '  rankdir=TB; bgcolor="transparent";',
        f'  node [fontname="{_FONT}", fontsize=10, shape=box, style="rounded,filled", fillcolor="#f4f6fb"];',
        f'  edge [fontname="{_FONT}", fontsize=9, color="#667085"];',
        f'  "START" [label="{_quote(journey.journey_id)}", shape=oval, fillcolor="#dbe7ff"];',
        '  "END" [label="", shape=doublecircle, width=0.25, fillcolor="#d0d5dd"];',
    ]
    for node in journey.nodes:
        text = [node.step_id, f"{node.type}" + (f": {node.detail}" if node.detail else "")]
        if node.reached is not None:
            text.append(f"{label('reached', locale)} {node.reached}")
        if node.here_now:
            text.append(f"{label('here_now', locale)} {node.here_now}")
        fill = "#e7f6ec" if node.reached else "#f4f6fb"
        text_label = "\\n".join(_quote(t) for t in text)  # DOT's own line break
        lines.append(f'  "{_quote(node.step_id)}" [label="{text_label}", fillcolor="{fill}"];')
    if journey.nodes:
        lines.append(f'  "START" -> "{_quote(journey.nodes[0].step_id)}";')
    for edge in journey.edges:
        shown = edge.label if edge.condition is None else f"{label('condition', locale)} {edge.condition}"
        attrs = f'label="{_quote(shown)}"'
        if edge.title:  # the full condition on hover (SVG <title> of the arrow and of its label)
            attrs += f', tooltip="{_quote(edge.title)}", labeltooltip="{_quote(edge.title)}"'
        lines.append(f'  "{_quote(edge.source)}" -> "{_quote(edge.target)}" [{attrs}];')
    lines.append("}")
    return "\n".join(lines)


def _clean_graphviz_svg(svg: str) -> str:
    """Graphviz writes an XML prolog, a DOCTYPE and ids (graph0, node1…) that would repeat across the
    page's diagrams: keep the ``<svg>`` element, without ids."""
    match = _SVG_START.search(svg)
    body = svg[match.start() :] if match else svg
    body = re.sub(r"<!--.*?-->", "", body, flags=re.S)
    return re.sub(r'\sid="[^"]*"', "", body)


def diagram_svg(journey: JourneyFunnel, locale: str, dot: str | None = None) -> str | None:
    """The diagram as SVG through Graphviz; None when ``dot`` is not installed or the journey has no plan."""
    exe = dot or shutil.which("dot")
    if exe is None or not journey.nodes:
        return None
    source = diagram_dot(journey, locale)
    try:
        done = subprocess.run(
            [exe, "-Tsvg"], input=source.encode(), capture_output=True, check=False, timeout=_DOT_TIMEOUT_S
        )
    except (OSError, subprocess.TimeoutExpired):
        return None  # not runnable after all: the page shows the table
    if done.returncode != 0:
        return None
    return _clean_graphviz_svg(done.stdout.decode("utf-8", "replace"))
