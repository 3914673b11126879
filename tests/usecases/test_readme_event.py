"""The README's example event, pasted today: its shell snippet dates it now, so it enrolls (an event older
than ``stale_after`` would be kept but enroll nobody — a fixed date in the README would age out)."""

from __future__ import annotations

import json
import re
import subprocess
from datetime import UTC, datetime, timedelta

from uc_builders import ROOT

from app.services import Services


def _readme_event() -> dict[str, object]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(r"\n(curl [^\n]*/v1/events[^`]*?<<EOF\n)(.*?\nEOF)\n", readme, re.S)
    assert found, "the README no longer shows the example event as a curl command with a heredoc"
    done = subprocess.run(
        ["bash", "-c", "cat <<EOF\n" + found.group(2)], capture_output=True, text=True, check=True, timeout=30
    )
    event: dict[str, object] = json.loads(done.stdout)
    return event


def test_the_readme_example_event_is_dated_now_and_enrolls(svc: Services) -> None:
    event = _readme_event()
    now = datetime.now(UTC)
    occurred = datetime.fromisoformat(str(event["occurred_at"]))
    assert abs(occurred - now) < timedelta(minutes=5)
    order = event["order"]
    assert isinstance(order, dict)
    assert order["promised_delivery_date"] == (now + timedelta(days=3)).date().isoformat()
    svc.plans.publish()
    report = svc.ingest.apply([event], "api", now=now)
    assert (report.accepted, report.rejected) == (1, [])
    with svc.store.read() as tx:
        enrolled = [e.journey_id for e in tx.enrollments.for_customer("c-42")]
    assert enrolled == ["post_purchase"]
