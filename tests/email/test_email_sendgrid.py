"""SendGridSender driven through the real ``sendgrid`` client against the loopback fake."""

from __future__ import annotations

import json
import logging
import random
import socket
import threading
import time
from collections.abc import Callable

import pytest

from infra.email.fake_sendgrid import FakeSendGrid
from infra.email.message import Outcome, OutgoingEmail
from infra.email.sendgrid_sender import SendGridSender, quiet_http_client_logging
from posventa.errors import ConfigError

MakeMessage = Callable[..., OutgoingEmail]
MakeSender = Callable[..., SendGridSender]

# -- batching ------------------------------------------------------------------------------------------


def test_same_content_goes_in_one_request(
    fake: FakeSendGrid, make_sender: MakeSender, make_message: MakeMessage
) -> None:
    messages = [make_message(i) for i in range(25)]
    results = make_sender().send(messages)

    assert [r.outcome for r in results] == [Outcome.SENT] * 25
    assert [r.ledger_key for r in results] == [m.ledger_key for m in messages]
    assert fake.request_count == 1
    assert fake.requests[0].personalizations == 25
    assert len({r.provider_message_id for r in results}) == 1
    assert results[0].provider_message_id == fake.messages[0].message_id
    assert sorted(m.to for m in fake.messages) == sorted(m.to_email for m in messages)


def test_different_content_or_step_is_not_batched(
    fake: FakeSendGrid, make_sender: MakeSender, make_message: MakeMessage
) -> None:
    messages = [
        make_message(0),
        make_message(1, html="<p>otro</p>"),
        make_message(2, step="review_ask"),
        make_message(3, subject="Otro asunto"),
        make_message(4),
    ]
    results = make_sender().send(messages)

    assert all(r.outcome is Outcome.SENT for r in results)
    assert fake.request_count == 4
    stored = {m.custom_args["posventa_key"]: m for m in fake.messages}
    assert stored["enr-1:nps_survey:0"].html == "<p>otro</p>"
    assert stored["enr-3:nps_survey:0"].subject == "Otro asunto"
    assert stored["enr-0:nps_survey:0"].message_id == stored["enr-4:nps_survey:0"].message_id


def test_max_batch_caps_personalizations(
    fake: FakeSendGrid, make_sender: MakeSender, make_message: MakeMessage
) -> None:
    results = make_sender(max_batch=3).send([make_message(i) for i in range(7)])

    assert all(r.outcome is Outcome.SENT for r in results)
    assert [r.personalizations for r in fake.requests] == [3, 3, 1]


def test_repeated_address_is_split_across_requests(
    fake: FakeSendGrid, make_sender: MakeSender, make_message: MakeMessage
) -> None:
    same = {"to_email": "ana@example.com"}
    messages = [
        make_message(0, **same),
        make_message(1),
        make_message(2, to_email="ANA@Example.com"),  # SendGrid compares addresses case-insensitively
        make_message(3, **same),
        make_message(4),
    ]
    results = make_sender().send(messages)

    assert [r.outcome for r in results] == [Outcome.SENT] * 5
    assert [r.personalizations for r in fake.requests] == [3, 1, 1]
    assert all(r.status == 202 for r in fake.requests)


def test_invalid_address_fails_locally_and_the_rest_is_sent(
    fake: FakeSendGrid, make_sender: MakeSender, make_message: MakeMessage
) -> None:
    messages = [
        make_message(0),
        make_message(1, to_email="no-es-un-correo"),
        make_message(2, to_email="ana@example..com"),
        make_message(3, to_email="ana @example.com"),
        make_message(4),
    ]
    results = make_sender().send(messages)

    assert [r.outcome for r in results] == [
        Outcome.SENT,
        Outcome.FAILED,
        Outcome.FAILED,
        Outcome.FAILED,
        Outcome.SENT,
    ]
    assert "invalid recipient address" in (results[1].error or "")
    assert fake.request_count == 1
    assert sorted(m.to for m in fake.messages) == ["cliente0@example.com", "cliente4@example.com"]


def test_repeated_ledger_key_is_sent_once(
    fake: FakeSendGrid, make_sender: MakeSender, make_message: MakeMessage
) -> None:
    message = make_message(0)
    results = make_sender().send([message, make_message(1), message])

    assert results[0] == results[2]
    assert results[0].outcome is Outcome.SENT
    assert len(fake.messages) == 2


def test_results_keep_input_order_across_groups(
    fake: FakeSendGrid, make_sender: MakeSender, make_message: MakeMessage
) -> None:
    messages = [make_message(i, step=("a" if i % 2 else "b")) for i in range(6)]
    results = make_sender().send(messages)

    assert [r.ledger_key for r in results] == [m.ledger_key for m in messages]
    assert fake.request_count == 2


def test_empty_batch_makes_no_request(fake: FakeSendGrid, make_sender: MakeSender) -> None:
    assert make_sender().send([]) == []
    assert fake.request_count == 0


# -- what each message carries -------------------------------------------------------------------------


def test_list_unsubscribe_headers_only_on_promotional(
    fake: FakeSendGrid, make_sender: MakeSender, make_message: MakeMessage
) -> None:
    promo = make_message(
        0, promotional=True, unsubscribe_url="https://posventa.example/u/abc", step="referral_ask"
    )
    results = make_sender().send([promo, make_message(1)])

    assert all(r.outcome is Outcome.SENT for r in results)
    stored = {m.to: m for m in fake.messages}
    assert stored["cliente0@example.com"].headers == {
        "List-Unsubscribe": "<https://posventa.example/u/abc>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
    assert stored["cliente1@example.com"].headers == {}


def test_promotional_without_unsubscribe_url_is_refused(
    fake: FakeSendGrid, make_sender: MakeSender, make_message: MakeMessage
) -> None:
    [result] = make_sender().send([make_message(0, promotional=True, unsubscribe_url=None)])

    assert result.outcome is Outcome.FAILED
    assert "unsubscribe_url" in (result.error or "")
    assert fake.request_count == 0


def test_each_promotional_message_keeps_its_own_unsubscribe_url_in_a_batch(
    fake: FakeSendGrid, make_sender: MakeSender, make_message: MakeMessage
) -> None:
    messages = [
        make_message(i, promotional=True, unsubscribe_url=f"https://posventa.example/u/{i}") for i in range(3)
    ]
    make_sender().send(messages)

    assert fake.request_count == 1
    for stored in fake.messages:
        index = stored.to.removeprefix("cliente").split("@")[0]
        assert stored.headers["List-Unsubscribe"] == f"<https://posventa.example/u/{index}>"


def test_custom_args_and_categories_round_trip(
    fake: FakeSendGrid, make_sender: MakeSender, make_message: MakeMessage
) -> None:
    message = make_message(7, extra_custom_args={"tenant": "acme", "plan_version": "3f2a"})
    make_sender().send([message])

    [stored] = fake.messages
    assert stored.custom_args == {
        "tenant": "acme",
        "plan_version": "3f2a",
        "posventa_key": "enr-7:nps_survey:0",
    }
    assert stored.categories == ("post_purchase", "post_purchase:nps_survey")
    assert stored.to_name == "Cliente 7"
    assert stored.from_email == "tienda@posventa.example"
    assert stored.text == message.text
    assert stored.html == message.html


def test_display_name_with_comma_is_quoted(
    fake: FakeSendGrid, make_sender: MakeSender, make_message: MakeMessage
) -> None:
    results = make_sender().send(
        [make_message(0, to_name="García, Ana"), make_message(1, to_name='Pepe "el; grande"')]
    )

    assert [r.outcome for r in results] == [Outcome.SENT, Outcome.SENT]
    assert sorted(m.to_name or "" for m in fake.messages) == ['"García, Ana"', '"Pepe \\"el; grande\\""']


def test_asm_group_only_on_promotional(
    fake: FakeSendGrid, make_sender: MakeSender, make_message: MakeMessage
) -> None:
    sender = make_sender(asm_group_id=4242)
    sender.send(
        [make_message(0, promotional=True, unsubscribe_url="https://posventa.example/u/0"), make_message(1)]
    )

    groups = {m.to: m.asm_group_id for m in fake.messages}
    assert groups == {"cliente0@example.com": 4242, "cliente1@example.com": None}


def test_dynamic_template_batches_with_per_recipient_data(
    fake: FakeSendGrid, make_sender: MakeSender, make_message: MakeMessage
) -> None:
    messages = [
        make_message(i, sendgrid_template_id="d-0123456789abcdef", html="", text="", template_data={"n": i})
        for i in range(3)
    ]
    results = make_sender().send(messages)

    assert all(r.outcome is Outcome.SENT for r in results)
    assert fake.request_count == 1
    assert sorted((m.dynamic_template_data or {})["n"] for m in fake.messages) == [0, 1, 2]
    assert all(m.template_id == "d-0123456789abcdef" and m.html is None for m in fake.messages)


def test_template_data_that_is_not_json_fails_locally(
    fake: FakeSendGrid, make_sender: MakeSender, make_message: MakeMessage
) -> None:
    message = make_message(0, sendgrid_template_id="d-1", template_data={"when": object()})
    [result] = make_sender().send([message])

    assert result.outcome is Outcome.FAILED
    assert fake.request_count == 0


def test_sandbox_mode_validates_without_storing(
    fake: FakeSendGrid, make_sender: MakeSender, make_message: MakeMessage
) -> None:
    results = make_sender(sandbox=True).send([make_message(0), make_message(1)])

    assert [(r.outcome, r.provider_message_id) for r in results] == [(Outcome.SENT, None)] * 2
    assert fake.requests[0].status == 200
    assert fake.messages == []


# -- failures, classified ------------------------------------------------------------------------------


def test_rate_limited_is_retry_with_reset_time(
    fake: FakeSendGrid, make_sender: MakeSender, make_message: MakeMessage
) -> None:
    now = 1_700_000_000.0
    fake.fail_next(429, headers={"X-RateLimit-Reset": str(int(now) + 30)})
    sender = make_sender(clock=lambda: now, rng=random.Random(1))
    results = sender.send([make_message(0), make_message(1)])

    assert {r.outcome for r in results} == {Outcome.RETRY}
    assert results[0].retry_after is not None
    assert 30.0 <= results[0].retry_after < 31.0
    assert "too many requests" in (results[0].error or "")
    assert fake.messages == []
    assert make_sender().send([make_message(0)])[0].outcome is Outcome.SENT  # the window passed


def test_rate_limit_stops_the_rest_of_the_call(
    fake: FakeSendGrid, make_sender: MakeSender, make_message: MakeMessage
) -> None:
    fake.fail_next(429)
    results = make_sender().send(
        [make_message(0), make_message(1, step="other"), make_message(2, step="third")]
    )

    assert [r.outcome for r in results] == [Outcome.RETRY] * 3
    assert all(r.retry_after is not None for r in results)
    assert fake.request_count == 1


def test_rate_limit_reset_in_the_past_means_retry_soon(
    fake: FakeSendGrid, make_sender: MakeSender, make_message: MakeMessage
) -> None:
    fake.fail_next(429, headers={"X-RateLimit-Reset": "1000"})
    [result] = make_sender().send([make_message(0)])

    assert result.outcome is Outcome.RETRY
    assert result.retry_after is not None and 0.0 <= result.retry_after < 1.0


@pytest.mark.parametrize("status", [400, 403, 404])
def test_client_errors_fail_with_sendgrid_message(
    fake: FakeSendGrid, make_sender: MakeSender, make_message: MakeMessage, status: int
) -> None:
    body = json.dumps(
        {
            "errors": [
                {
                    "message": "The from address does not match a verified Sender Identity.",
                    "field": "from",
                    "help": "https://sendgrid.example/help",
                }
            ]
        }
    ).encode()
    fake.fail_next(status, body=body)
    [result] = make_sender().send([make_message(0)])

    assert result.outcome is Outcome.FAILED
    assert result.error == (
        f"{status}: The from address does not match a verified Sender Identity. (field from)"
    )


def test_wrong_api_key_is_failed_with_message(
    fake: FakeSendGrid, make_sender: MakeSender, make_message: MakeMessage
) -> None:
    [result] = make_sender(api_key="SG.wrong").send([make_message(0)])

    assert result.outcome is Outcome.FAILED
    assert result.error == "401: The provided authorization grant is invalid, expired, or revoked"
    assert fake.messages == []


def test_400_naming_one_personalization_fails_only_that_one(
    fake: FakeSendGrid, make_sender: MakeSender, make_message: MakeMessage
) -> None:
    body = json.dumps(
        {
            "errors": [
                {"message": "Does not contain a valid address.", "field": "personalizations.1.to.0.email"}
            ]
        }
    ).encode()
    fake.fail_next(400, body=body)
    results = make_sender().send([make_message(i) for i in range(3)])

    assert [r.outcome for r in results] == [Outcome.SENT, Outcome.FAILED, Outcome.SENT]
    assert "Does not contain a valid address." in (results[1].error or "")
    assert [r.personalizations for r in fake.requests] == [3, 2]


def test_413_splits_the_batch_in_halves(
    fake: FakeSendGrid, make_sender: MakeSender, make_message: MakeMessage
) -> None:
    fake.fail_next(413, count=2)  # the whole batch, then its first half
    results = make_sender().send([make_message(i) for i in range(8)])

    assert all(r.outcome is Outcome.SENT for r in results)
    assert [(r.status, r.personalizations) for r in fake.requests] == [
        (413, 8),
        (413, 4),
        (202, 2),
        (202, 2),
        (202, 4),
    ]
    assert len(fake.messages) == 8


def test_413_for_a_single_message_is_failed(
    fake: FakeSendGrid, make_sender: MakeSender, make_message: MakeMessage
) -> None:
    fake.fail_next(413)
    [result] = make_sender().send([make_message(0)])

    assert result.outcome is Outcome.FAILED
    assert (result.error or "").startswith("413:")


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_are_unknown(
    fake: FakeSendGrid, make_sender: MakeSender, make_message: MakeMessage, status: int
) -> None:
    fake.fail_next(status)
    results = make_sender().send([make_message(0), make_message(1)])

    assert {r.outcome for r in results} == {Outcome.UNKNOWN}
    assert (results[0].error or "").startswith(f"{status}:")


def test_stored_then_500_is_the_ambiguous_case(
    fake: FakeSendGrid, make_sender: MakeSender, make_message: MakeMessage
) -> None:
    fake.fail_next(500, store=True)
    [result] = make_sender().send([make_message(0)])

    assert result.outcome is Outcome.UNKNOWN
    assert [m.custom_args["posventa_key"] for m in fake.messages] == ["enr-0:nps_survey:0"]


def test_slow_reply_times_out_as_unknown(
    fake: FakeSendGrid, make_sender: MakeSender, make_message: MakeMessage
) -> None:
    fake.slow_next(1.0)
    started = time.monotonic()
    [result] = make_sender(timeout=0.3).send([make_message(0)])
    elapsed = time.monotonic() - started

    assert result.outcome is Outcome.UNKNOWN
    assert "timed out" in (result.error or "")
    assert elapsed < 0.9
    assert len(fake.messages) == 1  # SendGrid had queued it: resending blindly would duplicate


def test_server_that_never_answers_cannot_hang_the_sender(make_message: MakeMessage) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    thread = threading.Thread(target=lambda: accepted.append(listener.accept()[0]), daemon=True)
    thread.start()
    try:
        sender = SendGridSender(
            "SG.k",
            "tienda@posventa.example",
            host=f"http://127.0.0.1:{listener.getsockname()[1]}",
            timeout=0.3,
        )
        started = time.monotonic()
        [result] = sender.send([make_message(0)])
        assert result.outcome is Outcome.UNKNOWN
        assert time.monotonic() - started < 0.9
    finally:
        thread.join(timeout=1)
        for connection in accepted:
            connection.close()
        listener.close()


def test_dropped_connection_after_request_is_unknown(
    fake: FakeSendGrid, make_sender: MakeSender, make_message: MakeMessage
) -> None:
    fake.drop_next()
    [result] = make_sender().send([make_message(0)])

    assert result.outcome is Outcome.UNKNOWN
    assert fake.requests[0].status is None
    assert make_sender().send([make_message(1)])[0].outcome is Outcome.SENT


def test_refused_connection_is_retry(make_message: MakeMessage) -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there now
    sender = SendGridSender("SG.k", "tienda@posventa.example", host=f"http://127.0.0.1:{port}", timeout=0.5)
    [result] = sender.send([make_message(0)])

    assert result.outcome is Outcome.RETRY
    assert "not sent" in (result.error or "")


def test_unresolvable_host_is_retry(make_message: MakeMessage) -> None:
    sender = SendGridSender(
        "SG.k", "tienda@posventa.example", host="http://no-such-host.invalid", timeout=0.5
    )
    [result] = sender.send([make_message(0)])

    assert result.outcome is Outcome.RETRY


# -- configuration, threads and secrets ----------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides",
    [
        {"api_key": " "},
        {"from_email": "tienda"},
        {"host": "api.sendgrid.com"},
        {"timeout": 0},
        {"max_batch": 1001},
    ],
)
def test_bad_configuration_is_a_config_error(overrides: dict[str, object]) -> None:
    options: dict[str, object] = {"api_key": "SG.k", "from_email": "tienda@posventa.example"}
    options.update(overrides)
    with pytest.raises(ConfigError):
        SendGridSender(**options)  # type: ignore[arg-type]


def test_concurrent_senders_share_nothing_mutable(
    fake: FakeSendGrid, make_sender: MakeSender, make_message: MakeMessage
) -> None:
    sender = make_sender()
    outcomes: list[Outcome] = []
    lock = threading.Lock()

    def work(base: int) -> None:
        for i in range(5):
            [result] = sender.send([make_message(base + i)])
            with lock:
                outcomes.append(result.outcome)

    threads = [threading.Thread(target=work, args=(n * 100,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    assert outcomes == [Outcome.SENT] * 20
    assert len(fake.messages) == 20


def test_api_key_never_reaches_the_logs(
    fake: FakeSendGrid, make_sender: MakeSender, make_message: MakeMessage, caplog: pytest.LogCaptureFixture
) -> None:
    http_logger = logging.getLogger("python_http_client.client")
    caplog.set_level(logging.DEBUG)
    sender = make_sender()
    key = fake.api_key

    # Control: without the guard, python_http_client really does log the Bearer key at DEBUG.
    saved_filters = list(http_logger.filters)
    for item in saved_filters:
        http_logger.removeFilter(item)
    http_logger.setLevel(logging.DEBUG)
    with pytest.raises(Exception, match="HTTP Error 400"):
        sender._client().client.mail.send.post(request_body={"personalizations": []})
    assert key in caplog.text
    caplog.clear()

    quiet_http_client_logging()
    http_logger.setLevel(logging.DEBUG)  # someone turns DEBUG on again after the sender exists
    fake.fail_next(500)
    fake.fail_next(400)
    sender.send([make_message(0)])
    sender.send([make_message(1)])
    sender.send([make_message(2), make_message(3, to_email="ana@example.com")])
    make_sender(api_key="SG.another-secret").send([make_message(4)])

    assert caplog.records, "the sender should have logged something"
    assert key not in caplog.text
    assert "SG.another-secret" not in caplog.text
    assert "Bearer" not in caplog.text
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("posventa"))
    assert "ana@example.com" not in ours and "a***@example.com" in ours
    assert key not in repr(sender)


def test_python_http_client_logger_is_held_at_info(make_sender: MakeSender) -> None:
    logging.getLogger("python_http_client").setLevel(logging.DEBUG)
    make_sender()
    assert logging.getLogger("python_http_client").level == logging.INFO


def test_concurrent_requests_send_each_message_once(fake: FakeSendGrid) -> None:
    """Personalised messages need a request each; with concurrency they go out in parallel, once each."""
    sender = SendGridSender(fake.api_key, "hola@tienda.example", host=fake.url, timeout=5, concurrency=8)
    msgs = [
        OutgoingEmail(ledger_key=f"k{i}", to_email=f"c{i}@example.com", to_name=None, subject=f"Hola {i}",
                      html=f"<p>{i}</p>", text=str(i), journey="j", step="s", promotional=False,
                      unsubscribe_url=None)
        for i in range(40)
    ]  # fmt: skip
    results = sender.send(msgs)
    assert [r.ledger_key for r in results] == [m.ledger_key for m in msgs]
    assert {r.outcome for r in results} == {Outcome.SENT}
    assert fake.request_count == 40
    assert sorted(m.custom_args["posventa_key"] for m in fake.messages) == sorted(f"k{i}" for i in range(40))


def test_passthrough_template_batches_personalised_messages(fake: FakeSendGrid) -> None:
    """With a pass-through dynamic template, different rendered content shares one request."""
    sender = SendGridSender(
        fake.api_key,
        "hola@tienda.example",
        host=fake.url,
        timeout=5,
        passthrough_template_id="d-0123456789ab",
    )
    msgs = [
        OutgoingEmail(ledger_key=f"k{i}", to_email=f"c{i}@example.com", to_name=None, subject=f"Hola {i}",
                      html=f"<p>{i}</p>", text=str(i), journey="j", step="s", promotional=True,
                      unsubscribe_url=f"https://tienda.example/u/{i}")
        for i in range(30)
    ]  # fmt: skip
    results = sender.send(msgs)
    assert {r.outcome for r in results} == {Outcome.SENT}
    assert fake.request_count == 1
    by_key = {m.custom_args["posventa_key"]: m for m in fake.messages}
    assert by_key["k7"].template_id == "d-0123456789ab"
    assert by_key["k7"].dynamic_template_data == {"subject": "Hola 7", "html": "<p>7</p>", "text": "7"}
    assert by_key["k7"].headers["List-Unsubscribe"] == "<https://tienda.example/u/7>"
