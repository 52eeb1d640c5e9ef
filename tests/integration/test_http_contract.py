"""The HTTP contract of send_otp and verify_otp, through functions-framework apps in-process."""

from __future__ import annotations

import json

import pytest

from otplogin import store
from tests.support.apps import outbox_codes

PHONE = "+243812345678"


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"error"} and body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert "Traceback" not in response.get_data(as_text=True)
    return body["error"]


def test_send_and_verify_follow_the_contract(send, verify):
    r = send.post("/", json={"phone": PHONE, "channel": "sms", "locale": "fr"})
    assert r.status_code == 202 and r.get_json() == {"status": "sent", "expires_in": 300, "resend_after": 60}
    assert r.headers["Cache-Control"] == "no-store"
    code = outbox_codes(store.client(), PHONE)[-1]
    r = verify.post("/", json={"phone": PHONE, "code": code})
    assert r.status_code == 200
    body = r.get_json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600 and body["access_token"].count(".") == 2


def test_rate_limit_answers_429_with_retry_after(send):
    assert send.post("/", json={"phone": PHONE}).status_code == 202
    r = send.post("/", json={"phone": PHONE})
    error = assert_error(r, 429, "rate_limited")
    assert 1 <= int(r.headers["Retry-After"]) <= 60 and error["retry_after"] == int(r.headers["Retry-After"])


def test_wrong_code_reports_attempts_remaining(send, verify):
    send.post("/", json={"phone": PHONE})
    code = outbox_codes(store.client(), PHONE)[-1]
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    error = assert_error(verify.post("/", json={"phone": PHONE, "code": wrong}), 401, "invalid_code")
    assert error["attempts_remaining"] == 4


def test_no_active_code_looks_like_expired(verify):
    assert_error(verify.post("/", json={"phone": PHONE, "code": "123456"}), 401, "code_expired")


BAD_SEND = [
    ("not json", "application/json", "{nope", 400, "invalid_request"),
    ("array body", "application/json", "[1]", 400, "invalid_request"),
    ("wrong content type", "text/plain", json.dumps({"phone": PHONE}), 415, "unsupported_media_type"),
    ("missing phone", "application/json", "{}", 400, "invalid_request"),
    ("phone not a string", "application/json", json.dumps({"phone": 243812345678}), 400, "invalid_request"),
    ("null byte", "application/json", json.dumps({"phone": "+2438\x0012345678"}), 400, "invalid_request"),
    ("duplicate keys", "application/json", '{"phone": "+243812345678", "phone": "+212612345678"}', 400, "invalid_request"),
    ("deep json", "application/json", '{"a":' * 50 + "1" + "}" * 50, 400, "invalid_request"),
    ("very deep json", "application/json", "[" * 100_000 + "]" * 100_000, 413, "payload_too_large"),
    ("huge body", "application/json", json.dumps({"phone": "+" + "1" * 20_000}), 413, "payload_too_large"),
    ("invalid phone", "application/json", json.dumps({"phone": "+2431234"}), 400, "invalid_phone"),
    ("no plus", "application/json", json.dumps({"phone": "243812345678"}), 400, "invalid_phone"),
    ("unicode digits", "application/json", json.dumps({"phone": "+٢٤٣٨١٢٣٤٥٦٧٨"}), 400, "invalid_phone"),
    ("landline", "application/json", json.dumps({"phone": "+212522123456"}), 400, "invalid_phone"),
    ("country not allowed", "application/json", json.dumps({"phone": "+33612345678"}), 403, "country_not_allowed"),
    ("bad channel", "application/json", json.dumps({"phone": PHONE, "channel": "pigeon"}), 400, "invalid_request"),
    ("empty channel", "application/json", json.dumps({"phone": PHONE, "channel": ""}), 400, "invalid_request"),
    ("bad utf-8", "application/json", b'{"phone": "\xff"}', 400, "invalid_request"),
]


@pytest.mark.parametrize("case,ctype,data,status,code", BAD_SEND, ids=[c[0] for c in BAD_SEND])
def test_bad_send_input_is_a_clear_4xx(send, case, ctype, data, status, code):
    assert_error(send.post("/", data=data, content_type=ctype), status, code)
    assert store.client().collection("dev_outbox").get() == []


BAD_VERIFY = [
    ("short code", {"phone": PHONE, "code": "123"}),
    ("letters", {"phone": PHONE, "code": "12345a"}),
    ("unicode digits", {"phone": PHONE, "code": "١٢٣٤٥٦"}),
    ("code as number", {"phone": PHONE, "code": 123456}),
    ("missing code", {"phone": PHONE}),
    ("spaces", {"phone": PHONE, "code": " 12345"}),
]


@pytest.mark.parametrize("case,body", BAD_VERIFY, ids=[c[0] for c in BAD_VERIFY])
def test_bad_verify_input_is_a_clear_4xx(verify, case, body):
    assert_error(verify.post("/", json=body), 400, "invalid_request")


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
def test_wrong_method(send, method):
    r = send.open("/", method=method)
    assert_error(r, 405, "method_not_allowed")
    assert "POST" in r.headers["Allow"]


def test_head_answers_health_without_a_body(send):
    r = send.head("/healthz")
    assert r.status_code == 200 and r.get_data() == b""


def test_unknown_get_path_is_404(send):
    assert_error(send.get("/nope"), 404, "not_found")


def test_health_reports_dependencies_without_values(send, secret_manager):
    r = send.get("/healthz")
    assert r.status_code == 200
    body = r.get_json()
    assert body["status"] == "ok" and body["checks"]["firestore"] == "ok"
    assert body["checks"]["secrets"] == {"otp-pepper": "ok"}  # dev_outbox: no Twilio secrets needed
    pepper = secret_manager.client.access_secret_version(
        name=secret_manager.secret_name("otp-pepper") + "/versions/latest"
    ).payload.data.decode()
    assert pepper not in r.get_data(as_text=True)


def test_per_ip_cap_counts_the_real_client_not_the_caller_written_entries(stack, monkeypatch):
    """Spoofed left parts of X-Forwarded-For must not spread one client over many buckets.

    The global cap is far above what this sends, so the per-IP cap is what must bind."""
    from otplogin import runtime
    from tests.support.apps import app_client

    per_ip = 3  # the guard's free allowance of an address whose codes are not verified
    monkeypatch.setenv("GUARD_CLIENT_FREE_PER_HOUR", str(per_ip))
    monkeypatch.setenv("OTP_SENDS_GLOBAL_PER_HOUR", "100000")
    runtime.reset()
    send = app_client("send_otp")
    statuses = []
    for i in range(per_ip + 2):
        forwarded = f"192.0.2.{10 + i}, 198.51.100.{20 + i}, 203.0.113.9"  # the caller wrote all but the last
        r = send.post("/", json={"phone": f"+24381234{5600 + i}"}, headers={"X-Forwarded-For": forwarded})
        statuses.append(r.status_code)
        if r.status_code == 429:
            assert r.get_json()["error"]["limit"] == "send_ip"
    assert statuses == [202] * per_ip + [429, 429]
    other = send.post("/", json={"phone": "+243812349999"}, headers={"X-Forwarded-For": "192.0.2.10, 203.0.113.77"})
    assert other.status_code == 202  # another real client is untouched
