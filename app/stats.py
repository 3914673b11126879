"""What a run did, per journey step: the rows of the run's Prefect table artifact and of the CLI summary.

Outcomes are counted from data, never from the engine's trace text: ledger statuses (``sent``,
``skipped:<reason>``, ``failed``, ``unknown``, ``retry``), ``due`` per advanced step, and the engine's
:class:`~posventa.engine.Deferral` records (quiet hours and frequency cap → ``deferred``, complaint hold
→ ``held``).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from posventa.engine import Deferral, DeferralReason

#: How each deferral reason shows in the run table.
DEFERRAL_OUTCOME = {
    DeferralReason.QUIET_HOURS: "deferred",
    DeferralReason.FREQUENCY_CAP: "deferred",
    DeferralReason.COMPLAINT_HOLD: "held",
}


@dataclass
class Stats:
    rows: Counter[tuple[str, str, str]] = field(default_factory=Counter)  # (journey, step, outcome)
    enrollments: int = 0
    failures: list[str] = field(default_factory=list)

    def add(self, journey: str, step: str, outcome: str, n: int = 1) -> None:
        self.rows[(journey, step, outcome)] += n

    def add_deferral(self, journey: str, deferral: Deferral) -> None:
        self.add(journey, deferral.step, DEFERRAL_OUTCOME[deferral.reason])

    def merge(self, other: Stats) -> Stats:
        self.rows.update(other.rows)
        self.enrollments += other.enrollments
        self.failures += other.failures
        return self

    def total(self, outcome_prefix: str) -> int:
        return sum(n for (_, _, o), n in self.rows.items() if o.startswith(outcome_prefix))

    def table(self) -> list[dict[str, Any]]:
        by_step: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
        for (j, s, o), n in self.rows.items():
            by_step[(j, s)][o] += n
        out = []
        for (j, s), c in sorted(by_step.items()):
            skipped = {k: v for k, v in c.items() if k.startswith("skipped")}
            out.append(
                {
                    "journey": j,
                    "step": s,
                    "due": c["due"],
                    "sent": c["sent"],
                    "skipped": sum(skipped.values()),
                    "skip reasons": ", ".join(
                        f"{k.split(':', 1)[-1]}×{v}" for k, v in sorted(skipped.items())
                    ),
                    "deferred": c["deferred"] + c["held"],
                    "failed": c["failed"],
                    "unknown": c["unknown"],
                }
            )
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "rows": [[j, s, o, n] for (j, s, o), n in sorted(self.rows.items())],
            "enrollments": self.enrollments,
            "failures": self.failures[:50],
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Stats:
        st = cls(enrollments=d.get("enrollments", 0), failures=list(d.get("failures", [])))
        for j, s, o, n in d.get("rows", []):
            st.rows[(j, s, o)] += n
        return st


@dataclass
class IngestReport:
    accepted: int = 0
    duplicates: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (line or index, reason)
