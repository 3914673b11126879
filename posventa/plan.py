"""Compile a checked journey into a frozen, JSON-serialisable plan with a content-hash version.

The plan is what runs: enrollments pin a plan version, so editing a journey never changes the path of a
customer already in it. Everything the engine needs is made explicit here (default ``next`` targets,
durations in seconds, weekday numbers, template digests), so the engine does no parsing at run time.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from posventa.diagnostics import Diagnostic
from posventa.errors import JourneyError, PosventaError
from posventa.timeutil import WEEKDAYS, parse_duration
from posventa.validate import Checked, check_file, successors

PLAN_FORMAT = 1


def _secs(text: str | None) -> int | None:
    return None if text is None else int(parse_duration(text).total_seconds())


def _date_ref(ref: Any) -> dict[str, Any] | None:
    return None if ref is None else {"field": ref.field, "offset_s": _secs(ref.offset)}


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return MappingProxyType({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


def _thaw(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_thaw(v) for v in value]
    return value


@dataclass(frozen=True)
class JourneyPlan:
    """An immutable compiled journey. ``steps`` maps step id → compiled step (read-only mappings)."""

    id: str
    version: str
    name: str
    trigger: Mapping[str, Any]
    entry: Mapping[str, Any]
    exit: Mapping[str, Any]
    policy: Mapping[str, Any]
    start: str
    steps: Mapping[str, Mapping[str, Any]]
    order: tuple[str, ...]
    templates: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    source: str = ""

    def body(self) -> dict[str, Any]:
        return {
            "format": PLAN_FORMAT,
            "id": self.id,
            "name": self.name,
            "trigger": _thaw(self.trigger),
            "entry": _thaw(self.entry),
            "exit": _thaw(self.exit),
            "policy": _thaw(self.policy),
            "start": self.start,
            "order": list(self.order),
            "steps": _thaw(self.steps),
            "templates": _thaw(self.templates),
        }

    def to_json(self) -> dict[str, Any]:
        return {**self.body(), "version": self.version, "source": self.source}

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"

    @property
    def has_promotions(self) -> bool:
        return any(s.get("category") == "promotional" for s in self.steps.values())

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> JourneyPlan:
        if data.get("format") != PLAN_FORMAT:
            raise PosventaError(f"plan format {data.get('format')} is not supported (expected {PLAN_FORMAT})")
        return cls(
            id=data["id"],
            version=data["version"],
            name=data["name"],
            trigger=_freeze(data["trigger"]),
            entry=_freeze(data["entry"]),
            exit=_freeze(data["exit"]),
            policy=_freeze(data["policy"]),
            start=data["start"],
            steps=_freeze(data["steps"]),
            order=tuple(data["order"]),
            templates=_freeze(data.get("templates", {})),
            source=data.get("source", ""),
        )


def version_of(body: Mapping[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _compile_step(step: Any, edges: dict[str, str]) -> dict[str, Any]:
    kind = step.type
    out: dict[str, Any] = {"type": kind}
    if kind == "send":
        out.update(
            template=step.template,
            channel=step.channel,
            category=step.category,
            sendgrid_template_id=step.sendgrid_template_id,
            next=edges.get("next"),
        )
    elif kind == "wait":
        out.update(
            duration_s=_secs(step.duration),
            until_date=_date_ref(step.until_date),
            at=step.at,
            weekdays=[WEEKDAYS.index(d) for d in step.weekdays] if step.weekdays else None,
            next=edges.get("next"),
        )
    elif kind == "wait_for":
        out.update(
            event=step.event,
            match=step.match,
            timeout_s=_secs(step.timeout),
            deadline=_date_ref(step.deadline),
            on_timeout=step.on_timeout,
            next=edges.get("next"),
        )
    elif kind == "branch":
        out.update(
            cases=[{"when": c.when, "goto": c.goto} for c in step.cases], otherwise=edges.get("otherwise")
        )
    elif kind == "split":
        out.update(
            variants=[{"name": v.name, "weight": v.weight, "goto": v.goto} for v in step.variants],
            holdout=step.holdout,
        )
    elif kind == "action":
        if step.set_attribute is not None:
            out.update(action="set_attribute", params=dict(step.set_attribute))
        elif step.open_ticket is not None:
            out.update(action="open_ticket", params=step.open_ticket.model_dump())
        else:
            out.update(action="webhook", params=step.webhook.model_dump())
        out["next"] = edges.get("next")
    elif kind == "goto":
        out.update(target=step.target)
    elif kind == "exit":
        out.update(reason=step.reason)
    elif kind == "repeat":
        out.update(**{"from": step.from_}, times=step.times, next=edges.get("next"))
    return out


def compile_checked(checked: Checked) -> JourneyPlan:
    j = checked.journey
    edges = {sid: dict(targets) for sid, targets in successors(checked.steps).items()}
    steps = {s.id: _compile_step(s, edges[s.id]) for s in checked.steps}
    templates: dict[str, dict[str, str]] = {}
    for s in checked.steps:
        if s.type == "send" and not s.sendgrid_template_id:
            templates[s.template] = {
                loc: checked.templates.digest(s.template, loc) for loc in j.policy.locales
            }
    t = j.trigger
    trigger = {
        "event": t.event,
        "when": t.when,
        "date": t.date,
        "offset_s": _secs(t.offset),
        "yearly": t.yearly,
        "segment": t.segment,
    }
    entry = {"once_per": j.entry.once_per, "cooldown_s": _secs(j.entry.cooldown)}
    exit_rules = [
        {"event": r, "when": None} if isinstance(r, str) else {"event": r.event, "when": r.when}
        for r in j.exit.on
    ]
    goal = None if j.exit.goal is None else {"event": j.exit.goal.event, "when": j.exit.goal.when}
    p = j.policy
    policy = {
        "quiet_hours": None if p.quiet_hours is None else p.quiet_hours.model_dump(),
        "frequency_cap": None
        if p.frequency_cap is None
        else {"max": p.frequency_cap.max, "per_s": _secs(p.frequency_cap.per)},
        "hold_promotions_during_complaint": p.hold_promotions_during_complaint,
        "default_locale": p.default_locale,
        "locales": list(p.locales),
        "default_timezone": p.default_timezone,
    }
    body = {
        "format": PLAN_FORMAT,
        "id": checked.id,
        "name": j.name,
        "trigger": trigger,
        "entry": entry,
        "exit": {"on": exit_rules, "goal": goal},
        "policy": policy,
        "start": checked.steps[0].id,
        "order": [s.id for s in checked.steps],
        "steps": steps,
        "templates": templates,
    }
    return JourneyPlan.from_json({**body, "version": version_of(body), "source": checked.path})


def compile_file(path: Path | str) -> JourneyPlan:
    return compile_checked(check_file(path))


def journey_files(paths: list[Path] | None = None, default: Path | str = "journeys") -> list[Path]:
    """Expand folders into their ``*.yaml``/``*.yml`` files, sorted."""
    out: list[Path] = []
    for p in paths or [Path(default)]:
        if p.is_dir():
            out += sorted([*p.glob("*.yaml"), *p.glob("*.yml")])
        else:
            out.append(p)
    return out


def duplicate_ids(files: list[Path]) -> list[Diagnostic]:
    """The file name is the journey id: ``returns.yaml`` and ``returns.yml`` would replace each other."""
    first: dict[str, Path] = {}
    problems = []
    for f in files:
        if f.stem in first:
            problems.append(
                Diagnostic(
                    str(f),
                    1,
                    1,
                    "duplicate-journey",
                    f"journey '{f.stem}' is also defined by {first[f.stem]}",
                )
            )
        first.setdefault(f.stem, f)
    return problems


def load_plans(directory: Path | str = "journeys") -> dict[str, JourneyPlan]:
    """Compile every journey of a folder; raise JourneyError with all problems of all files."""
    plans: dict[str, JourneyPlan] = {}
    files = journey_files([Path(directory)])
    problems = duplicate_ids(files)
    for f in files:
        try:
            plan = compile_file(f)
        except JourneyError as exc:
            problems += exc.diagnostics
            continue
        plans[plan.id] = plan
    if problems:
        raise JourneyError(problems)
    return plans
