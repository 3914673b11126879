"""What a run did, per journey step: the rows of the run's Prefect table artifact and of the CLI summary,
and why the run is not clean when it is not.

Outcomes are counted from data, never from the engine's trace text: ledger statuses (``sent``,
``skipped:<reason>``, ``failed``, ``unknown``, ``retry``), ``due`` per advanced step, and the engine's
:class:`~posventa.engine.Deferral` records (quiet hours and frequency cap → ``deferred``, complaint hold
→ ``held``).

**Reasons** group what went wrong, so ops read ``401: invalid key ×312`` instead of 312 lines:

* an engine error (advancing an enrollment raised) arrives as a detail line in :attr:`Stats.failures`
  (``enrollment 12: KeyError: 'x'``); it is counted under the outcome ``engine`` with the text after the
  enrollment id, without a journey step (the line does not say which one);
* a send or journey webhook that ended ``failed`` or ``unknown`` has its reason in the ledger row: the
  flow reads them for the run (:func:`ledger_reasons`) and adds them per journey step.

A run is **clean** when no send failed, no enrollment failed in the engine and every shard of a fanned-out
run finished (outcome ``shard``); ``unknown`` sends await reconciliation and are reported, but do not make
a run unclean (they resolve themselves).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from app.ports import Store
from posventa.engine import Deferral, DeferralReason

#: How each deferral reason shows in the run table.
DEFERRAL_OUTCOME = {
    DeferralReason.QUIET_HOURS: "deferred",
    DeferralReason.FREQUENCY_CAP: "deferred",
    DeferralReason.COMPLAINT_HOLD: "held",
}

#: The reason outcome of an enrollment whose advance raised (its detail line is in ``Stats.failures``).
ENGINE = "engine"
#: The reason outcome of a shard of a fanned-out run that did not finish (crashed, or never started).
SHARD = "shard"
#: Ledger statuses whose reasons a run reports.
REASON_STATUSES = ("failed", "unknown")
#: Detail lines kept per run (the reasons keep every count).
MAX_FAILURE_LINES = 200
_REASON_CHARS = 200

Reason = tuple[str, str, str, str]  # (journey, step, outcome, reason)


def short_reason(text: str | None) -> str:
    """One line, at most 200 characters: what groups equal reasons together."""
    one = " ".join((text or "").split())
    return (one[: _REASON_CHARS - 1] + "…" if len(one) > _REASON_CHARS else one) or "no reason given"


def _engine_reason(line: str) -> str:
    """``enrollment 12: KeyError: 'x'`` → ``KeyError: 'x'``."""
    head, sep, rest = line.partition(": ")
    return short_reason(rest if sep and head.startswith("enrollment ") else line)


@dataclass
class Stats:
    rows: Counter[tuple[str, str, str]] = field(default_factory=Counter)  # (journey, step, outcome)
    enrollments: int = 0
    failures: list[str] = field(default_factory=list)
    reasons: Counter[Reason] = field(default_factory=Counter)
    #: How many of ``failures`` are already counted in ``reasons``.
    _folded: int = field(default=0, repr=False, compare=False)

    def add(self, journey: str, step: str, outcome: str, n: int = 1) -> None:
        self.rows[(journey, step, outcome)] += n

    def add_deferral(self, journey: str, deferral: Deferral) -> None:
        self.add(journey, deferral.step, DEFERRAL_OUTCOME[deferral.reason])

    def _fold(self) -> None:
        """Count the engine's detail lines added since the last fold under their reason."""
        for line in self.failures[self._folded :]:
            self.reasons[("", "", ENGINE, _engine_reason(line))] += 1
        del self.failures[MAX_FAILURE_LINES:]
        self._folded = len(self.failures)

    def merge(self, other: Stats) -> Stats:
        self._fold()
        other._fold()
        self.rows.update(other.rows)
        self.enrollments += other.enrollments
        self.reasons.update(other.reasons)
        self.failures += other.failures[: max(0, MAX_FAILURE_LINES - len(self.failures))]
        self._folded = len(self.failures)
        return self

    def total(self, outcome_prefix: str) -> int:
        return sum(n for (_, _, o), n in self.rows.items() if o.startswith(outcome_prefix))

    # -- why a run is not clean ---------------------------------------------------------------------------

    def grouped(self) -> list[tuple[str, str, int]]:
        """``(outcome, reason, n)`` over all journey steps, most frequent first."""
        self._fold()
        by: Counter[tuple[str, str]] = Counter()
        for (_, _, outcome, reason), n in self.reasons.items():
            by[(outcome, reason)] += n
        return sorted(((o, r, n) for (o, r), n in by.items()), key=lambda x: (-x[2], x[0], x[1]))

    @property
    def engine_errors(self) -> int:
        self._fold()
        return sum(n for (_, _, o, _), n in self.reasons.items() if o == ENGINE)

    @property
    def shard_errors(self) -> int:
        return sum(n for (_, _, o, _), n in self.reasons.items() if o == SHARD)

    @property
    def failed_sends(self) -> int:
        """Messages and journey webhooks that ended ``failed`` (engine errors are counted apart)."""
        return max(0, self.total("failed") - self.engine_errors)

    @property
    def clean(self) -> bool:
        return self.total("failed") == 0 and self.engine_errors == 0 and self.shard_errors == 0

    def counts(self) -> dict[str, int]:
        return {
            "enrollments": self.enrollments,
            "sent": self.total("sent"),
            "skipped": self.total("skipped"),
            "deferred": self.total("deferred") + self.total("held"),
            "failed": self.failed_sends,
            "engine_errors": self.engine_errors,
            "unknown": self.total("unknown"),
            "shard_errors": self.shard_errors,
        }

    def headline(self, due: int | None = None) -> str:
        """``20 due · 17 sent · 2 failed · 1 waiting`` (zeros left out, except the first figure). With
        ``due``, the enrollments due that neither sent nor skipped, deferred, failed… anything (they moved
        on to a wait, a branch, an exit) are ``waiting``, so the parts add up to the due ones."""
        c = self.counts()
        parts = [f"{due} due" if due is not None else f"{c['enrollments']} advanced"]
        accounted = sum(c[k] for k in ("sent", "skipped", "deferred", "failed", "unknown", "engine_errors"))
        c["waiting"] = max(0, due - accounted) if due is not None else 0
        names = (
            ("sent", "sent"),
            ("skipped", "skipped"),
            ("deferred", "deferred/held"),
            ("failed", "failed"),
            ("unknown", "unknown"),
            ("engine_errors", "engine errors"),
            ("shard_errors", "shards lost"),
            ("waiting", "waiting"),
        )
        parts += [f"{c[k]} {label}" for k, label in names if c[k]]
        return " · ".join(parts)

    def problems(self, limit: int = 5) -> str:
        """Why the run is not clean, grouped: ``2 sends failed: 401: bad key ×2; 1 enrollment failed in the
        engine: KeyError: 'x' ×1``; ``unknown`` sends too. Empty for a run with nothing to report."""
        groups = self.grouped()
        out = []
        for outcome, (one, many), total in (
            ("failed", ("send failed", "sends failed"), self.failed_sends),
            (
                ENGINE,
                ("enrollment failed in the engine", "enrollments failed in the engine"),
                self.engine_errors,
            ),
            (SHARD, ("shard did not finish", "shards did not finish"), self.shard_errors),
            ("unknown", ("send unknown", "sends unknown"), self.total("unknown")),
        ):
            if not total:
                continue
            what = one if total == 1 else many
            if outcome == "unknown":
                what += " (awaiting reconciliation)"
            mine = [(r, n) for o, r, n in groups if o == outcome]
            shown = ", ".join(f"{r} ×{n}" for r, n in mine[:limit])
            more = f" (+{len(mine) - limit} more)" if len(mine) > limit else ""
            out.append(f"{total} {what}" + (f": {shown}" if shown else "") + more)
        return "; ".join(out)

    def skips(self, limit: int = 5) -> str:
        """Why a run sent nothing when everything due was skipped — nothing sent, deferred, failed or
        unknown: ``3 skipped: thank_you expired ×2, thank_you suppressed:unsubscribed ×1``. Empty
        otherwise (the table has the skip reasons of every run)."""
        c = self.counts()
        busy = ("sent", "deferred", "failed", "unknown", "engine_errors", "shard_errors")
        if not c["skipped"] or any(c[k] for k in busy):
            return ""
        by: Counter[str] = Counter()
        for (_, step, outcome), n in self.rows.items():
            if outcome.startswith("skipped"):
                by[f"{step} {outcome.split(':', 1)[-1] if ':' in outcome else 'skipped'}"] += n
        ranked = sorted(by.items(), key=lambda x: (-x[1], x[0]))
        shown = ", ".join(f"{r} ×{n}" for r, n in ranked[:limit])
        more = f" (+{len(ranked) - limit} more)" if len(ranked) > limit else ""
        return f"{c['skipped']} skipped: {shown}{more}"

    # -- the run table ------------------------------------------------------------------------------------

    def table(self) -> list[dict[str, Any]]:
        by_step = self._step_counts()
        step_reasons: dict[tuple[str, str], list[str]] = defaultdict(list)
        explained: Counter[tuple[str, str]] = Counter()
        for (j, s, o, r), n in sorted(self.reasons.items(), key=lambda kv: (-kv[1], kv[0])):
            if o == ENGINE:
                continue
            step_reasons[(j, s)].append(f"{'unknown: ' if o == 'unknown' else ''}{r} ×{n}")
            if o == "failed":
                explained[(j, s)] += n
        out = []
        for (j, s), c in sorted(by_step.items()):
            skipped = {k: v for k, v in c.items() if k.startswith("skipped")}
            reasons = step_reasons.get((j, s), [])
            engine = c["failed"] - explained[(j, s)]
            if engine > 0 and self.engine_errors:
                reasons = [*reasons, f"engine error ×{engine}"]
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
                    "failure reasons": "; ".join(reasons),
                }
            )
        return out

    def _step_counts(self) -> dict[tuple[str, str], Counter[str]]:
        by_step: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
        for (j, s, o), n in self.rows.items():
            by_step[(j, s)][o] += n
        return by_step

    # -- crossing task and flow-run boundaries --------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        self._fold()
        return {
            "rows": [[j, s, o, n] for (j, s, o), n in sorted(self.rows.items())],
            "enrollments": self.enrollments,
            "failures": self.failures[:50],
            "reasons": [[j, s, o, r, n] for (j, s, o, r), n in sorted(self.reasons.items())],
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Stats:
        st = cls(enrollments=d.get("enrollments", 0), failures=list(d.get("failures", [])))
        for j, s, o, n in d.get("rows", []):
            st.rows[(j, s, o)] += n
        if "reasons" in d:
            for j, s, o, r, n in d["reasons"]:
                st.reasons[(j, s, o, r)] += n
            st._folded = len(st.failures)  # already counted in the reasons
        return st

    def records(self) -> list[dict[str, Any]]:
        """Flat rows ``{journey, step, outcome, reason, n}`` (a shard's table artifact, read back by its
        parent run with :meth:`from_records`): counts have an empty reason, reasons a non-empty one."""
        self._fold()
        out = [{"journey": "", "step": "", "outcome": "enrollments", "reason": "", "n": self.enrollments}]
        out += [
            {"journey": j, "step": s, "outcome": o, "reason": "", "n": n}
            for (j, s, o), n in sorted(self.rows.items())
        ]
        out += [
            {"journey": j, "step": s, "outcome": o, "reason": r, "n": n}
            for (j, s, o, r), n in sorted(self.reasons.items())
        ]
        return out

    @classmethod
    def from_records(cls, records: Iterable[Mapping[str, Any]]) -> Stats:
        st = cls()
        for r in records:
            j, s, o, reason, n = r["journey"], r["step"], r["outcome"], r["reason"], int(r["n"])
            if reason:
                st.reasons[(j, s, o, reason)] += n
            elif (j, s, o) == ("", "", "enrollments"):
                st.enrollments += n
            else:
                st.rows[(j, s, o)] += n
        return st

    def add_reasons(self, found: Iterable[tuple[str, str, str, str | None, int]]) -> Stats:
        """Add ``(journey, step, outcome, reason, n)`` rows (the ledger's, :func:`ledger_reasons`)."""
        for j, s, o, r, n in found:
            self.reasons[(j, s, o, short_reason(r))] += n
        return self


def ledger_reasons(store: Store, moved_at: datetime) -> list[tuple[str, str, str, str | None, int]]:
    """Why the sends and journey webhooks a run moved ended ``failed`` or ``unknown``, per journey step.

    A run hands its ``now`` to every ledger move it makes (the store stamps ``updated_at`` with it), and
    every shard of a fanned-out run shares the parent's ``now``: the run's outcomes are the rows stamped
    with it. Read once per run, after all of its shards finished."""
    with store.read() as tx:
        return tx.health.reasons(REASON_STATUSES, moved_at=moved_at)


@dataclass
class IngestReport:
    accepted: int = 0
    duplicates: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (line or index, reason)
