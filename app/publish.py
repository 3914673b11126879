"""Plan and publish, Terraform-like: what would change if the journey files (drafts) went live, and
making them live.

:func:`plan_changes` compares each draft with the version published in the database and says, per
journey: steps added, removed and changed (which options, conditions and templates — template content by
the digests in the compiled plan), journey settings changed, and how many live enrollments sit at each
affected step now. Publishing changes what *new* entrants get; the enrollments already inside stay on
the version they pinned until ``posventa migrate`` moves them.

:func:`publish` makes the drafts live. A journey whose file was removed is not deleted: publishing
stops its entries (``draining``) and lets the customers inside finish.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from app.journey_state import DRAINING, STOPPED, JourneyControl, Publication, StepCount
from app.plans import PlanBook
from app.ports import Store, Tx
from posventa.errors import PosventaError
from posventa.plan import JourneyPlan
from posventa.timeutil import WEEKDAYS

#: Why a journey whose file is gone stopped admitting (``publish``); shown by ``posventa status``.
FILE_REMOVED = "journey file removed"
#: Journey-level parts of a plan compared by ``plan`` (steps and templates are compared one by one).
SETTINGS = ("name", "trigger", "entry", "exit", "policy", "start")


@dataclass(frozen=True)
class FieldChange:
    """One option that differs: ``path`` such as ``duration_s`` or ``cases[0].when``."""

    path: str
    old: Any
    new: Any

    def show(self) -> str:
        """``duration: 1d → 2d`` (options named as in the journey file: ``duration``, not ``duration_s``)."""
        name = re.sub(r"_s\b", "", self.path)
        return f"{name}: {_show(self.path, self.old)} → {_show(self.path, self.new)}"


@dataclass(frozen=True)
class StepChange:
    step: str
    kind: str  # added | removed | changed
    fields: tuple[FieldChange, ...] = ()
    #: Templates of this step whose content changed (``thank_you[es]``).
    templates: tuple[str, ...] = ()
    #: Live enrollments at this step now, by the version they are pinned to.
    enrollments: Mapping[str, int] = field(default_factory=dict)

    @property
    def waiting(self) -> int:
        return sum(self.enrollments.values())


@dataclass(frozen=True)
class JourneyDiff:
    journey_id: str
    #: new (never published) | changed | unchanged | removed (file gone, still admitting) | retired
    #: (file gone, entries already stopped)
    status: str
    live_version: str | None
    draft_version: str | None
    state: str | None
    settings: tuple[FieldChange, ...] = ()
    steps: tuple[StepChange, ...] = ()
    order_changed: bool = False
    #: Live enrollments by pinned version.
    enrollments: Mapping[str, int] = field(default_factory=dict)

    @property
    def pending(self) -> bool:
        """Whether ``publish`` has something to do for this journey."""
        return self.status in ("new", "changed", "removed")

    def to_json(self) -> dict[str, Any]:
        return {
            "journey": self.journey_id,
            "status": self.status,
            "live_version": self.live_version,
            "draft_version": self.draft_version,
            "state": self.state,
            "settings": [_field_json(c) for c in self.settings],
            "steps": [
                {
                    "step": s.step,
                    "change": s.kind,
                    "fields": [_field_json(c) for c in s.fields],
                    "templates": list(s.templates),
                    "enrollments": dict(s.enrollments),
                }
                for s in self.steps
            ],
            "order_changed": self.order_changed,
            "enrollments": dict(self.enrollments),
        }


@dataclass(frozen=True)
class PlanReport:
    journeys: tuple[JourneyDiff, ...]

    @property
    def pending(self) -> list[JourneyDiff]:
        return [j for j in self.journeys if j.pending]

    def to_json(self) -> dict[str, Any]:
        return {"changes": len(self.pending), "journeys": [j.to_json() for j in self.journeys]}


def _field_json(c: FieldChange) -> dict[str, Any]:
    return {"path": c.path, "old": c.old, "new": c.new}


def _duration(seconds: int) -> str:
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size or (unit == "s" and not parts):
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts)


def _show(path: str, value: Any) -> str:
    """A value as a marketer wrote it: durations as ``30d``, weekdays as names, text quoted."""
    name = path.rsplit(".", 1)[-1]
    if value is None:
        return "—"
    if name.endswith("_s") and isinstance(value, int):
        return ("-" if value < 0 else "") + _duration(abs(value))
    if name == "weekdays" and isinstance(value, list):
        return (
            "[" + ", ".join(WEEKDAYS[d] if isinstance(d, int) and 0 <= d < 7 else str(d) for d in value) + "]"
        )
    if isinstance(value, str):
        return f'"{value}"'
    text = str(value)
    return text if len(text) <= 120 else text[:119] + "…"


def diff_values(old: Any, new: Any, path: str = "") -> list[FieldChange]:
    """Every leaf that differs between two JSON-like values, with its dotted path."""
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        out: list[FieldChange] = []
        for key in sorted(set(old) | set(new), key=str):
            sub = f"{path}.{key}" if path else str(key)
            out += diff_values(old.get(key), new.get(key), sub)
        return out
    if isinstance(old, list | tuple) and isinstance(new, list | tuple) and len(old) == len(new):
        out = []
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            out += diff_values(a, b, f"{path}[{i}]")
        return out
    return [] if old == new else [FieldChange(path or "(value)", old, new)]


def _thawed(plan: JourneyPlan) -> dict[str, Any]:
    return plan.body()


def _template_changes(live: Mapping[str, Any], draft: Mapping[str, Any]) -> dict[str, list[str]]:
    """Template name → locales whose content (digest) differs; a template only one side has is not a
    content change (the step that names it changed)."""
    out: dict[str, list[str]] = {}
    for name in sorted(set(live) & set(draft)):
        old, new = live[name], draft[name]
        locales = sorted(loc for loc in set(old) | set(new) if old.get(loc) != new.get(loc))
        if locales:
            out[name] = locales
    return out


def _at_step(counts: Iterable[StepCount]) -> dict[str, dict[str, int]]:
    by_step: dict[str, dict[str, int]] = {}
    for c in counts:
        if c.step is not None:
            by_step.setdefault(c.step, {})[c.plan_version] = c.count
    return by_step


def compare(
    journey_id: str,
    live: JourneyPlan | None,
    draft: JourneyPlan | None,
    control: JourneyControl | None,
    counts: Iterable[StepCount] = (),
) -> JourneyDiff:
    """What publishing ``draft`` over ``live`` changes (either may be missing)."""
    counts = list(counts)
    by_version: Counter[str] = Counter()
    for c in counts:
        by_version[c.plan_version] += c.count
    at_step = _at_step(counts)
    base = JourneyDiff(
        journey_id,
        "unchanged",
        live.version if live else None,
        draft.version if draft else None,
        control.state if control else None,
        enrollments=dict(by_version),
    )
    if draft is None:
        assert live is not None
        retired = base.state in (DRAINING, STOPPED)
        removed = tuple(StepChange(s, "removed", enrollments=at_step.get(s, {})) for s in live.order)
        return replace(base, status="retired" if retired else "removed", steps=removed)
    if live is None:
        return replace(base, status="new", steps=tuple(StepChange(s, "added") for s in draft.order))
    if live.version == draft.version:
        return base
    old, new = _thawed(live), _thawed(draft)
    settings = tuple(c for key in SETTINGS for c in diff_values(old[key], new[key], key))
    templates = _template_changes(old["templates"], new["templates"])
    steps: list[StepChange] = []
    for sid in draft.order:
        if sid not in live.steps:
            steps.append(StepChange(sid, "added"))
            continue
        fields = tuple(diff_values(old["steps"][sid], new["steps"][sid]))
        tpl = new["steps"][sid].get("template")
        changed_tpl = tuple(f"{tpl}[{loc}]" for loc in templates.get(tpl, ())) if tpl else ()
        if fields or changed_tpl:
            steps.append(StepChange(sid, "changed", fields, changed_tpl, at_step.get(sid, {})))
    for sid in live.order:
        if sid not in draft.steps:
            steps.append(StepChange(sid, "removed", enrollments=at_step.get(sid, {})))
    kept_old = [s for s in old["order"] if s in new["steps"]]
    kept_new = [s for s in new["order"] if s in old["steps"]]
    return replace(
        base, status="changed", settings=settings, steps=tuple(steps), order_changed=kept_old != kept_new
    )


def plan_changes(store: Store | None, book: PlanBook, journeys: Iterable[str] | None = None) -> PlanReport:
    """Compare every draft (or the ``journeys`` named) with what the database has published. ``store``
    None: a database never migrated, where nothing is published."""
    wanted = set(journeys) if journeys is not None else None
    if store is None:
        ids = sorted(wanted or book)
        return PlanReport(tuple(compare(j, None, book[j], None) for j in ids if j in book))
    with store.read() as tx:
        return PlanReport(tuple(_compare_all(tx, book, wanted)))


def _compare_all(tx: Tx, book: PlanBook, wanted: set[str] | None) -> list[JourneyDiff]:
    controls = {c.journey_id: c for c in tx.journeys.controls()}
    ids = sorted(set(book) | {j for j, c in controls.items() if c.live_version})
    if wanted is not None:
        unknown = sorted(wanted - set(ids))
        if unknown:
            raise PosventaError(f"no journey {', '.join(unknown)} (no file, nothing published)")
        ids = [j for j in ids if j in wanted]
    out = []
    for jid in ids:
        ctl = controls.get(jid)
        live = book.pinned(tx, jid, ctl.live_version) if ctl and ctl.live_version else None
        counts = tx.journeys.step_counts(jid) if live is not None else []
        out.append(compare(jid, live, book.get(jid), ctl, counts))
    return out


@dataclass(frozen=True)
class Published:
    """What ``publish`` did: the versions made live, the journeys whose entries stopped."""

    publications: tuple[Publication, ...]
    drained: tuple[str, ...]


def publish(store: Store, book: PlanBook, now: datetime, journeys: Iterable[str] | None = None) -> Published:
    """Make the drafts (all, or the ``journeys`` named) live for new entrants; stop the entries of
    journeys whose file was removed (their customers finish)."""
    report = plan_changes(store, book, journeys)
    pending = report.pending
    made = book.publish([j.journey_id for j in pending if j.status in ("new", "changed")], now=now)
    drained = [j.journey_id for j in pending if j.status == "removed"]
    if drained:
        with store.begin() as tx:
            for jid in drained:
                tx.journeys.set_state(jid, DRAINING, FILE_REMOVED, now)
    return Published(tuple(made), tuple(drained))
