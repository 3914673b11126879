"""How a run ends where ops look: its final state, its log, its table artifact and its Prefect events.

**The final state.** A run with permanent send failures or engine errors ends **Failed**, its message
saying how many and why (``312 sends failed: 401: … ×312 — 400 due · 88 sent · 312 failed``); a clean
run ends Completed with the same headline (``400 due · 400 sent``). Failed, not a Completed state with a
custom name such as "Completed with failures": Prefect 3.9 stores a custom name but judges by the state
*type* — the dashboard's failed-runs count, the UI's colours and the state filters read the type, so a
renamed Completed would stay green and uncounted, which is the problem this fixes — and it names the
run's event after the state name (``prefect.flow-run.Completed with failures``), which automations and
filters written for ``prefect.flow-run.Failed`` would never see. Nothing retries a flow run here
(``retries`` is 0), so Failed only reports. ``unknown`` sends alone do not fail a run: they await the
webhook's evidence or an operator's decision (``posventa retry --unknown``); the message names them.

**The log.** One WARNING line per reason with its count, then up to 20 engine detail lines.

**The artifact.** Every run publishes its table — one row per journey step with due, sent, skipped (and
why), deferred, failed, unknown and the failure reasons — even when nothing was due, so an idle run says
"0 due" instead of nothing.

**The events** (names are stored tags: never renamed): ``posventa.run.completed`` after every run with its
counts, ``posventa.sends.failed`` when sends failed, ``posventa.enrollments.failed`` on engine errors.
Their resource is ``posventa.run.<flow run id>``; Prefect relates them to the flow run, its deployment and
tags. ``infra/deploy/prefect-automations.yaml`` notifies on them (``posventa automations``).

**No traceback.** A run that is not clean returns ``Failed(message=…)``: nothing raised, nothing to trace.
Prefect's engine still re-raises a Failed state's result when a worker runs the flow, and logs that as
"Engine execution exited with unexpected exception" with a traceback of its own internals; the run's
state already says why it failed, so :class:`QuietFailedRun` drops exactly that record for the messages
this process concluded with (any other exception keeps its traceback).

A flow called in-process (``posventa tick``, tests) returns the :class:`~app.stats.Stats` of a clean run;
``flow(..., return_state=True)`` and :func:`stats_of` give a failed run's state and what it did.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from datetime import datetime
from typing import Any

from prefect import get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.events import emit_event
from prefect.exceptions import FailedRun
from prefect.states import Completed, Failed, State

from app.stats import ENGINE, SHARD, Stats

#: Reasons an event carries (the rest are counted, not listed).
EVENT_REASONS = 20
MAX_MESSAGE = 1500


#: What the runs concluded in this process did, by flow run id (the last few: for in-process callers).
_CONCLUDED: OrderedDict[str, tuple[str, Stats]] = OrderedDict()
_KEEP = 64


def stats_of(state: State[Any]) -> Stats | None:
    """The :class:`Stats` of a run concluded in this process (a failed run's state carries none)."""
    found = _CONCLUDED.get(str(state.state_details.flow_run_id))
    return found[1] if found else None


class QuietFailedRun(logging.Filter):
    """Drop the engine's traceback of a Failed state that :func:`conclude` returned on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, FailedRun) and "exited with unexpected exception" in str(record.msg):
            return str(exc) not in {message for message, _ in _CONCLUDED.values()}
        return True


for _name in ("prefect.flow_runs", "prefect.engine"):
    logging.getLogger(_name).addFilter(QuietFailedRun())


def _remember(message: str, stats: Stats) -> None:
    from prefect.runtime import flow_run

    _CONCLUDED[str(flow_run.id)] = (message, stats)
    while len(_CONCLUDED) > _KEEP:
        _CONCLUDED.popitem(last=False)


def conclude(
    stats: Stats,
    *,
    kind: str,
    now: datetime,
    due: int | None,
    key: str,
    events: bool = True,
    artifact: bool = True,
) -> State[Any]:
    """Log, publish and emit what the run did; return its final state (see the module docstring)."""
    log = get_run_logger()
    for outcome, reason, n in stats.grouped():
        log.warning("%s ×%d: %s", _LOG_LABEL.get(outcome, outcome), n, reason)
    for line in stats.failures[:20]:
        log.warning(line)
    headline = stats.headline(due)
    problems = stats.problems() or stats.skips()  # a run that skipped everything due says why
    if artifact:
        publish_table(stats, key=key, now=now, headline=headline)
    if stats.clean:
        message = f"{headline} — {problems}" if problems else headline
    else:
        message = f"{problems} — {headline}"
    message = message[:MAX_MESSAGE]
    if events:
        emit_outcome(stats, kind=kind, now=now, due=due, message=message)
    _remember(message, stats)
    if stats.clean:
        return Completed(message=message, data=stats)
    return Failed(message=message)


_LOG_LABEL = {
    "failed": "send failed",
    "unknown": "send unknown (awaiting reconciliation)",
    ENGINE: "engine error",
    SHARD: "shard did not finish",
}


def publish_table(stats: Stats, *, key: str, now: datetime, headline: str) -> None:
    rows = stats.table() or [_EMPTY_ROW]
    create_table_artifact(
        rows,
        key=key,
        description=f"{headline} at {now:%Y-%m-%d %H:%M} UTC. Per journey step: due, sent, skipped (with "
        "reason), deferred/held, failed, unknown, failure reasons",
    )


_EMPTY_ROW = {
    "journey": "(nothing due)",
    "step": "",
    "due": 0,
    "sent": 0,
    "skipped": 0,
    "skip reasons": "",
    "deferred": 0,
    "failed": 0,
    "unknown": 0,
    "failure reasons": "",
}


def emit_outcome(stats: Stats, *, kind: str, now: datetime, due: int | None, message: str) -> None:
    from prefect.runtime import flow_run

    resource = {
        "prefect.resource.id": f"posventa.run.{flow_run.id}",
        "prefect.resource.name": str(flow_run.name),
        "posventa.run.kind": kind,
    }
    grouped = stats.grouped()

    def reasons(*outcomes: str) -> list[dict[str, Any]]:
        mine = [{"outcome": o, "reason": r, "n": n} for o, r, n in grouped if o in outcomes]
        return mine[:EVENT_REASONS]

    counts = stats.counts()
    base = {"kind": kind, "at": now.isoformat(), "summary": message}
    emit_event(
        "posventa.run.completed",
        resource=resource,
        payload={
            **base,
            "due": due,
            **counts,
            "clean": stats.clean,
            "reasons": reasons("failed", "unknown", ENGINE, SHARD),
        },
    )
    if counts["failed"]:
        emit_event(
            "posventa.sends.failed",
            resource=resource,
            payload={**base, "failed": counts["failed"], "reasons": reasons("failed")},
        )
    if counts["engine_errors"] or counts["shard_errors"]:
        emit_event(
            "posventa.enrollments.failed",
            resource=resource,
            payload={
                **base,
                "engine_errors": counts["engine_errors"],
                "shard_errors": counts["shard_errors"],
                "reasons": reasons(ENGINE, SHARD),
            },
        )
