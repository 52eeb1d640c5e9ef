"""TwilioSender + the real twilio SDK against Twilio's own OpenAPI contract (Prism) and a faulty server.

Needs `npm ci` (package.json pins Prism and the spec). Offline: every server
listens on 127.0.0.1 on a free port.
"""

from __future__ import annotations

import base64
import json
import logging
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from otplogin import runtime
from otplogin.errors import DeliveryError, DeliveryRejected, SecretUnavailable
from otplogin.sms.twilio import TwilioSender, sender_from_secrets
from tests.support.apps import app_client
from tests.support.prism import FaultyTwilio, PrismMock, RecordingProxy, free_port

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "test-auth-token-4f1d9c"
SENDER = "+15005550006"
PHONE = "+243812345678"
PHONE_FORMS = (PHONE, PHONE[1:], PHONE[4:])  # +243812345678, 243812345678, 812345678
BODY = "Votre code est 493817"
MESSAGES_PATH = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"


@pytest.fixture(scope="module")
def prism() -> Iterator[PrismMock]:
    with PrismMock() as mock:
        yield mock


@pytest.fixture(scope="module")
def recorder(prism: PrismMock) -> Iterator[RecordingProxy]:
    with RecordingProxy(prism.base_url) as proxy:
        yield proxy


@pytest.fixture()
def proxy(recorder: RecordingProxy) -> RecordingProxy:
    recorder.clear()
    return recorder


@pytest.fixture(scope="module")
def faulty_server() -> Iterator[FaultyTwilio]:
    with FaultyTwilio() as server:
        yield server


@pytest.fixture()
def faulty(faulty_server: FaultyTwilio) -> FaultyTwilio:
    faulty_server.hits = 0
    return faulty_server


def assert_no_secret_or_pii(text: str) -> None:
    for form in PHONE_FORMS:
        assert form not in text
    assert BODY not in text and "493817" not in text
    assert AUTH_TOKEN not in text
    assert ACCOUNT_SID not in text


# --- the contract (Prism) ----------------------------------------------------


def test_sms_send_is_accepted_by_the_contract(prism: PrismMock, proxy: RecordingProxy) -> None:
    before = prism.logs().count("did not pass the validation rules")

    TwilioSender(ACCOUNT_SID, AUTH_TOKEN, SENDER, api_base=proxy.base_url).send(PHONE, BODY, "sms")

    sent = proxy.last
    assert (sent.method, sent.path, sent.status) == ("POST", MESSAGES_PATH, 201)
    assert sent.form == {"To": [PHONE], "From": [SENDER], "Body": [BODY]}
    assert sent.headers["Authorization"] == "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
    assert prism.logs().count("did not pass the validation rules") == before


def test_api_base_with_a_trailing_slash_reaches_the_same_path(prism: PrismMock, proxy: RecordingProxy) -> None:
    # Local runs configure api_base as typed by hand, often with a trailing slash.
    TwilioSender(ACCOUNT_SID, AUTH_TOKEN, SENDER, api_base=proxy.base_url + "/").send(PHONE, BODY, "sms")
    assert (proxy.last.path, proxy.last.status) == (MESSAGES_PATH, 201)


def test_whatsapp_send_carries_whatsapp_prefixes(prism: PrismMock, proxy: RecordingProxy) -> None:
    sender = TwilioSender(ACCOUNT_SID, AUTH_TOKEN, SENDER, api_base=proxy.base_url)

    sender.send(PHONE, BODY, "whatsapp")

    sent = proxy.last
    assert (sent.path, sent.status) == (MESSAGES_PATH, 201)
    assert sent.form["To"] == [f"whatsapp:{PHONE}"]
    assert sent.form["From"] == [f"whatsapp:{SENDER}"]
    assert sent.form["Body"] == [BODY]


def test_whatsapp_prefix_is_never_doubled(proxy: RecordingProxy) -> None:
    sender = TwilioSender(ACCOUNT_SID, AUTH_TOKEN, f"whatsapp:{SENDER}", api_base=proxy.base_url)

    sender.send(f"whatsapp:{PHONE}", BODY, "whatsapp")
    assert proxy.last.form["To"] == [f"whatsapp:{PHONE}"]
    assert proxy.last.form["From"] == [f"whatsapp:{SENDER}"]

    sender.send(PHONE, BODY, "sms")
    assert proxy.last.form["From"] == [SENDER]


def test_request_the_contract_rejects_raises_delivery_error(prism: PrismMock, proxy: RecordingProxy) -> None:
    # An account SID that is not AC + 32 hex breaks the path pattern: Prism answers 422.
    sender = TwilioSender("AC123", AUTH_TOKEN, SENDER, api_base=proxy.base_url)

    with pytest.raises(DeliveryError) as caught:
        sender.send(PHONE, BODY, "sms")

    assert proxy.last.status == 422
    assert "HTTP 422" in str(caught.value)
    assert_no_secret_or_pii(str(caught.value))
    assert 'accountsid must match pattern "^AC[0-9a-fA-F]{32}$"' in prism.logs()


def test_the_mock_enforces_the_contract(prism: PrismMock) -> None:
    # Guards the test setup itself: a POST without `To` must be refused, or
    # the mock is not validating and the tests above prove nothing.
    auth = base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
    request = urllib.request.Request(
        prism.base_url + MESSAGES_PATH,
        data=f"From={SENDER}&Body=hi".encode(),
        headers={"Authorization": f"Basic {auth}", "Content-Type": "application/x-www-form-urlencoded"},
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=10)
    assert caught.value.code == 422
    problem = json.loads(caught.value.read())
    assert problem["validation"][0]["message"] == "Request body must have required property 'To'"


def test_empty_recipient_is_refused_before_any_request(proxy: RecordingProxy) -> None:
    # Twilio refuses it (21604), but Prism would accept To="": refuse locally.
    sender = TwilioSender(ACCOUNT_SID, AUTH_TOKEN, SENDER, api_base=proxy.base_url)

    with pytest.raises(DeliveryError, match="no recipient"):
        sender.send("  ", BODY, "sms")
    assert proxy.requests == []


# --- faults (429, 500, timeout, ...) ---------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("429", "twilio sms: HTTP 429, Twilio error 20429"),
        ("500", "twilio sms: HTTP 500, Twilio error 20500"),
        ("invalid_to", "twilio sms: HTTP 400, Twilio error 21211"),
        ("garbage", "twilio sms: request failed (JSONDecodeError)"),
    ],
)
def test_provider_errors_raise_delivery_error_without_pii(faulty: FaultyTwilio, mode: str, expected: str) -> None:
    faulty.mode = mode
    sender = TwilioSender(ACCOUNT_SID, AUTH_TOKEN, SENDER, api_base=faulty.base_url, timeout=5)

    started = time.monotonic()
    with pytest.raises(DeliveryError) as caught:
        sender.send(PHONE, BODY, "sms")

    assert time.monotonic() - started < 5
    assert str(caught.value) == expected
    assert_no_secret_or_pii(str(caught.value))
    # Twilio's message (which quotes the number for 21211) is not kept as a cause either.
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert faulty.hits == 1  # one attempt, no hidden retries


def test_timeout_raises_delivery_error_within_bound(faulty: FaultyTwilio) -> None:
    faulty.mode, faulty.delay = "timeout", 30.0
    sender = TwilioSender(ACCOUNT_SID, AUTH_TOKEN, SENDER, api_base=faulty.base_url, timeout=1.0)

    started = time.monotonic()
    with pytest.raises(DeliveryError) as caught:
        sender.send(PHONE, BODY, "whatsapp")
    elapsed = time.monotonic() - started

    assert 0.9 <= elapsed < 5, elapsed
    assert str(caught.value) == "twilio whatsapp: no answer within 1 s (timeout)"
    assert_no_secret_or_pii(str(caught.value))
    assert faulty.hits == 1


def test_connection_refused_raises_delivery_error() -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    sender = TwilioSender(ACCOUNT_SID, AUTH_TOKEN, SENDER, api_base=closed, timeout=2)

    started = time.monotonic()
    with pytest.raises(DeliveryError) as caught:
        sender.send(PHONE, BODY, "sms")

    assert time.monotonic() - started < 5
    assert str(caught.value) == "twilio sms: connection failed"
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


# --- ambiguity: only a definite refusal means "not sent" ------------------------------


@pytest.mark.parametrize(
    ("mode", "definite"),
    [("429", True), ("invalid_to", True), ("500", False), ("garbage", False), ("drop", False), ("timeout", False)],
)
def test_only_a_definite_refusal_counts_as_not_sent(faulty: FaultyTwilio, mode: str, definite: bool) -> None:
    # A 4xx is Twilio refusing the message; a 5xx, a timeout, a dropped connection or an
    # unreadable 2xx may come after Twilio accepted (and billed) it.
    faulty.mode, faulty.delay = mode, 5.0
    sender = TwilioSender(ACCOUNT_SID, AUTH_TOKEN, SENDER, api_base=faulty.base_url, timeout=1)
    with pytest.raises(DeliveryError) as caught:
        sender.send(PHONE, BODY, "sms")
    assert isinstance(caught.value, DeliveryRejected) is definite, str(caught.value)
    assert_no_secret_or_pii(str(caught.value))


def test_no_connection_and_no_recipient_are_definite_refusals() -> None:
    closed = TwilioSender(ACCOUNT_SID, AUTH_TOKEN, SENDER, api_base=f"http://127.0.0.1:{free_port()}", timeout=2)
    with pytest.raises(DeliveryRejected):
        closed.send(PHONE, BODY, "sms")
    with pytest.raises(DeliveryRejected):
        closed.send(" ", BODY, "sms")


def send_through(faulty: FaultyTwilio, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SMS_PROVIDER", "twilio")
    monkeypatch.setenv("TWILIO_API_BASE", faulty.base_url)
    runtime.reset()
    return app_client("send_otp")


def test_a_send_that_may_have_been_delivered_keeps_its_quota(stack, faulty: FaultyTwilio, monkeypatch) -> None:
    faulty.mode = "500"
    send = send_through(faulty, monkeypatch)
    r = send.post("/", json={"phone": PHONE})
    assert r.status_code == 502 and r.get_json()["error"]["code"] == "sms_delivery_failed"
    assert 1 <= int(r.headers["Retry-After"]) <= 60 and r.get_json()["error"]["retry_after"] == int(r.headers["Retry-After"])
    # The text may be on its way: a retry waits for the cooldown instead of paying for a second one.
    r = send.post("/", json={"phone": PHONE})
    assert r.status_code == 429 and r.get_json()["error"]["limit"] == "resend_cooldown"
    assert faulty.hits == 1


def test_a_definite_refusal_gives_the_quota_back(stack, faulty: FaultyTwilio, monkeypatch) -> None:
    faulty.mode = "invalid_to"
    send = send_through(faulty, monkeypatch)
    for _ in range(2):  # nothing was sent: the client may retry at once
        r = send.post("/", json={"phone": PHONE})
        assert r.status_code == 502 and "Retry-After" not in r.headers
    assert faulty.hits == 2


# --- no leaks in logs, repr; no twilio import where not needed ---------------


def test_logs_carry_no_phone_body_or_token(
    caplog: pytest.LogCaptureFixture, proxy: RecordingProxy, faulty: FaultyTwilio
) -> None:
    caplog.set_level(logging.DEBUG)  # the application at its most verbose
    TwilioSender(ACCOUNT_SID, AUTH_TOKEN, SENDER, api_base=proxy.base_url).send(PHONE, BODY, "whatsapp")
    faulty.mode = "invalid_to"
    with pytest.raises(DeliveryError):
        TwilioSender(ACCOUNT_SID, AUTH_TOKEN, SENDER, api_base=faulty.base_url).send(PHONE, BODY, "sms")

    assert proxy.last.status == 201  # the send really happened while capturing
    assert logging.getLogger("twilio.http_client").getEffectiveLevel() == logging.WARNING
    assert not [r for r in caplog.records if r.name.startswith("twilio")]
    text = "\n".join(f"{r.name} {r.getMessage()}" for r in caplog.records)
    for form in PHONE_FORMS:
        assert form not in text
    assert BODY not in text and AUTH_TOKEN not in text


def test_repr_shows_no_credentials() -> None:
    text = repr(TwilioSender(ACCOUNT_SID, AUTH_TOKEN, SENDER))
    assert text == "<TwilioSender api_base=https://api.twilio.com>"


def test_importing_the_sms_interface_does_not_import_twilio() -> None:
    code = "import sys, otplogin.sms, otplogin.errors; assert 'twilio' not in sys.modules, 'twilio imported'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# --- construction from Secret Manager values -----------------------------------


def secrets(**overrides: str) -> dict[str, str]:
    values = {"twilio-account-sid": ACCOUNT_SID + "\n", "twilio-auth-token": AUTH_TOKEN, "twilio-sender": SENDER}
    values.update(overrides)
    return values


def test_sender_from_secrets_sends_through_the_contract(proxy: RecordingProxy) -> None:
    read: list[str] = []

    def get_secret(secret_id: str) -> str:
        read.append(secret_id)
        return secrets()[secret_id]

    sender_from_secrets(get_secret, proxy.base_url).send(PHONE, BODY, "sms")

    assert sorted(read) == ["twilio-account-sid", "twilio-auth-token", "twilio-sender"]
    assert (proxy.last.path, proxy.last.status) == (MESSAGES_PATH, 201)  # SID stripped of its newline


@pytest.mark.parametrize(
    ("overrides", "secret_id", "reason"),
    [
        ({"twilio-auth-token": "  \n"}, "twilio-auth-token", "empty"),
        ({"twilio-sender": ""}, "twilio-sender", "empty"),
        ({"twilio-account-sid": "SK" + "0" * 32}, "twilio-account-sid", "not an account SID"),
    ],
)
def test_sender_from_secrets_names_the_bad_secret(overrides: dict[str, str], secret_id: str, reason: str) -> None:
    values = secrets(**overrides)
    with pytest.raises(SecretUnavailable) as caught:
        sender_from_secrets(values.__getitem__, None)
    assert caught.value.secret_id == secret_id
    assert caught.value.reason.startswith(reason)
    assert AUTH_TOKEN not in str(caught.value)


def test_sender_from_secrets_passes_secret_errors_through() -> None:
    def get_secret(secret_id: str) -> str:
        raise SecretUnavailable(secret_id, "not found")

    with pytest.raises(SecretUnavailable) as caught:
        sender_from_secrets(get_secret, None)
    assert caught.value.secret_id == "twilio-account-sid"
