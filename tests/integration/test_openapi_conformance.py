"""openapi.yaml is a valid OpenAPI document, and the running functions answer what it says.

Each answer below comes from the real function (functions-framework app,
in-process) on the real local stack (Firestore emulator, local Secret
Manager); openapi-core then checks it against the operation and status the
spec gives for it: status listed, required headers present, body matching the
schema (which pins the error code per status).
"""

from __future__ import annotations

import json

import pytest
from openapi_core.validation.request.exceptions import InvalidRequestBody
from openapi_spec_validator import validate as validate_spec
from openapi_spec_validator.readers import read_from_filename

from otplogin import errors, runtime, store
from tests.support import openapi
from tests.support.apps import app_client, outbox_codes
from tests.support.ports import free_port

PHONE = "+243812345678"
ORIGIN = "https://app.example.cd"


def conforms(function: str, response, status: int, code: str | None = None, *, method: str = "POST", path: str = "/"):
    """Assert the answer's status (and error code), then that the spec allows it; return the body."""
    text = response.get_data(as_text=True)
    assert response.status_code == status, text
    body = response.get_json(silent=True)
    if code is not None:
        assert body["error"]["code"] == code, text
    openapi.validate_response(function, method, path, response)
    return body


def stack_reset() -> None:
    """Re-read settings and rebuild services after a test changed the environment."""
    runtime.reset()


def api_error_classes(cls=errors.ApiError):
    yield cls
    for sub in cls.__subclasses__():
        yield from api_error_classes(sub)


# ------------------------------------------------------------------ the document


def test_spec_is_a_valid_openapi_document():
    spec, _ = read_from_filename(str(openapi.SPEC_PATH))
    validate_spec(spec)
    assert spec["openapi"].startswith("3.")
    assert openapi.openapi() is not None  # openapi-core builds its validators from it too


def test_every_error_code_of_the_library_is_in_the_spec():
    library = {cls.code for cls in api_error_classes()}
    spec = set(openapi.spec_dict()["components"]["schemas"]["ErrorCode"]["enum"])
    assert library - spec == set(), "codes the functions can answer but the spec does not list"
    assert spec - library == set(), "codes the spec lists but no ApiError has"


def test_each_error_code_is_listed_under_its_own_status():
    status_of = {cls.code: cls.status for cls in api_error_classes()}
    listed = openapi.error_codes_by_status()
    assert listed
    wrong = [(op, status, code, status_of[code]) for op, status, code in listed if status_of[code] != status]
    assert wrong == [], "(operation, spec status, code, errors.py status)"


@pytest.mark.parametrize(
    "function,expected",
    [
        ("send_otp", {202, 400, 403, 413, 415, 429, 500, 502, 503}),
        ("verify_otp", {200, 400, 401, 413, 415, 429, 500, 503}),
        ("login", {200, 400, 401, 403, 413, 415, 429, 500, 502, 503}),
    ],
)
def test_post_lists_exactly_the_statuses_the_code_can_answer(function, expected):
    assert openapi.statuses(function, "POST") == expected


def test_429_answers_declare_retry_after_and_json_answers_cache_control():
    for (path, method), op in openapi.operations().items():
        for status, response in op["responses"].items():
            response = openapi.resolve(response)
            headers = response.get("headers", {})
            if status == "429":
                assert openapi.resolve(headers["Retry-After"])["required"] is True, (method, path)
            if "content" in response:
                cache = openapi.resolve(headers["Cache-Control"])
                # Only the public JWKS may be cached; every other answer carries state, tokens or PII.
                expected = ["public, max-age=300"] if path.endswith("jwks.json") and status == "200" else ["no-store"]
                assert cache["required"] is True and cache["schema"]["enum"] == expected, (method, path, status)


# ------------------------------------------------------- requests: spec vs code


SPEC_REJECTS = [
    ("send_otp", {}),
    ("send_otp", {"phone": 243812345678}),
    ("send_otp", {"phone": "+" + "1" * 32}),
    ("send_otp", {"phone": PHONE, "channel": "pigeon"}),
    ("send_otp", {"phone": PHONE, "locale": "x" * 17}),
    ("send_otp", {"phone": PHONE, "altcha": 5}),
    ("send_otp", {"phone": PHONE, "attestation": "x" * 4097}),
    ("verify_otp", {"phone": PHONE}),
    ("verify_otp", {"phone": PHONE, "code": "123"}),
    ("verify_otp", {"phone": PHONE, "code": "12345a"}),
    ("verify_otp", {"phone": PHONE, "code": 123456}),
    ("verify_otp", {"code": "123456"}),
    ("login", {"password": "x"}),
    ("login", {"email": "amani@example.cd", "code": "MAN0001RAB", "password": "x"}),
    ("login", {"email": "amani@example.cd"}),
    ("login", {"code": "AB", "password": "x"}),
    ("login", {"email": "amani@example.cd", "password": "x" * 1025}),
]


@pytest.mark.parametrize("function,body", SPEC_REJECTS, ids=[f"{f}-{json.dumps(b)}" for f, b in SPEC_REJECTS])
def test_a_request_the_spec_rejects_the_code_rejects_too(stack, function, body):
    with pytest.raises(InvalidRequestBody):
        openapi.validate_request(function, "POST", body)
    conforms(function, app_client(function).post("/", json=body), 400, "invalid_request")


def test_unknown_and_null_optional_fields_are_accepted_as_documented(send):
    body = {"phone": PHONE, "channel": None, "locale": None, "client_version": "2.1", "extra": {"a": [1]}}
    openapi.validate_request("send_otp", "POST", body)
    conforms("send_otp", send.post("/", json=body), 202)


# ----------------------------------------------------------------------- send_otp


@pytest.mark.parametrize("channel", ["sms", "whatsapp"])
def test_send_accepted(send, channel):
    body = {"phone": PHONE, "channel": channel, "locale": "fr"}
    openapi.validate_request("send_otp", "POST", body)
    assert conforms("send_otp", send.post("/", json=body), 202) == {"status": "sent", "expires_in": 300, "resend_after": 60}


BAD_SEND = [
    ("not json", "application/json", "{nope", 400, "invalid_request"),
    ("array body", "application/json", "[1]", 400, "invalid_request"),
    ("missing phone", "application/json", "{}", 400, "invalid_request"),
    ("invalid phone", "application/json", json.dumps({"phone": "+2431234"}), 400, "invalid_phone"),
    ("landline", "application/json", json.dumps({"phone": "+212522123456"}), 400, "invalid_phone"),
    ("country not allowed", "application/json", json.dumps({"phone": "+33612345678"}), 403, "country_not_allowed"),
    ("huge body", "application/json", json.dumps({"phone": "+" + "1" * 20_000}), 413, "payload_too_large"),
    ("text/plain", "text/plain", json.dumps({"phone": PHONE}), 415, "unsupported_media_type"),
]


@pytest.mark.parametrize("case,ctype,data,status,code", BAD_SEND, ids=[c[0] for c in BAD_SEND])
def test_send_errors(send, case, ctype, data, status, code):
    conforms("send_otp", send.post("/", data=data, content_type=ctype), status, code)


def test_send_invalid_request_names_the_field(send):
    error = conforms("send_otp", send.post("/", json={"phone": PHONE, "channel": "pigeon"}), 400, "invalid_request")
    assert error["error"]["field"] == "channel"


def test_send_rate_limited(send):
    conforms("send_otp", send.post("/", json={"phone": PHONE}), 202)
    r = send.post("/", json={"phone": PHONE})
    error = conforms("send_otp", r, 429, "rate_limited")["error"]
    assert error["limit"] == "resend_cooldown" and error["retry_after"] == int(r.headers["Retry-After"])


def test_send_challenge_required_then_passed(stack, monkeypatch):
    """The guard answers a challenge where a limit would refuse; the solved challenge is accepted."""
    from altcha import Challenge, Payload, solve_challenge

    from otplogin import runtime

    for name, value in {"GUARD_CHALLENGES": "altcha", "GUARD_RANGE_FREE_PER_HOUR": "0", "GUARD_ALTCHA_COST": "10",
                        "GUARD_ALTCHA_MAX_COUNTER": "40"}.items():
        monkeypatch.setenv(name, value)
    runtime.reset()
    send = app_client("send_otp")
    r = send.post("/", json={"phone": PHONE})
    error = conforms("send_otp", r, 403, "challenge_required")["error"]
    assert error["limit"] == "send_range" and "Retry-After" not in r.headers
    challenge = Challenge.from_dict(error["challenge"]["altcha"])
    payload = Payload(challenge, solve_challenge(challenge)).to_base64()
    body = {"phone": PHONE, "altcha": payload}
    openapi.validate_request("send_otp", "POST", body)
    conforms("send_otp", send.post("/", json=body), 202)


def test_send_delivery_failure_is_502(stack, monkeypatch):
    # The real Twilio sender, pointed at a port where nothing listens.
    monkeypatch.setenv("SMS_PROVIDER", "twilio")
    monkeypatch.setenv("TWILIO_API_BASE", f"http://127.0.0.1:{free_port()}")
    stack_reset()
    conforms("send_otp", app_client("send_otp").post("/", json={"phone": PHONE}), 502, "sms_delivery_failed")


def test_send_unconfirmed_delivery_is_502_with_retry_after(stack, monkeypatch):
    from tests.support.prism import FaultyTwilio

    with FaultyTwilio("500") as faulty:  # a 5xx may follow a delivered text: the cooldown stays
        monkeypatch.setenv("SMS_PROVIDER", "twilio")
        monkeypatch.setenv("TWILIO_API_BASE", faulty.base_url)
        stack_reset()
        r = app_client("send_otp").post("/", json={"phone": PHONE})
        error = conforms("send_otp", r, 502, "sms_delivery_failed")["error"]
        assert error["retry_after"] == int(r.headers["Retry-After"]) == 60


def test_firestore_refusal_is_503_with_retry_after(send, verify, faulty_firestore):
    from google.api_core import exceptions as gexc

    faulty_firestore.fail("get_all", gexc.ResourceExhausted("quota"), times=2)
    for function, client, body in (("send_otp", send, {"phone": PHONE}), ("verify_otp", verify, MINIMAL_BODIES["verify_otp"])):
        r = client.post("/", json=body)
        assert conforms(function, r, 503, "unavailable")["error"]["retry_after"] == int(r.headers["Retry-After"])


def test_send_internal_error_is_500_without_detail(send, monkeypatch):
    from otplogin import phone

    def broken(*_args, **_kwargs):
        raise RuntimeError("secret detail")

    monkeypatch.setattr(phone, "validate_for_delivery", broken)
    r = send.post("/", json={"phone": PHONE})
    conforms("send_otp", r, 500, "internal")
    assert "secret detail" not in r.get_data(as_text=True)


# --------------------------------------------------------------------- verify_otp


def _send_code(send) -> str:
    assert send.post("/", json={"phone": PHONE}).status_code == 202
    return outbox_codes(store.client(), PHONE)[-1]


def test_verify_success_then_used_code_is_expired(send, verify):
    body = {"phone": PHONE, "code": _send_code(send)}
    openapi.validate_request("verify_otp", "POST", body)
    token = conforms("verify_otp", verify.post("/", json=body), 200)
    assert token["token_type"] == "Bearer" and token["expires_in"] == 3600
    conforms("verify_otp", verify.post("/", json=body), 401, "code_expired")


def test_verify_no_active_code(verify):
    conforms("verify_otp", verify.post("/", json={"phone": PHONE, "code": "123456"}), 401, "code_expired")


def test_verify_wrong_codes_then_too_many_attempts(send, verify):
    code = _send_code(send)
    wrong = {"phone": PHONE, "code": f"{(int(code) + 1) % 1_000_000:06d}"}
    remaining = [conforms("verify_otp", verify.post("/", json=wrong), 401, "invalid_code")["error"]["attempts_remaining"]
                 for _ in range(5)]
    assert remaining == [4, 3, 2, 1, 0]
    r = verify.post("/", json={"phone": PHONE, "code": code})
    error = conforms("verify_otp", r, 429, "too_many_attempts")["error"]
    assert 1 <= error["retry_after"] == int(r.headers["Retry-After"]) <= 300


BAD_VERIFY = [
    ("not json", "application/json", "{nope", 400, "invalid_request"),
    ("short code", "application/json", json.dumps({"phone": PHONE, "code": "123"}), 400, "invalid_request"),
    ("invalid phone", "application/json", json.dumps({"phone": "+2431234", "code": "123456"}), 400, "invalid_phone"),
    ("huge body", "application/json", json.dumps({"phone": PHONE, "code": "1" * 20_000}), 413, "payload_too_large"),
    ("form body", "application/x-www-form-urlencoded", "phone=x&code=123456", 415, "unsupported_media_type"),
]


@pytest.mark.parametrize("case,ctype,data,status,code", BAD_VERIFY, ids=[c[0] for c in BAD_VERIFY])
def test_verify_errors(verify, case, ctype, data, status, code):
    conforms("verify_otp", verify.post("/", data=data, content_type=ctype), status, code)


# ------------------------------------------- what every function shares (http.py)


FUNCTIONS = ["send_otp", "verify_otp"]
# Login's health also needs the key canary written: its own tests below cover it.
ALL_FUNCTIONS = [*FUNCTIONS, "login"]


@pytest.mark.parametrize("function", FUNCTIONS)
@pytest.mark.parametrize("path", ["/", "/healthz"])
def test_health_ok(stack, function, path):
    body = conforms(function, app_client(function).get(path), 200, method="GET", path=path)
    assert body["status"] == "ok"


@pytest.mark.parametrize("function", ALL_FUNCTIONS)
def test_health_unavailable_names_the_missing_secret(stack, monkeypatch, function):
    # A project with no secrets in the local Secret Manager.
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "demo-otp-no-secrets")
    stack_reset()
    body = conforms(function, app_client(function).get("/healthz"), 503, method="GET", path="/healthz")
    assert body["status"] == "unavailable" and body["checks"]["secrets"]["otp-pepper"] != "ok"


MINIMAL_BODIES = {
    "send_otp": {"phone": PHONE},
    "verify_otp": {"phone": PHONE, "code": "123456"},
    "login": {"email": "amani@example.cd", "password": "x"},
}


@pytest.mark.parametrize("function", ALL_FUNCTIONS)
def test_missing_secret_is_503_unavailable(stack, monkeypatch, function):
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "demo-otp-no-secrets")
    stack_reset()
    r = app_client(function).post("/", json=MINIMAL_BODIES[function])
    conforms(function, r, 503, "unavailable")
    assert "otp-pepper" not in r.get_data(as_text=True)


@pytest.mark.parametrize("function", ALL_FUNCTIONS)
@pytest.mark.parametrize("method", ["GET", "POST", "OPTIONS"])
def test_bad_configuration_is_503_unavailable(stack, monkeypatch, function, method):
    monkeypatch.setenv("OTP_CODE_LENGTH", "five")
    stack_reset()
    r = app_client(function).open("/", method=method, json={"phone": PHONE})
    conforms(function, r, 503, "unavailable", method=method)
    assert "OTP_CODE_LENGTH" not in r.get_data(as_text=True)


@pytest.mark.parametrize("function", ALL_FUNCTIONS)
@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
def test_other_methods_are_405(stack, function, method):
    r = app_client(function).open("/", method=method)
    error = conforms(function, r, 405, "method_not_allowed", method=method)["error"]
    assert error["allowed"] == ["GET", "HEAD", "POST", "OPTIONS"] and r.headers["Allow"] == "GET, HEAD, POST, OPTIONS"


@pytest.mark.parametrize("function", ALL_FUNCTIONS)
def test_preflight_from_an_allowed_origin(stack, monkeypatch, function):
    monkeypatch.setenv("CORS_ALLOWED_ORIGINS", ORIGIN)
    stack_reset()
    client = app_client(function)
    r = client.options("/", headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"})
    conforms(function, r, 204, method="OPTIONS")
    assert r.headers["Access-Control-Allow-Origin"] == ORIGIN and "POST" in r.headers["Access-Control-Allow-Methods"]
    assert r.get_data() == b""
    # The actual answers then carry the origin and expose Retry-After.
    r = client.post("/", data="x", content_type="text/plain", headers={"Origin": ORIGIN})
    conforms(function, r, 415, "unsupported_media_type")
    assert r.headers["Access-Control-Allow-Origin"] == ORIGIN and r.headers["Access-Control-Expose-Headers"] == "Retry-After"


@pytest.mark.parametrize("function", ALL_FUNCTIONS)
def test_preflight_from_another_origin_grants_nothing(stack, function):
    r = app_client(function).options("/", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
    conforms(function, r, 204, method="OPTIONS")
    assert not any(h.startswith("Access-Control-Allow") for h, _ in r.headers.items())


# -------------------------------------------------------------------------- login

PASSWORD = "correct horse battery staple"
USER = {"code": "MAN0001RAB", "email": "amani@example.cd"}
PII = {"phone": PHONE, "address": "12 avenue du Commerce, Kinshasa", "whatsapp": None}


@pytest.fixture
def login(stack):
    from otplogin import users

    users.write_canary(runtime.pii_keyring())  # the set-up step login's health checks for
    return app_client("login")


@pytest.fixture
def make_user(stack):
    def make(*, mfa: bool = False, keyring=None, **fields):
        from otplogin import passwords, users

        return users.create(
            **(USER | fields),
            password_hash=passwords.hash_password(PASSWORD),
            role="user",
            keyring=keyring or runtime.pii_keyring(),
            pii=PII,
            mfa_enabled=mfa,
        )

    return make


def test_login_health_jwks_and_plumbing(login):
    conforms("login", login.get("/"), 200, method="GET")
    conforms("login", login.get("/healthz"), 200, method="GET", path="/healthz")
    jwks = conforms("login", login.get("/.well-known/jwks.json"), 200, method="GET", path="/.well-known/jwks.json")
    assert jwks["keys"] and all("d" not in key for key in jwks["keys"])
    conforms("login", login.post("/", data="{nope", content_type="application/json"), 400, "invalid_request")
    conforms("login", login.post("/", json={"password": PASSWORD}), 400, "invalid_request")
    conforms("login", login.post("/", json=USER | {"password": PASSWORD}), 400, "invalid_request")  # both
    conforms("login", login.post("/", data="x", content_type="text/plain"), 415, "unsupported_media_type")
    conforms("login", login.post("/", json={"email": "a@b.cd", "password": "x" * 20_000}), 413, "payload_too_large")
    conforms("login", login.put("/"), 405, "method_not_allowed", method="PUT")
    conforms("login", login.options("/"), 204, method="OPTIONS")


def test_login_health_without_the_key_canary_is_503(stack):
    body = conforms("login", app_client("login").get("/healthz"), 503, method="GET", path="/healthz")
    assert body["checks"]["pii_keyring"] != "ok"


@pytest.mark.parametrize("ident", ["email", "code"])
def test_login_signed_in(login, make_user, ident):
    from otplogin.tokens import verify_with_jwks

    user = make_user()
    request = {ident: USER[ident], "password": PASSWORD}
    openapi.validate_request("login", "POST", request)
    body = conforms("login", login.post("/", json=request), 200)
    assert body["user"] == {"id": user.id, **USER, "role": "user", **PII} and "unavailable_fields" not in body
    jwks = login.get("/.well-known/jwks.json").get_json()
    claims = verify_with_jwks(body["access_token"], jwks, issuer="otplogin", audience="otplogin-clients")
    assert claims["sub"] == user.id


def test_login_with_undecryptable_pii_still_signs_in(login, make_user):
    from otplogin.keyring import Keyring, generate_key

    make_user(keyring=Keyring([generate_key()]))  # a key the deployed pii-keyring does not hold
    body = conforms("login", login.post("/", json={"email": USER["email"], "password": PASSWORD}), 200)
    assert body["user"]["phone"] is None and body["user"]["address"] is None
    assert body["unavailable_fields"] == ["address", "phone"]


def test_login_wrong_password_and_unknown_user_look_the_same(login, make_user):
    make_user()
    wrong = conforms("login", login.post("/", json={"email": USER["email"], "password": "nope"}), 401)
    unknown = conforms("login", login.post("/", json={"email": "nobody@example.cd", "password": "nope"}), 401)
    assert wrong == unknown and wrong["error"]["code"] == "invalid_credentials"


def test_login_account_locked(stack, monkeypatch, make_user):
    monkeypatch.setenv("LOGIN_FAILURES_BEFORE_LOCK", "2")
    stack_reset()
    make_user()
    login = app_client("login")
    for _ in range(2):
        conforms("login", login.post("/", json={"email": USER["email"], "password": "nope"}), 401, "invalid_credentials")
    r = login.post("/", json={"email": USER["email"], "password": PASSWORD})
    error = conforms("login", r, 429, "account_locked")["error"]
    assert error["retry_after"] == int(r.headers["Retry-After"]) >= 1


def test_login_rate_limited_per_ip(stack, monkeypatch):
    monkeypatch.setenv("LOGINS_PER_IP_PER_HOUR", "1")
    stack_reset()
    login = app_client("login")
    conforms("login", login.post("/", json={"email": "nobody@example.cd", "password": "x"}), 401, "invalid_credentials")
    r = login.post("/", json={"email": "nobody@example.cd", "password": "x"})
    assert conforms("login", r, 429, "rate_limited")["error"]["limit"] == "login_ip"


BAD_LOGIN = [
    ("huge body", "application/json", json.dumps({"email": "a@example.cd", "password": "x" * 20_000}), 413,
     "payload_too_large"),
    ("text/plain", "text/plain", json.dumps({"email": "a@example.cd", "password": "x"}), 415, "unsupported_media_type"),
]


@pytest.mark.parametrize("case,ctype,data,status,code", BAD_LOGIN, ids=[c[0] for c in BAD_LOGIN])
def test_login_errors(login, case, ctype, data, status, code):
    conforms("login", login.post("/", data=data, content_type=ctype), status, code)


BAD_LOGOUT = [
    ("huge body", "application/json", json.dumps({"refresh_token": "x" * 20_000}), 413, "payload_too_large"),
    ("text/plain", "text/plain", json.dumps({"refresh_token": "x.y.z"}), 415, "unsupported_media_type"),
]


@pytest.mark.parametrize("case,ctype,data,status,code", BAD_LOGOUT, ids=[c[0] for c in BAD_LOGOUT])
def test_logout_errors(login, case, ctype, data, status, code):
    conforms("login", login.post("/logout", data=data, content_type=ctype), status, code, path="/logout")


def test_logout_with_a_bad_configuration_is_503(stack, monkeypatch):
    monkeypatch.setenv("OTP_CODE_LENGTH", "five")
    stack_reset()
    r = app_client("login").post("/logout", json={"refresh_token": "x.y.z"})
    conforms("login", r, 503, "unavailable", path="/logout")


def test_login_second_factor_delivery_failure_is_502(stack, monkeypatch, make_user):
    make_user(mfa=True)
    # The real Twilio sender, pointed at a port where nothing listens.
    monkeypatch.setenv("SMS_PROVIDER", "twilio")
    monkeypatch.setenv("TWILIO_API_BASE", f"http://127.0.0.1:{free_port()}")
    stack_reset()
    from otplogin import users

    users.write_canary(runtime.pii_keyring())
    r = app_client("login").post("/", json={"email": USER["email"], "password": PASSWORD})
    conforms("login", r, 502, "sms_delivery_failed")


def test_login_second_factor_completes_at_verify_otp(login, make_user, verify):
    user = make_user(mfa=True)
    step = conforms("login", login.post("/", json={"code": USER["code"], "password": PASSWORD}), 200)
    assert step["mfa_required"] is True and "access_token" not in step
    code = outbox_codes(store.client(), PHONE)[-1]
    conforms("verify_otp", verify.post("/", json={"mfa_token": "x.y.z", "code": code}), 400, "invalid_request")
    request = {"mfa_token": step["mfa_token"], "code": code}
    openapi.validate_request("verify_otp", "POST", request)
    token = conforms("verify_otp", verify.post("/", json=request), 200)
    jwks = login.get("/.well-known/jwks.json").get_json()
    from otplogin.tokens import verify_with_jwks

    claims = verify_with_jwks(token["access_token"], jwks, issuer="otplogin", audience="otplogin-clients")
    assert claims["sub"] == user.id and claims["amr"] == ["pwd", "otp"]


def test_refresh_and_logout_answer_what_the_spec_says(login, make_user):
    make_user()
    signed_in = conforms("login", login.post("/", json={"email": USER["email"], "password": PASSWORD}), 200)
    request = {"grant_type": "refresh_token", "refresh_token": signed_in["refresh_token"]}
    openapi.validate_request("login", "POST", request)
    refreshed = conforms("login", login.post("/", json=request), 200)
    assert refreshed["refresh_token"] != signed_in["refresh_token"] and "user" not in refreshed
    conforms("login", login.post("/", json=request | {"refresh_token": "nope"}), 401, "invalid_grant")
    conforms("login", login.post("/", json=request | {"grant_type": "magic"}), 400, "invalid_request")
    logout = {"refresh_token": refreshed["refresh_token"]}
    openapi.validate_request("login", "POST", logout, path="/logout")
    conforms("login", login.post("/logout", json=logout), 204, path="/logout")
    conforms("login", login.post("/logout", json={"refresh_token": "nope"}), 204, path="/logout")
    conforms("login", login.post("/logout", json={}), 400, "invalid_request", path="/logout")
    conforms("login", login.post("/logout", json={"all_sessions": True}), 401, "invalid_token", path="/logout")
    bearer = {"Authorization": f"Bearer {refreshed['access_token']}"}
    conforms("login", login.post("/logout", json={"all_sessions": True}, headers=bearer), 204, path="/logout")
