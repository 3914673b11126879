"""No customer's address or name in any log: the web and runtime paths that log errors run — a failed
insert (an item the database refuses, an unsubscribe whose write fails: a 500), bad webhooks (forged, and
signed but failing to apply), a send SendGrid refuses with the address in its answer, a sweep the database
fails — while every log record is captured (SQL statements included, at INFO), and so is the ``serve``
process's own log file. None may hold the raw addresses or names used; masked ones (``z***@…``) may."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import traceback
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from sqlalchemy.orm import Session
from web_builders import JOURNEYS, REPO, SECRET, T0, Clock, order_placed, post_purchase, wait_until_serving

from app.links import UNSUBSCRIBE
from app.services import Services
from infra.db import models as m
from infra.email.fake_sendgrid import FakeSendGrid
from infra.email.sendgrid_sender import SendGridSender
from infra.settings import Settings
from infra.wiring import build_services
from posventa import tokens
from web.app import create_app
from web.logs import ScrubFilter

pytestmark = pytest.mark.postgres

#: The person whose unsubscribe fails in the database, and whose webhook events fail to apply.
NAME, EMAIL = "Zoë Quintanilla-Bravo", "zoe.quintanilla@leakprobe.example"
#: The person whose order.placed the database refuses.
NAME2, EMAIL2 = "Íñigo Ostolaza-Arrieta", "inigo.ostolaza@leakprobe.example"
#: The person a send fails for, and whose ledger row the database refuses in a sweep.
NAME3, EMAIL3 = "Maialen Etxeberria-Goñi", "maialen.etxe@leakprobe.example"
PRIVATE = (NAME, EMAIL, NAME2, EMAIL2, NAME3, EMAIL3, "zoe.quintanilla", "inigo.ostolaza", "maialen.etxe")


def leaks(text_: str) -> list[str]:
    return [p for p in PRIVATE if p in text_]


def everything_logged(records: list[logging.LogRecord]) -> str:
    """Each record as a handler would write it, traceback included."""
    fmt = logging.Formatter("%(levelname)s %(name)s: %(message)s")
    return "\n".join(fmt.format(r) for r in records)


def placed(n: int, name: str, email: str) -> dict[str, Any]:
    event = order_placed(f"leak-{n}", f"leak-o{n}", email=email)
    event["customer"]["name"] = name
    return event


def unsubscribe_url(secret: str = SECRET, now: datetime = T0) -> str:
    payload = {"c": "leak-1", "e": EMAIL, "j": "post_purchase", "k": "1:thank_you:0"}
    token = tokens.sign(payload, secret, purpose=UNSUBSCRIBE, now=now, ttl=timedelta(days=30))
    return f"/u/{token}"


def sg_events(email: str, at: float) -> list[dict[str, Any]]:
    return [
        {"email": email, "timestamp": int(at), "event": kind, "sg_event_id": f"leak-{kind}-{int(at)}"}
        for kind in ("bounce", "spamreport", "unsubscribe", "click")
    ]


@pytest.fixture
def refusing_db(session: Session) -> Iterator[None]:
    """Rules of this database that Posventa's checks do not know, each refusing one person's row."""
    engine = session.get_bind()
    rules = {
        "customers": f"CHECK (name IS DISTINCT FROM '{NAME2}')",
        "suppressions": f"CHECK (email <> '{EMAIL}')",
        "ledger": f"CHECK (to_email IS DISTINCT FROM '{EMAIL3}' OR status <> 'pending')",
    }
    with engine.begin() as conn:
        for table, rule in rules.items():
            conn.execute(text(f"ALTER TABLE {table} ADD CONSTRAINT leak_probe {rule}"))
    try:
        yield
    finally:
        session.close()
        with engine.begin() as conn:
            for table in rules:
                conn.execute(text(f"ALTER TABLE {table} DROP CONSTRAINT leak_probe"))


def test_no_address_or_name_in_the_logs_of_web_and_runtime_errors(
    svc: Services,
    settings: Settings,
    clock: Clock,
    signer: FakeSendGrid,
    auth: dict[str, str],
    refusing_db: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # (set_level also sets the capturing handler's level: the last call, DEBUG, is the one that stays)
    caplog.set_level(logging.WARNING, logger="httpx")  # the test client's request lines: its URLs are ours
    caplog.set_level(logging.INFO, logger="sqlalchemy.engine")  # statements, never result rows
    caplog.set_level(logging.DEBUG)
    client = TestClient(create_app(svc, settings=settings, clock=clock), raise_server_exceptions=False)

    # a failed insert: the database refuses an order.placed; the batch's other item is kept
    r = client.post("/v1/events", json=[placed(1, NAME, EMAIL), placed(2, NAME2, EMAIL2)], headers=auth)
    assert r.status_code == 207 and r.json()["accepted"] == 1, r.text
    assert leaks(r.text) == []  # nor does the answer quote the refused row back

    # a failed write behind a page: unsubscribing this address fails in the database → 500 + a logged trace
    r = client.post(unsubscribe_url(), data={"List-Unsubscribe": "One-Click"})
    assert r.status_code == 500 and leaks(r.text) == []
    assert any("unhandled error" in rec.getMessage() for rec in caplog.records)

    # bad webhooks: one forged, one signed whose events fail to apply (suppressing the address fails)
    at = int(clock.now.timestamp())
    body, headers = signer.signed_webhook_request(sg_events(EMAIL, at), timestamp=at)
    assert client.post("/webhooks/sendgrid", content=body + b" ", headers=headers).status_code == 403
    r = client.post("/webhooks/sendgrid", content=body, headers=headers)
    assert r.status_code == 200 and r.json()["failed"] >= 1, r.text

    # runtime: a send SendGrid refuses, quoting the address in its answer
    with FakeSendGrid(api_key="SG.test") as fake:
        sender = SendGridSender("SG.test", settings.email_from, host=fake.url, timeout=2.0)
        runtime = build_services(settings, sender=sender, plans={"post_purchase": post_purchase()})
        try:
            assert runtime.ingest.apply([placed(3, NAME3, EMAIL3)], "api", T0).accepted == 1
            fake.fail_next(
                400,
                body=json.dumps(
                    {"errors": [{"message": f"The to address {EMAIL3} bounced", "field": None}]}
                ).encode(),
            )
            with pytest.raises(Exception) as failed:  # the database refuses the ledger row: the sweep fails
                runtime.sweep(T0)
            trace = "".join(traceback.format_exception(failed.value))  # what a task runner logs
            assert "leak_probe" in trace and leaks(trace) == [], trace
            with runtime.store.begin() as tx:  # let the row through, and the send fail at SendGrid
                tx.session.execute(text("ALTER TABLE ledger DROP CONSTRAINT leak_probe"))  # type: ignore[attr-defined]
                tx.session.execute(text("ALTER TABLE ledger ADD CONSTRAINT leak_probe CHECK (true)"))  # type: ignore[attr-defined]
            runtime.sweep(T0)
            with runtime.store.read() as tx:
                statuses = set(tx.session.scalars(select(m.LedgerEntry.status)))  # type: ignore[attr-defined]
            assert statuses == {"failed", "sent"}  # the first message SendGrid refused, the other went
        finally:
            runtime.store.dispose()  # type: ignore[attr-defined]

    logged = everything_logged(caplog.records)
    assert "[SQL parameters hidden due to hide_parameters=True]" in logged  # the statements were logged
    assert "z***@leakprobe.example" in logged or "m***@leakprobe.example" in logged  # masked is fine
    assert leaks(logged) == [], [line for line in logged.splitlines() if leaks(line)][:5]


def test_no_address_or_name_in_the_serve_log(
    db_url: str, svc: Services, api_key: str, signer: FakeSendGrid, refusing_db: None, tmp_path: Path
) -> None:
    """The same failures against ``posventa serve`` (uvicorn), its output written to ``serve.log``."""
    journeys = tmp_path / "journeys"
    journeys.mkdir()
    (journeys / "post_purchase.yaml").write_bytes((JOURNEYS / "post_purchase.yaml").read_bytes())
    (journeys / "templates").symlink_to(JOURNEYS / "templates")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSVENTA_") and "proxy" not in k.lower()}
    secret = "s" * 40
    env.update(
        POSVENTA_DATABASE_URL=db_url,
        POSVENTA_JOURNEYS_DIR=str(journeys),
        POSVENTA_SECRET_KEY=secret,
        POSVENTA_OUTBOX_DIR=str(tmp_path / "outbox"),
        POSVENTA_SENDGRID_WEBHOOK_PUBLIC_KEY=signer.webhook_public_key_b64,
        PYTHONPATH=str(REPO),
    )
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-c", f"from web.app import serve; serve('127.0.0.1', {port})"],
            cwd=tmp_path,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(proc, base, log_path.read_text)
        with httpx.Client(base_url=base, trust_env=False, timeout=30) as http:
            headers = {"Authorization": f"Bearer {api_key}"}
            r = http.post(
                "/v1/events", json=[placed(1, NAME, EMAIL), placed(2, NAME2, EMAIL2)], headers=headers
            )
            assert r.status_code == 207 and leaks(r.text) == [], r.text
            r = http.post(unsubscribe_url(secret, datetime.now(UTC)), data={"List-Unsubscribe": "One-Click"})
            assert r.status_code == 500 and leaks(r.text) == []
            body, signed = signer.signed_webhook_request(sg_events(EMAIL, time.time()))
            assert http.post("/webhooks/sendgrid", content=body + b" ", headers=signed).status_code == 403
            assert http.post("/webhooks/sendgrid", content=body, headers=signed).json()["failed"] >= 1
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    written = log_path.read_text(encoding="utf-8", errors="replace")
    assert "unhandled error" in written and "leak_probe" in written, written[-3000:]
    assert "SendGrid webhook refused" in written
    assert leaks(written) == [], [line for line in written.splitlines() if leaks(line)][:5]


def test_the_scrub_filter_masks_addresses_in_messages_and_tracebacks() -> None:
    try:
        raise ValueError(f"cannot send to {EMAIL}")
    except ValueError as exc:
        record = logging.LogRecord(
            "lib", logging.ERROR, __file__, 1, "to %s", (EMAIL,), (type(exc), exc, None)
        )
    assert ScrubFilter().filter(record)
    written = logging.Formatter().format(record)
    assert "z***@leakprobe.example" in written and leaks(written) == []
    odd = logging.LogRecord("lib", logging.INFO, __file__, 1, "%s %s", ("one",), None)
    assert ScrubFilter().filter(odd)  # a record that cannot be formatted is left to the handler
