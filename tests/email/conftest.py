"""Fixtures for the email channel: a loopback fake SendGrid per test and message factories.

There is deliberately no ``__init__.py`` here: a package named ``email`` next to ``tests/`` on
``sys.path`` would shadow the standard library's ``email``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from infra.email.fake_sendgrid import FakeSendGrid
from infra.email.message import OutgoingEmail
from infra.email.sendgrid_sender import SendGridSender

API_KEY = "SG.test-key-0123456789abcdef"
FROM = "tienda@posventa.example"


@pytest.fixture
def fake() -> Iterator[FakeSendGrid]:
    with FakeSendGrid(api_key=API_KEY) as server:
        yield server


@pytest.fixture
def make_message() -> Callable[..., OutgoingEmail]:
    def make(index: int = 0, **overrides: Any) -> OutgoingEmail:
        fields: dict[str, Any] = {
            "ledger_key": f"enr-{index}:nps_survey:0",
            "to_email": f"cliente{index}@example.com",
            "to_name": f"Cliente {index}",
            "subject": "¿Qué tal tu compra?",
            "html": '<p>Hola, <a href="https://posventa.example/nps?s=9">responde</a></p>',
            "text": "Hola, responde: https://posventa.example/nps?s=9",
            "journey": "post_purchase",
            "step": "nps_survey",
            "promotional": False,
            "unsubscribe_url": None,
        }
        fields.update(overrides)
        return OutgoingEmail(**fields)

    return make


@pytest.fixture
def make_sender(fake: FakeSendGrid) -> Callable[..., SendGridSender]:
    def make(**overrides: Any) -> SendGridSender:
        options: dict[str, Any] = {"api_key": API_KEY, "from_email": FROM, "host": fake.url, "timeout": 2.0}
        options.update(overrides)
        return SendGridSender(**options)

    return make
