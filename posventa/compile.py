"""Compile a checked journey into its plan (:mod:`posventa.plan`), with a content-hash version.

Everything the engine needs is made explicit here — default ``next`` targets, durations in seconds,
weekday numbers, template digests — so the engine does no parsing at run time. This is the only module
that knows both the language (:mod:`posventa.schema`, checked by :mod:`posventa.validate`) and the plan.
"""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType
from typing import assert_never

from posventa import plan as p
from posventa import schema as s
from posventa.diagnostics import Diagnostic
from posventa.errors import JourneyError
from posventa.plan import JourneyPlan, version_of
from posventa.timeutil import WEEKDAYS, parse_duration
from posventa.validate import Checked, check_file, successors


def _secs(text: str | None) -> int | None:
    return None if text is None else int(parse_duration(text).total_seconds())


def _date_ref(ref: s.DateRef | None) -> p.DateRef | None:
    return None if ref is None else p.DateRef(ref.field, _secs(ref.offset) or 0)


def _action(step: s.ActionStep, nxt: str | None) -> p.ActionStep:
    if step.set_attribute is not None:
        values = {
            name: {"from": value.from_} if isinstance(value, s.CopyFrom) else value
            for name, value in step.set_attribute.items()
        }
        return p.ActionStep("set_attribute", MappingProxyType(values), nxt)
    if step.open_ticket is not None:
        return p.ActionStep("open_ticket", MappingProxyType(step.open_ticket.model_dump()), nxt)
    assert step.webhook is not None  # the model checks that exactly one action is given
    return p.ActionStep("webhook", MappingProxyType(step.webhook.model_dump()), nxt)


def compile_step(step: s.StepModel, edges: dict[str, str]) -> p.Step:
    """One checked step as it runs; ``edges`` are its targets with the defaults made explicit."""
    nxt = edges.get("next")
    match step:
        case s.SendStep():
            return p.SendStep(
                step.template,
                step.channel,
                step.category,
                step.sendgrid_template_id,
                nxt,
                expires_after_s=_secs(step.expires_after),
            )
        case s.WaitStep():
            weekdays = tuple(WEEKDAYS.index(d) for d in step.weekdays) if step.weekdays else None
            return p.WaitStep(_secs(step.duration), _date_ref(step.until_date), step.at, weekdays, nxt)
        case s.WaitForStep():
            return p.WaitForStep(
                step.event, step.match, _secs(step.timeout), _date_ref(step.deadline), step.on_timeout, nxt
            )
        case s.BranchStep():
            cases = tuple(p.Case(c.when, c.goto) for c in step.cases)
            return p.BranchStep(cases, edges.get("otherwise"))
        case s.SplitStep():
            variants = tuple(p.Variant(v.name, v.weight, v.goto) for v in step.variants)
            return p.SplitStep(variants, step.holdout_percent, holdout_goto=step.holdout_goto)
        case s.ActionStep():
            return _action(step, nxt)
        case s.GotoStep():
            return p.GotoStep(step.target)
        case s.ExitStep():
            return p.ExitStep(step.reason)
        case s.RepeatStep():
            return p.RepeatStep(step.from_, step.times, nxt)
        case _:
            assert_never(step)


def _policy(pol: s.Policy, trigger: s.Trigger) -> p.Policy:
    quiet = pol.quiet_hours
    cap = pol.frequency_cap
    return p.Policy(
        quiet_hours=None if quiet is None else p.QuietHours(quiet.start, quiet.end, quiet.applies_to),
        frequency_cap=None if cap is None else p.FrequencyCap(cap.max, _secs(cap.per) or 0),
        hold_promotions_during_complaint=pol.hold_promotions_during_complaint,
        default_locale=pol.default_locale,
        locales=tuple(pol.locales),
        default_timezone=pol.default_timezone,
        # The stale guard applies to events; a date or segment plan keeps its format-1 JSON.
        stale_after_s=_secs(pol.stale_after) if trigger.event else None,
    )


def compile_checked(checked: Checked) -> JourneyPlan:
    j = checked.journey
    edges = {sid: dict(targets) for sid, targets in successors(checked.steps).items()}
    templates: dict[str, dict[str, str]] = {}
    for step in checked.steps:
        if isinstance(step, s.SendStep) and not step.sendgrid_template_id:
            templates[step.template] = {
                loc: checked.templates.digest(step.template, loc) for loc in j.policy.locales
            }
    t = j.trigger
    trigger = p.Trigger(t.event, t.when, t.date, _secs(t.offset) or 0, t.yearly, t.segment)
    rules = tuple(
        p.EventRule(r, None) if isinstance(r, str) else p.EventRule(r.event, r.when) for r in j.exit.on
    )
    goal = None if j.exit.goal is None else p.EventRule(j.exit.goal.event, j.exit.goal.when)
    draft = JourneyPlan(
        id=checked.id,
        version="",
        name=j.name,
        names=MappingProxyType({str(loc): text for loc, text in j.names.items()}),
        trigger=trigger,
        entry=p.Entry(j.entry.once_per, _secs(j.entry.cooldown)),
        exit=p.Exit(rules, goal),
        policy=_policy(j.policy, j.trigger),
        start=checked.steps[0].id,
        steps=MappingProxyType({step.id: compile_step(step, edges[step.id]) for step in checked.steps}),
        order=tuple(step.id for step in checked.steps),
        templates=MappingProxyType({k: MappingProxyType(v) for k, v in templates.items()}),
        source=checked.path,
    )
    # Read back from its JSON: the plan that runs is exactly the plan a database would store.
    return JourneyPlan.from_json({**draft.to_json(), "version": version_of(draft.body())})


def compile_file(path: Path | str) -> JourneyPlan:
    return compile_checked(check_file(path))


def journey_files(paths: list[Path] | None = None, default: Path | str = "journeys") -> list[Path]:
    """Expand folders into their ``*.yaml``/``*.yml`` files, sorted."""
    out: list[Path] = []
    for path in paths or [Path(default)]:
        if path.is_dir():
            out += sorted([*path.glob("*.yaml"), *path.glob("*.yml")])
        else:
            out.append(path)
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
