"""The journey language: pydantic models for one journey file.

Validation runs in two stages: :class:`Journey` checks the envelope with ``steps`` left as
raw mappings, then each step is validated on its own against the :data:`Step` discriminated union, so a
typo in step 7 is reported at step 7 and does not hide the problems of step 8.

Design choices that are hard to undo, and why:

* **Steps are a flat list with ids**, executed in order unless a step says ``next``/``goto``. Marketers
  read a journey top to bottom; nesting (branches containing steps) makes diffs and error positions
  worse. Loops are explicit: ``goto`` or a bounded ``repeat``.
* **``type`` is the discriminator** and its values (``send``, ``wait``, ``wait_for``, ``branch``,
  ``split``, ``action``, ``goto``, ``exit``, ``repeat``) are stored tags: once shipped, never renamed.
* **Durations are strings** (``7d``, ``36h``, ``1d12h``) so YAML stays readable; they compile to seconds.
* **Conditions are Jinja2 expressions** evaluated in a sandbox (see :mod:`posventa.expressions`).
* **Short forms stay valid when a key grows**: ``holdout: 10`` is ``holdout: {percent: 10}`` (the
  holdout leaves), and a ``set_attribute`` value is either a literal or ``{from: <path>}``. A file
  written for an older Posventa keeps its meaning.
* **Names added later are few and chosen to read as English**: ``trigger_event`` (the event that
  enrolled the customer, beside ``event``, the latest), ``item`` (the order item a date trigger over
  items enrolled), ``journey.visits.<step>``, ``expires_after``, ``stale_after``. They are stored in
  journey files and plans, so they never change.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, model_validator
from pydantic_core import PydanticCustomError

from posventa.timeutil import parse_clock, parse_duration, zone

STEP_TYPES = ("send", "wait", "wait_for", "branch", "split", "action", "goto", "exit", "repeat")
#: Date fields a ``wait``'s ``until_date`` or a date trigger may name. ``item.*`` dates belong to one order
#: item: a date trigger on them enrolls per item (and the journey's ``item`` is that item).
DATE_FIELDS = (
    "customer.birthday",
    "order.placed_at",
    "order.promised_delivery_date",
    "order.shipped_at",
    "order.delivered_at",
    "order.warranty_expires_on",
    "order.runs_out_on",
    "item.warranty_expires_on",
    "item.runs_out_on",
    "journey.entered_at",
)
#: What a ``set_attribute`` value may copy (``{from: event.data.rma_id}``): a dotted path into the data a
#: condition reads. Checked like a condition's names by ``validate``.
COPY_PATH = r"^(event|trigger_event|order|customer|feedback|item|journey)(\.[A-Za-z_][A-Za-z0-9_]*)+$"


# Validators raise PydanticCustomError so each problem keeps a stable diagnostic code (its error type).
def _duration(value: str) -> str:
    try:
        parse_duration(value)
    except ValueError as exc:
        raise PydanticCustomError("bad-duration", "{message}", {"message": str(exc)}) from exc
    return value


def _positive_duration(value: str) -> str:
    if parse_duration(value).total_seconds() <= 0:
        raise PydanticCustomError("bad-duration", "'{value}' must be a positive duration", {"value": value})
    return value


def _clock(value: str) -> str:
    try:
        parse_clock(value)
    except ValueError as exc:
        raise PydanticCustomError("bad-time", "{message}", {"message": str(exc)}) from exc
    return value


def _tz(value: str) -> str:
    try:
        zone(value)
    except ValueError as exc:
        raise PydanticCustomError("bad-timezone", "{message}", {"message": str(exc)}) from exc
    return value


def _event_name(value: str) -> str:
    from posventa.diagnostics import did_you_mean
    from posventa.events import EVENT_TYPES

    if value not in EVENT_TYPES:
        hint = did_you_mean(value, EVENT_TYPES)
        raise PydanticCustomError(
            "unknown-event",
            "unknown event '{value}'{hint}",
            {"value": value, "hint": f" ({hint})" if hint else ""},
        )
    return value


def _date_field(value: str) -> str:
    from posventa.diagnostics import did_you_mean

    if value not in DATE_FIELDS:
        hint = did_you_mean(value, DATE_FIELDS)
        raise PydanticCustomError(
            "unknown-date-field",
            "'{value}' is not a date field{hint}; one of: {known}",
            {"value": value, "hint": f" ({hint})" if hint else "", "known": ", ".join(DATE_FIELDS)},
        )
    return value


def _condition_validator(value: str) -> str:
    from posventa.errors import ExpressionError
    from posventa.expressions import compile_condition

    try:
        compile_condition(value)
    except ExpressionError as exc:
        raise PydanticCustomError("bad-condition", "{message}", {"message": exc.message}) from exc
    return value


Duration = Annotated[
    str,
    Field(
        json_schema_extra={
            "pattern": r"^[+-]?(\d+w)?(\d+d)?(\d+h)?(\d+m)?$",
            "examples": ["30m", "12h", "7d", "2w"],
        }
    ),
    AfterValidator(_duration),
]
PositiveDuration = Annotated[Duration, AfterValidator(_positive_duration)]
Clock = Annotated[str, Field(pattern=r"^\d{1,2}:\d{2}$", examples=["09:30"]), AfterValidator(_clock)]
TimeZone = Annotated[str, AfterValidator(_tz)]
EventName = Annotated[str, Field(examples=["order.placed", "order.delivered"]), AfterValidator(_event_name)]
DateField = Annotated[str, Field(examples=list(DATE_FIELDS)), AfterValidator(_date_field)]
Condition = Annotated[
    str, Field(min_length=1, examples=["event.data.score >= 9"]), AfterValidator(_condition_validator)
]
StepId = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
Locale = Literal["es", "en"]
Category = Literal["transactional", "promotional"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# ------------------------------------------------------------------------------------------------ envelope
class Trigger(_Model):
    """What puts a customer into the journey: exactly one of ``event``, ``date`` or ``segment``."""

    event: EventName | None = Field(default=None, description="Enroll when this event arrives.")
    when: Condition | None = Field(default=None, description="Only enroll when this condition holds.")
    date: DateField | None = Field(default=None, description="Enroll relative to this date (nightly run).")
    offset: Duration = Field(default="0d", description="Added to the date (negative: before it).")
    yearly: bool = Field(default=False, description="The date recurs every year (birthdays).")
    segment: Condition | None = Field(default=None, description="Enroll customers entering this segment.")

    @model_validator(mode="after")
    def _exactly_one(self) -> Trigger:
        chosen = [k for k in ("event", "date", "segment") if getattr(self, k) is not None]
        if len(chosen) != 1:
            raise ValueError(
                "a trigger needs exactly one of 'event', 'date' or 'segment'"
                + (f" (found {', '.join(chosen)})" if chosen else "")
            )
        if self.date is None and (self.yearly or self.offset != "0d"):
            raise ValueError("'offset' and 'yearly' only apply to a 'date' trigger")
        return self


class Entry(_Model):
    """Who may enter, and how often."""

    once_per: Literal["customer", "order", "occurrence", "item"] = Field(
        default="customer",
        description="customer: once ever; order: once per order; occurrence: once per trigger event/date; "
        "item: once per order item (with a date trigger on item.*).",
    )
    cooldown: PositiveDuration | None = Field(
        default=None, description="With once_per customer: allow re-entry this long after the last entry."
    )


class ExitRule(_Model):
    event: EventName
    when: Condition | None = None


class Goal(_Model):
    """A conversion: the event (e.g. a repeat purchase) ends the journey as converted."""

    event: EventName
    when: Condition | None = None


class Exit(_Model):
    on: list[EventName | ExitRule] = Field(
        default_factory=list, description="Events that end the journey for this customer."
    )
    goal: Goal | None = None


class QuietHours(_Model):
    start: Clock
    end: Clock
    applies_to: Literal["promotional", "all"] = "promotional"


class FrequencyCap(_Model):
    max: int = Field(ge=1, le=100, description="At most this many promotional messages…")
    per: PositiveDuration = Field(description="…in this rolling window (across all journeys).")


class Policy(_Model):
    quiet_hours: QuietHours | None = None
    frequency_cap: FrequencyCap | None = None
    hold_promotions_during_complaint: bool = True
    default_locale: Locale = "es"
    locales: list[Locale] = Field(default_factory=lambda: list[Locale](["es", "en"]), min_length=1)
    default_timezone: TimeZone | None = Field(
        default=None, description="Used when a customer has no time zone (default: the business's)."
    )
    stale_after: PositiveDuration | None = Field(
        default="7d",
        description="An event older than this when it arrives enrolls nobody (a historical import sends "
        "no thank-you for last year's order). null: no such guard. Only for event triggers.",
    )


class Journey(_Model):
    """Stage one: the envelope. ``steps`` stay raw here and are checked one by one in stage two."""

    name: str = Field(min_length=1, max_length=200)
    names: dict[Locale, Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        default_factory=dict,
        description="The name customers read (the unsubscribe page), per locale: {es: …, en: …}. "
        "A locale without one shows `name`.",
    )
    description: str | None = None
    trigger: Trigger
    entry: Entry = Field(default_factory=Entry)
    exit: Exit = Field(default_factory=Exit)
    policy: Policy = Field(default_factory=Policy)
    steps: list[Any] = Field(min_length=1)  # stage two checks each item (and reports non-mappings once)


# ------------------------------------------------------------------------------------------------- steps
class _Step(_Model):
    id: StepId
    description: str | None = None


class _Linear(_Step):
    next: StepId | None = Field(default=None, description="Step to go to next (default: the following one).")


class SendStep(_Linear):
    """Send a message rendered from a template, once per enrollment and occurrence."""

    type: Literal["send"]
    template: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    channel: Literal["email"] = "email"
    category: Category
    sendgrid_template_id: str | None = Field(default=None, pattern=r"^d-[0-9a-f]{8,}$")
    expires_after: PositiveDuration | None = Field(
        default=None,
        description="Skip the message (reason 'expired') if it cannot go out this long after it became "
        "due: deferred by quiet hours, the frequency cap or a complaint, or processed late.",
    )


class DateRef(_Model):
    field: DateField
    offset: Duration = "0d"


class WaitStep(_Linear):
    """Wait a fixed time, until a date (± offset), and/or until a local time of day / weekday."""

    type: Literal["wait"]
    duration: PositiveDuration | None = None
    until_date: DateRef | None = None
    at: Clock | None = Field(default=None, description="Then wait until this local time (customer's zone).")
    weekdays: list[Weekday] | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _something(self) -> WaitStep:
        if self.duration is None and self.until_date is None and self.at is None and self.weekdays is None:
            raise ValueError("a wait needs 'duration', 'until_date', 'at' or 'weekdays'")
        if self.duration is not None and self.until_date is not None:
            raise ValueError("use either 'duration' or 'until_date', not both")
        return self


class WaitForStep(_Linear):
    """Wait for an event; go to ``on_timeout`` if it does not come in time."""

    type: Literal["wait_for"]
    event: EventName
    match: Condition | None = Field(default=None, description="Extra condition on the event.")
    timeout: PositiveDuration | None = Field(
        default=None,
        description="How long to wait; with a deadline, used when the deadline's date is unknown.",
    )
    deadline: DateRef | None = Field(default=None, description="Wait until this date (± offset).")
    on_timeout: StepId

    @model_validator(mode="after")
    def _a_limit(self) -> WaitForStep:
        if self.timeout is None and self.deadline is None:
            raise ValueError(
                "a wait_for needs a 'timeout', a 'deadline', or both (the timeout then applies "
                "when the deadline's date is unknown)"
            )
        return self


class BranchCase(_Model):
    when: Condition
    goto: StepId


class BranchStep(_Step):
    """Go to the first case whose condition holds, else ``otherwise`` (default: the following step)."""

    type: Literal["branch"]
    cases: list[BranchCase] = Field(min_length=1)
    otherwise: StepId | None = None


class Variant(_Model):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    weight: int = Field(ge=1, le=100)
    goto: StepId


class Holdout(_Model):
    """The control group of a split: ``percent`` of the customers get none of the variants."""

    percent: int = Field(ge=0, le=99, description="Percent of customers held out.")
    goto: StepId | None = Field(
        default=None, description="Where the holdout continues (default: it leaves the journey)."
    )


class SplitStep(_Step):
    """A/B split by a stable hash of customer and journey; ``holdout`` percent get no variant."""

    type: Literal["split"]
    variants: list[Variant] = Field(min_length=1)
    holdout: Annotated[int, Field(ge=0, le=99)] | Holdout = Field(
        default=0,
        description="Percent of customers held out (they leave the journey), or {percent, goto} to let "
        "them continue at a later step (e.g. the content emails everybody gets).",
    )

    @property
    def holdout_percent(self) -> int:
        return self.holdout if isinstance(self.holdout, int) else self.holdout.percent

    @property
    def holdout_goto(self) -> str | None:
        return None if isinstance(self.holdout, int) else self.holdout.goto


class OpenTicket(_Model):
    subject: str = Field(min_length=1)
    category: Literal["complaint", "support", "return", "warranty"] = "complaint"
    priority: Literal["low", "normal", "high"] = "normal"


class Webhook(_Model):
    url: str = Field(pattern=r"^https?://")
    event: str = Field(min_length=1, description="Name sent in the JSON body.")


class CopyFrom(_Model):
    """A value copied when the step runs: ``{from: event.data.rma_id}``."""

    from_: str = Field(
        alias="from",
        pattern=COPY_PATH,
        max_length=200,
        description="A dotted path: event.data.<field>, trigger_event.data.<field>, order.<field>, "
        "item.<field>, customer.<field>, feedback.<field>, journey.<field>.",
        examples=["event.data.rma_id"],
    )


class ActionStep(_Linear):
    """Do something other than messaging: exactly one of the three actions."""

    type: Literal["action"]
    set_attribute: dict[str, str | int | float | bool | CopyFrom | None] | None = Field(
        default=None,
        description="Customer attributes to set: a fixed value, or {from: <path>} to copy one (a missing "
        "value leaves the attribute unchanged).",
    )
    open_ticket: OpenTicket | None = None
    webhook: Webhook | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> ActionStep:
        n = sum(x is not None for x in (self.set_attribute, self.open_ticket, self.webhook))
        if n != 1:
            raise ValueError("an action needs exactly one of 'set_attribute', 'open_ticket' or 'webhook'")
        return self


class GotoStep(_Step):
    type: Literal["goto"]
    target: StepId


class ExitStep(_Step):
    type: Literal["exit"]
    reason: str = "completed"


class RepeatStep(_Linear):
    """Jump back to ``from`` until the block has run ``times`` times in all, then continue."""

    type: Literal["repeat"]
    from_: StepId = Field(alias="from")
    times: int = Field(ge=2, le=100)


#: The step models, as a plain union (``match`` narrows it; the annotated :data:`Step` validates).
StepModel = (
    SendStep | WaitStep | WaitForStep | BranchStep | SplitStep | ActionStep | GotoStep | ExitStep | RepeatStep
)
Step = Annotated[
    SendStep
    | WaitStep
    | WaitForStep
    | BranchStep
    | SplitStep
    | ActionStep
    | GotoStep
    | ExitStep
    | RepeatStep,
    Field(discriminator="type"),
]
STEP_ADAPTER: TypeAdapter[Any] = TypeAdapter(Step)
STEP_MODELS: dict[str, type[_Step]] = {
    "send": SendStep,
    "wait": WaitStep,
    "wait_for": WaitForStep,
    "branch": BranchStep,
    "split": SplitStep,
    "action": ActionStep,
    "goto": GotoStep,
    "exit": ExitStep,
    "repeat": RepeatStep,
}


def json_schema() -> dict[str, Any]:
    """The language as JSON Schema (draft 2020-12), steps included, for editors."""
    schema = Journey.model_json_schema()
    step_schema = STEP_ADAPTER.json_schema(ref_template="#/$defs/{model}")
    defs = schema.setdefault("$defs", {})
    defs.update(step_schema.pop("$defs", {}))
    schema["properties"]["steps"] = {
        "type": "array",
        "minItems": 1,
        "items": step_schema,
        "description": "The steps, run in order unless a step says otherwise.",
    }
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://posventa.dev/schema/journey.json"
    schema["title"] = "Posventa journey"
    return schema
