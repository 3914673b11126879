"""Messages per second through SendGridSender to the loopback fake: batched vs one request per message.

Why: the architecture counts on batching (one mail/send request for up to 500 customers of one step) to
keep a nightly sweep within SendGrid's request rate; this measures what batching buys on this machine.
Loopback only, bounded by ``n``. Run: ``python -m benchmarks.bench_email [n]``.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from infra.email.fake_sendgrid import FakeSendGrid
from infra.email.message import Outcome, OutgoingEmail
from infra.email.sendgrid_sender import SendGridSender

API_KEY = "SG.bench"


def _messages(n: int, run: str) -> list[OutgoingEmail]:
    return [
        OutgoingEmail(
            ledger_key=f"bench-{run}-{i}:nps_survey:0",
            to_email=f"cliente{i}@example.com",
            to_name=None,
            subject="¿Qué tal tu compra?",
            html="<p>Hola, <a href='https://posventa.example/nps'>responde la encuesta</a></p>",
            text="Hola, responde la encuesta: https://posventa.example/nps",
            journey="post_purchase",
            step="nps_survey",
            promotional=True,
            unsubscribe_url=f"https://posventa.example/u/{i}",
        )
        for i in range(n)
    ]


def _timed(sender: SendGridSender, batches: list[list[OutgoingEmail]]) -> tuple[float, int]:
    started = time.perf_counter()
    sent = 0
    for batch in batches:
        sent += sum(r.outcome is Outcome.SENT for r in sender.send(batch))
    return time.perf_counter() - started, sent


def run(n: int = 2000) -> dict[str, Any]:
    """Send ``n`` messages batched (max_batch 500) and ``n`` one per request; return rates and ratio."""
    if n < 1:
        raise ValueError("n must be at least 1")
    with FakeSendGrid(api_key=API_KEY) as fake:
        sender = SendGridSender(API_KEY, "tienda@posventa.example", host=fake.url, timeout=10.0)
        batched_s, batched_sent = _timed(sender, [_messages(n, "batched")])
        batched_requests = fake.request_count
        fake.reset()
        singles_s, singles_sent = _timed(sender, [[m] for m in _messages(n, "single")])
        single_requests = fake.request_count
    if batched_sent != n or singles_sent != n:
        raise RuntimeError(
            f"not every message was sent: batched {batched_sent}, single {singles_sent} of {n}"
        )
    batched_rate = n / batched_s
    single_rate = n / singles_s
    result = {
        "n": n,
        "batched_msgs_per_s": round(batched_rate, 1),
        "batched_requests": batched_requests,
        "single_msgs_per_s": round(single_rate, 1),
        "single_requests": single_requests,
        "ratio": round(batched_rate / single_rate, 1),
    }
    print(
        f"email: {n} messages  batched {result['batched_msgs_per_s']:.0f} msg/s ({batched_requests} requests)"
        f"  one-per-request {result['single_msgs_per_s']:.0f} msg/s ({single_requests} requests)"
        f"  ratio {result['ratio']:.1f}x"
    )
    return result


if __name__ == "__main__":
    run(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
