"""The compiled plan: what runs. Frozen types, one per step kind, and their JSON form.

Enrollments pin a plan version (a content hash of the JSON body), and the runtime stores each version's
JSON (the ``journey_plans`` table), so the JSON written here is a stored format:

* **Format 1 is frozen.** Every key a format-1 plan had is written exactly as before, ``null`` included,
  so a plan that means the same hashes to the same version and a stored plan reads back unchanged.
* **Keys added later are optional**: written only when set (:data:`ADDED` fields), read as ``None``
  when absent. A plan that uses no new feature is byte-for-byte a format-1 plan; an old stored plan is
  a valid plan that uses none. A change that cannot be expressed this way bumps :data:`PLAN_FORMAT`,
  and :meth:`JourneyPlan.from_json` keeps reading the older format.

This module holds no compiler (that is :mod:`posventa.compile`, which needs validation, the loader and
Jinja): the engine, the simulator and the runtime import the plan types only.

Adding a step kind: a class here (with its :meth:`successors`), a member of :data:`Step`, and the
compiler's case; every ``match`` over :data:`Step` (engine, graph, simulator) ends in ``assert_never``,
so the type checker names each place that must learn the new kind.
"""

from __future__ import annotations

import hashlib
import json
import types
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields, is_dataclass
from typing import Any, ClassVar, Literal, Union, get_args, get_origin, get_type_hints

from posventa.errors import PosventaError

PLAN_FORMAT = 1
#: Field metadata: a key added after format 1 was frozen — written only when not ``None``.
ADDED: Mapping[str, Any] = types.MappingProxyType({"added": True})
Edge = tuple[str, str]  # (the field that names the target, the target step id)


def _edges(*pairs: tuple[str, str | None]) -> tuple[Edge, ...]:
    return tuple((name, target) for name, target in pairs if target is not None)


# --------------------------------------------------------------------------------------------- parts
@dataclass(frozen=True)
class DateRef:
    """A date field (``order.promised_delivery_date``…) plus an offset in seconds."""

    field: str
    offset_s: int


@dataclass(frozen=True)
class Case:
    when: str
    goto: str


@dataclass(frozen=True)
class Variant:
    name: str
    weight: int
    goto: str


# --------------------------------------------------------------------------------------------- steps
@dataclass(frozen=True)
class SendStep:
    TYPE: ClassVar[str] = "send"
    template: str
    channel: str
    category: str
    sendgrid_template_id: str | None
    next: str | None
    #: A send not made this long after it became due is skipped (reason ``expired``).
    expires_after_s: int | None = field(default=None, metadata=ADDED)

    @property
    def promotional(self) -> bool:
        return self.category == "promotional"

    def successors(self) -> tuple[Edge, ...]:
        return _edges(("next", self.next))


@dataclass(frozen=True)
class WaitStep:
    TYPE: ClassVar[str] = "wait"
    duration_s: int | None
    until_date: DateRef | None
    at: str | None
    weekdays: tuple[int, ...] | None  # 0 = Monday
    next: str | None

    def successors(self) -> tuple[Edge, ...]:
        return _edges(("next", self.next))


@dataclass(frozen=True)
class WaitForStep:
    TYPE: ClassVar[str] = "wait_for"
    event: str
    match: str | None
    timeout_s: int | None
    deadline: DateRef | None
    on_timeout: str
    next: str | None

    def successors(self) -> tuple[Edge, ...]:
        return _edges(("next", self.next), ("on_timeout", self.on_timeout))


@dataclass(frozen=True)
class BranchStep:
    TYPE: ClassVar[str] = "branch"
    cases: tuple[Case, ...]
    otherwise: str | None

    def successors(self) -> tuple[Edge, ...]:
        return _edges(
            *((f"cases.{i}.goto", c.goto) for i, c in enumerate(self.cases)), ("otherwise", self.otherwise)
        )


@dataclass(frozen=True)
class SplitStep:
    TYPE: ClassVar[str] = "split"
    variants: tuple[Variant, ...]
    holdout: int  # percent
    #: Where the holdout continues; ``None``: the holdout leaves the journey (``exited``, ``holdout``).
    holdout_goto: str | None = field(default=None, metadata=ADDED)

    def successors(self) -> tuple[Edge, ...]:
        return _edges(
            *((f"variants.{i}.goto", v.goto) for i, v in enumerate(self.variants)),
            ("holdout.goto", self.holdout_goto),
        )


@dataclass(frozen=True)
class ActionStep:
    TYPE: ClassVar[str] = "action"
    action: Literal["set_attribute", "open_ticket", "webhook"]
    #: ``set_attribute``: name → value, or name → ``{"from": "event.data.rma_id"}`` (copied at run time).
    params: Mapping[str, Any]
    next: str | None

    def successors(self) -> tuple[Edge, ...]:
        return _edges(("next", self.next))


@dataclass(frozen=True)
class GotoStep:
    TYPE: ClassVar[str] = "goto"
    target: str

    def successors(self) -> tuple[Edge, ...]:
        return _edges(("target", self.target))


@dataclass(frozen=True)
class ExitStep:
    TYPE: ClassVar[str] = "exit"
    reason: str

    def successors(self) -> tuple[Edge, ...]:
        return ()


@dataclass(frozen=True)
class RepeatStep:
    TYPE: ClassVar[str] = "repeat"
    from_: str = field(metadata={"json": "from"})
    times: int
    next: str | None

    def successors(self) -> tuple[Edge, ...]:
        return _edges(("from", self.from_), ("next", self.next))


Step = (
    SendStep | WaitStep | WaitForStep | BranchStep | SplitStep | ActionStep | GotoStep | ExitStep | RepeatStep
)
STEP_CLASSES: Mapping[str, type[Step]] = {
    cls.TYPE: cls
    for cls in (
        SendStep,
        WaitStep,
        WaitForStep,
        BranchStep,
        SplitStep,
        ActionStep,
        GotoStep,
        ExitStep,
        RepeatStep,
    )
}
#: Steps that stop the journey until time passes or an event comes: every loop needs one.
WAITING_STEPS = (WaitStep, WaitForStep)


# ------------------------------------------------------------------------------------------ envelope
@dataclass(frozen=True)
class Trigger:
    event: str | None
    when: str | None
    date: str | None
    offset_s: int
    yearly: bool
    segment: str | None


@dataclass(frozen=True)
class Entry:
    once_per: Literal["customer", "order", "occurrence", "item"]
    cooldown_s: int | None


@dataclass(frozen=True)
class EventRule:
    """An exit rule or the goal: an event type and an optional condition."""

    event: str
    when: str | None


@dataclass(frozen=True)
class Exit:
    on: tuple[EventRule, ...]
    goal: EventRule | None


@dataclass(frozen=True)
class QuietHours:
    start: str
    end: str
    applies_to: Literal["promotional", "all"]


@dataclass(frozen=True)
class FrequencyCap:
    max: int
    per_s: int


@dataclass(frozen=True)
class Policy:
    quiet_hours: QuietHours | None
    frequency_cap: FrequencyCap | None
    hold_promotions_during_complaint: bool
    default_locale: str
    locales: tuple[str, ...]
    default_timezone: str | None
    #: An event older than this when it arrives enrolls nobody (``None``: no such guard).
    stale_after_s: int | None = field(default=None, metadata=ADDED)


# -------------------------------------------------------------------------------------------- codec
def _freeze(value: Any) -> Any:
    if isinstance(value, Mapping):
        return types.MappingProxyType({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    return value


def _thaw(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return _dump(value)
    if isinstance(value, Mapping):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_thaw(v) for v in value]
    return value


def _dump(obj: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"type": obj.TYPE} if hasattr(obj, "TYPE") else {}
    for f in fields(obj):
        value = getattr(obj, f.name)
        if f.metadata.get("added") and value is None:
            continue
        out[f.metadata.get("json", f.name)] = _thaw(value)
    return out


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = get_type_hints(cls)
    return _HINTS[cls]


def _load_value(tp: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        (inner,) = [a for a in get_args(tp) if a is not type(None)]
        return _load_value(inner, value)
    if origin is tuple:
        return tuple(_load_value(get_args(tp)[0], v) for v in value)
    if isinstance(tp, type) and is_dataclass(tp):
        return _load(tp, value)
    if origin is Mapping or tp is Mapping:
        return _freeze(value)
    return value


def _load(cls: type[Any], data: Mapping[str, Any]) -> Any:
    hints = _hints(cls)
    kwargs = {}
    for f in fields(cls):
        key = f.metadata.get("json", f.name)
        if key in data:
            kwargs[f.name] = _load_value(hints[f.name], data[key])
        elif f.default is MISSING:
            raise KeyError(key)
    return cls(**kwargs)


def _load_step(data: Mapping[str, Any]) -> Step:
    cls = STEP_CLASSES.get(data.get("type"))  # type: ignore[arg-type]
    if cls is None:
        raise PosventaError(f"unknown step type {data.get('type')!r} in a stored plan")
    step: Step = _load(cls, data)
    return step


# --------------------------------------------------------------------------------------------- plan
@dataclass(frozen=True)
class JourneyPlan:
    """An immutable compiled journey. ``steps`` maps step id → step (a read-only mapping)."""

    id: str
    version: str
    name: str
    trigger: Trigger
    entry: Entry
    exit: Exit
    policy: Policy
    start: str
    steps: Mapping[str, Step]
    order: tuple[str, ...]
    templates: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    source: str = ""
    #: The name customers read, per locale (``names:``); :meth:`display_name` falls back to ``name``.
    names: Mapping[str, str] = field(default_factory=dict)

    def display_name(self, locale: str | None) -> str:
        return self.names.get(locale or "") or self.name

    def body(self) -> dict[str, Any]:
        """The JSON the version hashes (everything but ``version`` and ``source``; ``names`` only when
        given, so plans stored before it existed keep their version)."""
        return {
            "format": PLAN_FORMAT,
            "id": self.id,
            "name": self.name,
            **({"names": dict(self.names)} if self.names else {}),
            "trigger": _dump(self.trigger),
            "entry": _dump(self.entry),
            "exit": _dump(self.exit),
            "policy": _dump(self.policy),
            "start": self.start,
            "order": list(self.order),
            "steps": {sid: _dump(step) for sid, step in self.steps.items()},
            "templates": _thaw(self.templates),
        }

    def to_json(self) -> dict[str, Any]:
        return {**self.body(), "version": self.version, "source": self.source}

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"

    @property
    def has_promotions(self) -> bool:
        return any(isinstance(s, SendStep) and s.promotional for s in self.steps.values())

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> JourneyPlan:
        if data.get("format") != PLAN_FORMAT:
            raise PosventaError(f"plan format {data.get('format')} is not supported (expected {PLAN_FORMAT})")
        return cls(
            id=data["id"],
            version=data["version"],
            name=data["name"],
            trigger=_load(Trigger, data["trigger"]),
            entry=_load(Entry, data["entry"]),
            exit=_load(Exit, data["exit"]),
            policy=_load(Policy, data["policy"]),
            start=data["start"],
            steps=types.MappingProxyType({sid: _load_step(s) for sid, s in data["steps"].items()}),
            order=tuple(data["order"]),
            templates=_freeze(data.get("templates", {})),
            source=data.get("source", ""),
            names=types.MappingProxyType(dict(data.get("names") or {})),
        )


def version_of(body: Mapping[str, Any]) -> str:
    """The version of a plan: a hash of its JSON body (the same meaning, the same version)."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]
