"""The functions as real processes (functions-framework), the way instances run in the cloud.

The seed's failure was a code sent by one instance and unknown to another.
Here sends and verifies hit different processes, one of them restarted.
"""

from __future__ import annotations

import re
import time

import pytest
import requests

from otplogin import store
from tests.support.apps import outbox_codes
from tests.support.functions import FunctionProcess
from tests.support.prism import FaultyTwilio, RecordingProxy
from tests.support.secret_manager import LocalSecretManager

PHONE = "+243812345678"


@pytest.fixture
def processes(tmp_path):
    started: list[FunctionProcess] = []

    def start(name: str, env: dict[str, str]) -> FunctionProcess:
        proc = FunctionProcess(name, env, log_path=tmp_path / f"{name}-{len(started)}.log").start()
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()


def post(proc: FunctionProcess, body: dict) -> requests.Response:
    return requests.post(proc.url, json=body, timeout=20)


def test_send_on_one_instance_verify_on_another_and_after_restart(stack, processes):
    env = stack | {"OTP_RESEND_COOLDOWN_SECONDS": "1"}
    sender_a, sender_b = processes("send_otp", env), processes("send_otp", env)
    verifier = processes("verify_otp", env)

    assert post(sender_a, {"phone": PHONE}).status_code == 202
    code = outbox_codes(store.client(), PHONE)[-1]
    assert post(verifier, {"phone": PHONE, "code": code}).status_code == 200

    time.sleep(1.1)
    assert post(sender_b, {"phone": PHONE, "locale": "fr"}).status_code == 202
    assert post(sender_a, {"phone": PHONE}).status_code == 429  # instance A sees B's cooldown
    verifier.restart()
    code = outbox_codes(store.client(), PHONE)[-1]
    assert post(verifier, {"phone": PHONE, "code": code}).status_code == 200
    assert post(verifier, {"phone": PHONE, "code": code}).json()["error"]["code"] == "code_expired"


def test_full_flow_through_twilio_contract_leaves_no_plaintext(stack, processes, prism):
    with RecordingProxy(prism.base_url) as twilio:
        env = stack | {"SMS_PROVIDER": "twilio", "TWILIO_API_BASE": twilio.base_url, "OTP_RESEND_COOLDOWN_SECONDS": "0"}
        send, verify = processes("send_otp", env), processes("verify_otp", env)
        for channel in ("sms", "whatsapp"):
            r = post(send, {"phone": PHONE, "channel": channel, "locale": "en"})
            assert r.status_code == 202, r.text
            form = twilio.last.form
            assert twilio.last.status == 201
            prefix = "whatsapp:" if channel == "whatsapp" else ""
            assert form["To"] == [prefix + PHONE] and form["From"][0].startswith(prefix + "+")
            code = re.search(r"\b(\d{6})\b", form["Body"][0]).group(1)
            assert post(verify, {"phone": PHONE, "code": code}).status_code == 200
    dump = _dump_firestore()
    assert dump, "the flow should have written documents"
    national = PHONE[4:]
    assert PHONE not in dump and national not in dump and code not in dump


def _dump_firestore() -> str:
    """Every document of every collection, as text."""
    parts = []
    for collection in store.client().collections():
        for doc in collection.stream():
            parts.append(f"{collection.id}/{doc.id} {doc.to_dict()}")
    return "\n".join(parts)


@pytest.mark.parametrize("mode", ["429", "invalid_to"])
def test_twilio_refusal_is_502_with_no_code_and_no_cooldown(stack, processes, mode):
    with FaultyTwilio(mode, delay=15) as twilio:
        send = processes("send_otp", stack | {"SMS_PROVIDER": "twilio", "TWILIO_API_BASE": twilio.base_url})
        verify = processes("verify_otp", stack)
        for _ in range(2):  # the second try is not refused by a cooldown
            started = time.monotonic()
            r = post(send, {"phone": PHONE})
            assert r.status_code == 502 and r.json()["error"]["code"] == "sms_delivery_failed"
            assert "Retry-After" not in r.headers
            assert time.monotonic() - started < 10
        assert store.client().collection("otp_codes").get() == []
        r = post(verify, {"phone": PHONE, "code": "123456"})
        assert r.json()["error"]["code"] == "code_expired"


@pytest.mark.parametrize("mode", ["500", "timeout"])
def test_unconfirmed_twilio_send_is_502_and_keeps_its_cooldown(stack, processes, mode):
    # A 5xx or a timeout may follow a delivered (and billed) text: no second text inside the cooldown.
    with FaultyTwilio(mode, delay=15) as twilio:
        send = processes("send_otp", stack | {"SMS_PROVIDER": "twilio", "TWILIO_API_BASE": twilio.base_url})
        started = time.monotonic()
        r = post(send, {"phone": PHONE})
        assert r.status_code == 502 and r.json()["error"]["code"] == "sms_delivery_failed"
        assert int(r.headers["Retry-After"]) == 60 and time.monotonic() - started < 10
        r = post(send, {"phone": PHONE})
        assert r.status_code == 429 and r.json()["error"]["limit"] == "resend_cooldown"
        assert twilio.hits == 1


def test_missing_secret_is_a_clear_503_and_health_names_it(stack, processes):
    with LocalSecretManager("demo-otp") as empty:
        proc = processes("verify_otp", stack | {"SECRET_MANAGER_EMULATOR_HOST": empty.host})
        r = post(proc, {"phone": PHONE, "code": "123456"})
        assert r.status_code == 503 and r.json() == {
            "error": {"code": "unavailable", "message": "The service is temporarily unavailable. Try again shortly."}
        }
        health = requests.get(f"{proc.url}/healthz", timeout=20)
        assert health.status_code == 503
        assert health.json()["checks"]["secrets"] == {"otp-pepper": "not found", "jwt-signing-keys": "not found"}
        assert "otp-pepper" in proc.log_path.read_text()  # the log names what is missing


def test_unreachable_secret_manager_is_reported_quickly(stack, processes):
    from tests.support.ports import free_port

    proc = processes("send_otp", stack | {"SECRET_MANAGER_EMULATOR_HOST": f"127.0.0.1:{free_port()}"})
    started = time.monotonic()
    health = requests.get(f"{proc.url}/healthz", timeout=30)
    assert health.status_code == 503 and health.json()["checks"]["secrets"] == {"otp-pepper": "unreachable"}
    assert post(proc, {"phone": PHONE}).status_code == 503
    assert time.monotonic() - started < 20
