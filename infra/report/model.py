"""The report as data: a tree of frozen dataclasses with plainly named keys, and its JSON form.

Every number is a count or a sum read from the database (``infra.db.metrics`` fills these classes);
rates, NPS scores and confidence intervals are derived here, as properties, so a rate can never disagree
with the counts it comes from. :func:`to_plain` turns the tree into JSON-ready dicts and lists (fields,
then the properties named in a class's ``DERIVED``), in declaration order: the JSON keys are the field
names below and never change once shipped, because scripts read them.

Standard library only: the renderers (table, JSON, CSV, HTML) and the database layer both import this.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from datetime import date, datetime
from typing import Any, ClassVar

from posventa.errors import PosventaError

#: Why a message waited when due (``deferrals.reason``): the keys of ``StepFunnel.deferred_by``.
DEFERRAL_REASONS = ("quiet_hours", "frequency_cap", "complaint_hold")

#: z for a two-sided 95% interval.
Z95 = 1.959963984540054


class ReportError(PosventaError):
    """A report request that cannot be answered as asked (bad period, unknown journey, unknown format)."""


def rate(part: int | None, whole: int | None) -> float | None:
    """``part / whole`` rounded to 4 places; None when there is nothing to divide by or a part unknown."""
    return round(part / whole, 4) if whole and part is not None else None


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """The Wilson score interval of a proportion (good near 0 and 1, unlike the normal approximation)."""
    if n <= 0:
        return None
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe(x1: int, n1: int, x2: int, n2: int, z: float = Z95) -> tuple[float, float, float] | None:
    """Difference ``p1 - p2`` of two independent proportions with Newcombe's hybrid score interval
    (Newcombe 1998, method 10: it combines the two Wilson intervals). Returns (difference, low, high);
    None when either group is empty. It keeps its coverage with small groups and rates near 0, where the
    normal-approximation (Wald) interval collapses to a point."""
    a, b = wilson(x1, n1, z), wilson(x2, n2, z)
    if a is None or b is None:
        return None
    p1, p2 = x1 / n1, x2 / n2
    (l1, u1), (l2, u2) = a, b
    d = p1 - p2
    low = d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return d, low, high


# --- the funnel ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StepFunnel:
    """One step of a journey (a send or an action: the steps that leave a ledger row), for one split
    variant (``variant``: the arm the enrollment was assigned; None when it reached no split).

    ``entered``: enrollments that reached the step; ``due``: ledger rows created for it (a repeated step
    counts each time); ``sent``/``skipped``/``failed``: those rows by outcome; ``delivered`` … ``dropped``:
    rows with at least one such SendGrid event (unique opens and clicks, not event counts); ``converted``:
    enrollments that reached the step and reached the journey's goal; ``revenue``: what they brought;
    ``median_time_to_step_s``: from entering the journey to reaching the step (definitions in
    ``infra.db.metrics.funnel``). ``deferred``: distinct messages of the step that waited when due, for
    any reason; ``deferred_by``: per reason (quiet_hours, frequency_cap, complaint_hold) — a message that
    waited for two reasons counts once in ``deferred`` and once under each reason.

    ``delivered``, ``opened`` and ``clicked`` are None (JSON ``null``, rates null) when the cohort's
    messages have no SendGrid Event Webhook event at all: without the webhook nothing is known about them,
    and 0 would read as "nothing arrived"."""

    DERIVED: ClassVar[tuple[str, ...]] = ("delivery_rate", "open_rate", "click_rate", "conversion_rate")

    journey_id: str
    step_id: str
    variant: str | None
    type: str | None = None
    entered: int = 0
    due: int = 0
    sent: int = 0
    skipped: int = 0
    failed: int = 0
    delivered: int | None = 0
    bounced: int = 0
    dropped: int = 0
    opened: int | None = 0
    clicked: int | None = 0
    unsubscribed: int = 0
    spam_reports: int = 0
    converted: int = 0
    revenue: float = 0.0
    median_time_to_step_s: float | None = None
    deferred: int = 0
    deferred_by: Mapping[str, int] = field(default_factory=lambda: dict.fromkeys(DEFERRAL_REASONS, 0))

    @property
    def delivery_rate(self) -> float | None:
        return rate(self.delivered, self.sent)

    @property
    def open_rate(self) -> float | None:
        return rate(self.opened, self.delivered)

    @property
    def click_rate(self) -> float | None:
        return rate(self.clicked, self.delivered)

    @property
    def conversion_rate(self) -> float | None:
        return rate(self.converted, self.entered)


@dataclass(frozen=True)
class DiagramNode:
    """A step drawn in the journey diagram: ``reached`` (enrollments that reached it, for steps that
    leave a ledger row, else None) and ``here_now`` (live enrollments at it now)."""

    step_id: str
    type: str
    detail: str = ""
    reached: int | None = None
    here_now: int = 0


@dataclass(frozen=True)
class DiagramEdge:
    """An arrow of the diagram. A branch case's arrow has no ``label`` of its own (the journey language
    gives cases none): ``condition`` is its number in the branch (1, 2…, drawn "condition 1") and
    ``title`` its full expression (the arrow's tooltip)."""

    source: str
    target: str
    label: str = ""
    condition: int | None = None
    title: str = ""


@dataclass(frozen=True)
class JourneyFunnel:
    """A journey's cohort (enrollments that entered in the period) and its steps in plan order."""

    DERIVED: ClassVar[tuple[str, ...]] = ("conversion_rate",)

    journey_id: str
    name: str | None
    entered: int = 0
    converted: int = 0
    revenue: float = 0.0
    #: enrollments by status now (active, waiting, held, completed, exited, converted, failed)
    statuses: Mapping[str, int] = field(default_factory=dict)
    steps: tuple[StepFunnel, ...] = ()
    nodes: tuple[DiagramNode, ...] = ()
    edges: tuple[DiagramEdge, ...] = ()

    @property
    def conversion_rate(self) -> float | None:
        return rate(self.converted, self.entered)


# --- splits -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class VariantResult:
    """One arm of a split. ``converted``: enrollments whose customer placed another order after entering
    the journey (see ``infra.db.metrics.funnel.splits`` for why not the enrollment status); ``revenue``: those
    orders' total. ``difference``/``ci_low``/``ci_high``: this arm's conversion rate minus the holdout's,
    with Newcombe's 95% interval (None for the holdout itself, or without a holdout)."""

    DERIVED: ClassVar[tuple[str, ...]] = ("conversion_rate",)

    variant: str
    enrolled: int = 0
    converted: int = 0
    revenue: float = 0.0
    difference: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None

    @property
    def conversion_rate(self) -> float | None:
        return rate(self.converted, self.enrolled)

    def against(self, holdout: VariantResult | None) -> VariantResult:
        """This arm with its difference to ``holdout`` filled in."""
        if holdout is None or holdout is self:
            return self
        found = newcombe(self.converted, self.enrolled, holdout.converted, holdout.enrolled)
        if found is None:
            return self
        d, low, high = found
        return VariantResult(
            self.variant,
            self.enrolled,
            self.converted,
            self.revenue,
            round(d, 4),
            round(low, 4),
            round(high, 4),
        )


@dataclass(frozen=True)
class SplitResult:
    journey_id: str
    step_id: str | None
    holdout: VariantResult | None
    variants: tuple[VariantResult, ...] = ()


# --- NPS ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class NpsCounts:
    """NPS = % promoters (9–10) − % detractors (0–6), from −100 to 100; passives are 7–8. ``key`` names the
    group (an ISO week ``2026-W10``, a journey id, a SKU, a locale; None for the whole)."""

    DERIVED: ClassVar[tuple[str, ...]] = ("nps",)

    key: str | None = None
    label: str | None = None
    responses: int = 0
    promoters: int = 0
    passives: int = 0
    detractors: int = 0

    @property
    def nps(self) -> float | None:
        if not self.responses:
            return None
        return round(100 * (self.promoters - self.detractors) / self.responses, 1)


@dataclass(frozen=True)
class NpsComment:
    answered_at: datetime
    score: int
    comment: str
    customer_id: str
    order_id: str | None
    locale: str | None


@dataclass(frozen=True)
class Nps:
    overall: NpsCounts = field(default_factory=NpsCounts)
    by_week: tuple[NpsCounts, ...] = ()
    by_journey: tuple[NpsCounts, ...] = ()
    by_product: tuple[NpsCounts, ...] = ()
    by_locale: tuple[NpsCounts, ...] = ()
    latest_comments: tuple[NpsComment, ...] = ()


# --- delivery, repeat purchase, churn, referral, complaints --------------------------------------------
@dataclass(frozen=True)
class DeliveryCounts:
    """Delivered orders that had a promised date: ``on_time`` when delivered (UTC calendar day) on or
    before it; ``days_late_total`` sums the days past it of the late ones."""

    DERIVED: ClassVar[tuple[str, ...]] = ("on_time_rate", "average_days_late")

    key: str | None = None
    delivered: int = 0
    on_time: int = 0
    late: int = 0
    days_late_total: int = 0
    max_days_late: int = 0

    @property
    def on_time_rate(self) -> float | None:
        return rate(self.on_time, self.delivered)

    @property
    def average_days_late(self) -> float | None:
        """Over the late orders only."""
        return round(self.days_late_total / self.late, 2) if self.late else None


@dataclass(frozen=True)
class OnTimeDelivery:
    """``without_promise``: delivered orders with no promised date (not in the rate); ``overdue``: orders
    still not delivered (placed or shipped) whose promised date is before the report's day."""

    overall: DeliveryCounts = field(default_factory=DeliveryCounts)
    by_week: tuple[DeliveryCounts, ...] = ()
    without_promise: int = 0
    overdue: int = 0


@dataclass(frozen=True)
class RepeatWindow:
    """Of the customers whose first order is at least ``days`` old (``eligible``), those who ordered again
    within ``days`` of it (``repeated``)."""

    DERIVED: ClassVar[tuple[str, ...]] = ("rate",)

    days: int
    eligible: int = 0
    repeated: int = 0

    @property
    def rate(self) -> float | None:
        return rate(self.repeated, self.eligible)


@dataclass(frozen=True)
class RepeatPurchase:
    """Customers whose first order fell in the period (``first_time_customers``), by window."""

    first_time_customers: int = 0
    windows: tuple[RepeatWindow, ...] = ()


@dataclass(frozen=True)
class Churn:
    """Of the customers with an order before ``as_of − window_days`` (``customers``), those with no order
    since (``churned``)."""

    DERIVED: ClassVar[tuple[str, ...]] = ("rate",)

    window_days: int
    as_of: datetime
    customers: int = 0
    churned: int = 0

    @property
    def rate(self) -> float | None:
        return rate(self.churned, self.customers)


@dataclass(frozen=True)
class Referral:
    """Referral codes issued in the period (a code is created when a message shows it) → the clicks on
    their links → the orders placed with them → those orders' total."""

    DERIVED: ClassVar[tuple[str, ...]] = ("click_rate", "order_rate")

    codes_sent: int = 0
    referrers_clicked: int = 0
    clicks: int = 0
    orders: int = 0
    revenue: float = 0.0

    @property
    def click_rate(self) -> float | None:
        """Share of codes whose link was clicked at least once."""
        return rate(self.referrers_clicked, self.codes_sent)

    @property
    def order_rate(self) -> float | None:
        """Orders per code issued."""
        return rate(self.orders, self.codes_sent)


@dataclass(frozen=True)
class TicketCounts:
    """Tickets opened in the period: how many are resolved and the median time it took."""

    category: str
    opened: int = 0
    resolved: int = 0
    still_open: int = 0
    median_resolution_s: float | None = None


@dataclass(frozen=True)
class Complaints:
    """``overall`` is the ``complaint`` category; ``by_category`` every ticket category."""

    overall: TicketCounts = field(default_factory=lambda: TicketCounts("complaint"))
    by_category: tuple[TicketCounts, ...] = ()


# --- the whole report ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Period:
    """``since`` inclusive, ``until`` exclusive (None: unbounded); ``as_of`` is ``until`` or the time the
    report was made: windows that end "now" (churn, repeat purchase, overdue) end there."""

    since: datetime | None
    until: datetime | None
    as_of: datetime


@dataclass(frozen=True)
class Report:
    generated_at: datetime
    period: Period
    journey: str | None
    funnel: tuple[JourneyFunnel, ...]
    splits: tuple[SplitResult, ...]
    nps: Nps
    on_time_delivery: OnTimeDelivery
    repeat_purchase: RepeatPurchase
    churn: Churn
    referral: Referral
    complaints: Complaints
    #: Distinct messages of the cohort that waited when due (the sum of the steps' ``deferred``).
    deferred: int = 0
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        plain = to_plain(self)
        assert isinstance(plain, dict)
        return plain


def to_plain(value: Any) -> Any:
    """JSON-ready data: dataclasses → dicts (fields, then ``DERIVED`` properties), tuples → lists, instants
    and days → ISO 8601 strings."""
    if is_dataclass(value) and not isinstance(value, type):
        out = {f.name: to_plain(getattr(value, f.name)) for f in fields(value)}
        for name in getattr(value, "DERIVED", ()):
            out[name] = to_plain(getattr(value, name))
        return out
    if isinstance(value, Mapping):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_plain(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value
