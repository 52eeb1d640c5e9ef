"""The HTTP contract of send_otp and verify_otp, through functions-framework apps in-process."""

from __future__ import annotations

import json
import time

import pytest
from google.api_core import exceptions as gexc

from otplogin import passwords, runtime, store, users
from tests.support.apps import app_client, outbox_codes

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


# --- purposes: a phone proof and a user's login never share a code or a budget --------------

PASSWORD = "correct horse battery staple"


@pytest.fixture
def login(stack):
    return app_client("login")


@pytest.fixture
def mfa_user(stack):
    return users.create(
        code="MAN0001RAB", email="ana@example.com", password_hash=passwords.hash_password(PASSWORD), role="user",
        keyring=runtime.pii_keyring(), pii={"phone": PHONE, "address": None, "whatsapp": None}, mfa_enabled=True,
    )


def sign_in(login) -> dict:
    r = login.post("/", json={"email": "ana@example.com", "password": PASSWORD})
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.get_json()["mfa_required"] is True
    return r.get_json()


def test_anonymous_send_just_before_a_login_does_not_refuse_its_second_factor(send, login, verify, mfa_user):
    assert send.post("/", json={"phone": PHONE}).status_code == 202  # anyone who knows the number
    step = sign_in(login)  # not 429: the login code has its own cooldown and caps
    code = outbox_codes(store.client(), PHONE)[-1]
    assert verify.post("/", json={"mfa_token": step["mfa_token"], "code": code}).status_code == 200


def test_anonymous_send_just_after_a_login_does_not_void_its_code(send, login, verify, mfa_user, monkeypatch):
    monkeypatch.setenv("OTP_RESEND_COOLDOWN_SECONDS", "0")  # the phone path's own cooldown is not what is tested
    runtime.reset()
    step = sign_in(login)
    login_code = outbox_codes(store.client(), PHONE)[-1]
    assert send.post("/", json={"phone": PHONE}).status_code == 202
    assert verify.post("/", json={"mfa_token": step["mfa_token"], "code": login_code}).status_code == 200


def test_a_login_code_is_not_accepted_on_the_phone_path(login, verify, mfa_user):
    step = sign_in(login)
    code = outbox_codes(store.client(), PHONE)[-1]
    assert_error(verify.post("/", json={"phone": PHONE, "code": code}), 401, "code_expired")
    # Neither burned nor counted: the login still completes with it.
    assert verify.post("/", json={"mfa_token": step["mfa_token"], "code": code}).status_code == 200


def test_wrong_guesses_on_the_phone_path_do_not_spend_the_login_budget(send, login, verify, mfa_user, monkeypatch):
    monkeypatch.setenv("OTP_RESEND_COOLDOWN_SECONDS", "0")
    runtime.reset()
    step = sign_in(login)
    login_code = outbox_codes(store.client(), PHONE)[-1]
    for _ in range(2):  # two phone codes, five wrong guesses each: the phone's hourly failure window is full
        assert send.post("/", json={"phone": PHONE}).status_code == 202
        wrong = f"{(int(outbox_codes(store.client(), PHONE)[-1]) + 1) % 1_000_000:06d}"
        for _ in range(5):
            verify.post("/", json={"phone": PHONE, "code": wrong}, headers={"X-Forwarded-For": "198.51.100.9"})
    assert_error(verify.post("/", json={"phone": PHONE, "code": wrong}), 429, "too_many_attempts")
    assert verify.post("/", json={"mfa_token": step["mfa_token"], "code": login_code}).status_code == 200


def test_one_client_probing_many_phones_is_capped(send, verify, monkeypatch):
    monkeypatch.setenv("OTP_FAILURES_PER_IP_PER_HOUR", "3")
    runtime.reset()
    phones = [f"+24381234{i:04d}" for i in range(4)]
    codes = {}
    for p in phones:
        assert send.post("/", json={"phone": p}).status_code == 202
        codes[p] = outbox_codes(store.client(), p)[-1]
    prober = {"X-Forwarded-For": "198.51.100.7"}
    for p in phones[:3]:  # one wrong guess per phone: each phone's own budget is nearly untouched
        wrong = f"{(int(codes[p]) + 1) % 1_000_000:06d}"
        assert_error(verify.post("/", json={"phone": p, "code": wrong}, headers=prober), 401, "invalid_code")
    r = verify.post("/", json={"phone": phones[3], "code": codes[phones[3]]}, headers=prober)
    error = assert_error(r, 429, "too_many_attempts")
    assert error["retry_after"] == int(r.headers["Retry-After"]) >= 1
    # Another client is not affected, and the refused guess cost the phone nothing.
    other = {"X-Forwarded-For": "203.0.113.20"}
    assert verify.post("/", json={"phone": phones[3], "code": codes[phones[3]]}, headers=other).status_code == 200


# --- keys: the signer is built before a code is consumed or a text is sent ------------------

MALFORMED_KEYS = json.dumps({"keys": [{"kid": "k1", "private_key_pem": "-----BEGIN PRIVATE KEY-----\nbroken"}]})


@pytest.fixture
def signing_keys(stack, secret_manager):
    """The good `jwt-signing-keys` value; whatever a test adds, the good one is the latest again afterwards."""
    name = secret_manager.secret_name("jwt-signing-keys") + "/versions/latest"
    good = secret_manager.client.access_secret_version(name=name).payload.data.decode()
    yield good
    secret_manager.add("jwt-signing-keys", good)
    runtime.reset()


def test_malformed_signing_key_answers_503_and_the_code_survives(send, verify, signing_keys, secret_manager):
    secret_manager.add("jwt-signing-keys", MALFORMED_KEYS)
    runtime.reset()
    assert send.post("/", json={"phone": PHONE}).status_code == 202
    body = {"phone": PHONE, "code": outbox_codes(store.client(), PHONE)[-1]}
    r = verify.post("/", json=body)
    assert_error(r, 503, "unavailable")
    assert "k1" not in r.get_data(as_text=True) and "BEGIN" not in r.get_data(as_text=True)
    health = verify.get("/healthz")
    assert health.status_code == 503
    assert health.get_json()["checks"]["secrets"]["jwt-signing-keys"].startswith("malformed")
    assert "BEGIN" not in health.get_data(as_text=True)
    secret_manager.add("jwt-signing-keys", signing_keys)  # the operator fixes the key
    assert verify.post("/", json=body).status_code == 200  # the code was never consumed
    assert verify.get("/healthz").status_code == 200


def test_malformed_signing_key_refuses_a_login_before_its_text(login, mfa_user, signing_keys, secret_manager):
    secret_manager.add("jwt-signing-keys", MALFORMED_KEYS)
    runtime.reset()
    r = login.post("/", json={"email": "ana@example.com", "password": PASSWORD})
    assert_error(r, 503, "unavailable")
    assert outbox_codes(store.client(), PHONE) == []  # no text, no cooldown taken
    secret_manager.add("jwt-signing-keys", signing_keys)
    sign_in(login)


def test_a_new_malformed_key_version_does_not_replace_the_last_good_one(send, verify, signing_keys, secret_manager,
                                                                        monkeypatch):
    monkeypatch.setenv("SECRETS_REFRESH_SECONDS", "1")
    runtime.reset()
    first, second = "+243812345678", "+243812345679"
    for p in (first, second):
        assert send.post("/", json={"phone": p}).status_code == 202
    assert verify.post("/", json={"phone": first, "code": outbox_codes(store.client(), first)[-1]}).status_code == 200
    secret_manager.add("jwt-signing-keys", MALFORMED_KEYS)
    time.sleep(1.1)  # past the refresh interval: the next read fetches the malformed version
    r = verify.post("/", json={"phone": second, "code": outbox_codes(store.client(), second)[-1]})
    assert r.status_code == 200, r.get_data(as_text=True)  # signed with the cached good key
    health = verify.get("/healthz")  # but the operator is told: new instances could not start
    assert health.status_code == 503
    assert health.get_json()["checks"]["secrets"]["jwt-signing-keys"].startswith("malformed")


# --- lost commit answers: the write may have landed ------------------------------------------


def send_code(send, phone: str = PHONE) -> str:
    assert send.post("/", json={"phone": phone}).status_code == 202
    return outbox_codes(store.client(), phone)[-1]


def code_doc(phone: str = PHONE) -> dict:
    return store.client().document(f"otp_codes/{runtime.otp_service().phone_key(phone)}").get().to_dict()


def send_events(phone: str = PHONE) -> list:
    key = runtime.otp_service().phone_key(phone)
    return store.client().document(f"otp_counters/send_phone:{key}").get().to_dict()["events"]


def test_verify_whose_commit_answer_is_lost_gives_the_planned_token(send, verify, faulty_firestore):
    body = {"phone": PHONE, "code": send_code(send)}
    faulty_firestore.fail("commit", gexc.DeadlineExceeded("answer lost"), landed=True)
    r = verify.post("/", json=body)
    assert r.status_code == 200, r.get_data(as_text=True)
    assert faulty_firestore.pending == 0
    assert_error(verify.post("/", json=body), 401, "code_expired")  # still single use


def test_wrong_guess_whose_commit_answer_is_lost_counts_once(send, verify, faulty_firestore):
    code = send_code(send)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    faulty_firestore.fail("commit", gexc.ServiceUnavailable("answer lost"), landed=True)
    error = assert_error(verify.post("/", json={"phone": PHONE, "code": wrong}), 401, "invalid_code")
    assert error["attempts_remaining"] == 4 and code_doc()["attempts"] == 1


def test_send_whose_commit_answer_is_lost_sends_once(send, faulty_firestore):
    faulty_firestore.fail("commit", gexc.DeadlineExceeded("answer lost"), landed=True)
    assert send.post("/", json={"phone": PHONE}).status_code == 202
    assert len(outbox_codes(store.client(), PHONE)) == 1 and len(send_events()) == 1


def test_commit_that_did_not_land_is_decided_again(send, verify, faulty_firestore):
    faulty_firestore.fail("commit", gexc.DeadlineExceeded("not applied"))
    code = send_code(send)
    faulty_firestore.fail("commit", gexc.DeadlineExceeded("not applied"))
    assert verify.post("/", json={"phone": PHONE, "code": code}).status_code == 200


def test_send_whose_outcome_stays_unknown_answers_503_and_gives_the_quota_back(send, faulty_firestore):
    # The reservation lands, its answer is lost, and the read that would tell fails too.
    faulty_firestore.fail("commit", gexc.DeadlineExceeded("answer lost"), landed=True)
    faulty_firestore.fail("get_all", gexc.ServiceUnavailable("down"), after=1)
    r = send.post("/", json={"phone": PHONE})
    assert_error(r, 503, "unavailable")
    assert int(r.headers["Retry-After"]) >= 1
    assert outbox_codes(store.client(), PHONE) == []
    # No text went out, so no cooldown and no quota were kept.
    assert send.post("/", json={"phone": PHONE}).status_code == 202
    assert len(send_events()) == 1


@pytest.mark.parametrize(
    "error",
    [gexc.ResourceExhausted("quota"), gexc.PermissionDenied("denied"), gexc.Cancelled("cancelled"),
     gexc.DeadlineExceeded("slow"), gexc.Aborted("contention")],
    ids=lambda e: type(e).__name__,
)
@pytest.mark.parametrize("call", ["commit", "get_all"])
def test_firestore_errors_answer_503_with_retry_after(send, verify, faulty_firestore, error, call):
    code = send_code(send)
    faulty_firestore.fail(call, error, times=20)  # every retry fails the same way
    r = verify.post("/", json={"phone": PHONE, "code": code})
    assert_error(r, 503, "unavailable")
    assert 1 <= int(r.headers["Retry-After"]) <= 30
    faulty_firestore.fail(call, error, times=20)
    r = send.post("/", json={"phone": "+212612345678"})
    assert_error(r, 503, "unavailable")
    assert 1 <= int(r.headers["Retry-After"]) <= 30
