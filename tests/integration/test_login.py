"""login against the real emulator and local Secret Manager, in-process (functions-framework app)."""

from __future__ import annotations

import json
import logging
import statistics
import threading
import time
from concurrent import futures

import jwt
import pytest

from otplogin import passwords, runtime, store, users
from otplogin.keyring import generate_key, key_id
from otplogin.tokens import SECOND_FACTOR_TOKEN_TYPE, verify_with_jwks
from tests.support.apps import app_client, outbox_codes
from tests.support.secret_manager import LocalSecretManager

PASSWORD = "correct horse battery staple"
PHONE = "+243812345678"


def make_user(code="MAN0001RAB", email="ana@example.com", mfa=False, phone=PHONE, **params):
    password_hash = passwords.hash_password(PASSWORD, **params)
    return users.create(
        code=code, email=email, password_hash=password_hash, role="user", keyring=runtime.pii_keyring(),
        pii={"phone": phone, "address": "12 avenue du Commerce, Kinshasa", "whatsapp": phone}, mfa_enabled=mfa,
    )


@pytest.fixture
def login(stack):
    users.write_canary(runtime.pii_keyring())
    return app_client("login")


def post(client, body, **kw):
    return client.post("/", data=json.dumps(body), content_type="application/json", **kw)


def jwks(client) -> dict:
    r = client.get("/.well-known/jwks.json")
    assert r.status_code == 200
    return r.get_json()


def test_login_by_email_and_code_returns_profile_and_token(login):
    user = make_user()
    for ident in ({"email": "Ana@Example.com"}, {"code": "man0001rab"}):
        r = post(login, ident | {"password": PASSWORD})
        assert r.status_code == 200, r.get_data(as_text=True)
        body = r.get_json()
        assert body["user"] == {
            "id": user.id, "email": "ana@example.com", "code": "MAN0001RAB", "role": "user",
            "phone": PHONE, "address": "12 avenue du Commerce, Kinshasa", "whatsapp": PHONE,
        }
        assert "unavailable_fields" not in body
        claims = verify_with_jwks(body["access_token"], jwks(login), issuer="otplogin", audience="otplogin-clients")
        assert claims["sub"] == user.id and claims["role"] == "user" and claims["amr"] == ["pwd"]
    stored = store.client().document("users/MAN0001RAB").get().to_dict()
    assert PHONE not in json.dumps(stored, default=str)  # PII encrypted at rest


def test_unknown_user_and_wrong_password_look_the_same(login):
    make_user()
    wrong = post(login, {"email": "ana@example.com", "password": "nope"})
    unknown = post(login, {"email": "bob@example.com", "password": "nope"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.get_json() == unknown.get_json() == {
        "error": {"code": "invalid_credentials", "message": "The email, code or password is not correct."}
    }


def test_unknown_user_costs_one_argon2_verification_like_a_known_one(login):
    make_user()

    def median_time(email):
        times = []
        for _ in range(5):
            start = time.perf_counter()
            post(login, {"email": email, "password": "nope"}, environ_base={"REMOTE_ADDR": f"10.9.{len(times)}.1"})
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    known, unknown = median_time("ana@example.com"), median_time("bob@example.com")
    # Both run one Argon2id verification (~30 ms); an unknown user skipping it would be ~10x faster.
    assert 0.5 < unknown / known < 2.0, (known, unknown)


def lock_documents() -> list:
    """The (account, client) lock states: `otp_counters/login_client:*` (ids are HMACs)."""
    return [d for d in store.client().collection("otp_counters").stream() if d.id.startswith("login_client:")]


def test_lockout_with_backoff_then_unlock(login):
    make_user()
    for _ in range(5):
        assert post(login, {"code": "MAN0001RAB", "password": "nope"}).status_code == 401
    r = post(login, {"code": "MAN0001RAB", "password": PASSWORD})
    assert r.status_code == 429 and r.get_json()["error"]["code"] == "account_locked"
    assert 50 <= int(r.headers["Retry-After"]) <= 60
    # Unlock after the backoff: move the lock into the past (the clock is the document's).
    (lock,) = lock_documents()
    assert lock.get("level") == 1 and "MAN0001RAB" not in lock.id
    lock.reference.update({"locked_until": time.time() - 1})
    assert post(login, {"code": "MAN0001RAB", "password": PASSWORD}).status_code == 200
    doc = lock_documents()[0].to_dict()
    assert doc["failures"] == 0 and doc["level"] == 0 and doc["known_until"] > time.time()


def signin_with_clock(now: list[float]):
    from otplogin.signin import SignIn

    return SignIn(
        runtime.settings(), keyring=runtime.pii_keyring, otp=runtime.otp_service,
        pepper=lambda: runtime.secret(runtime.OTP_PEPPER), clock=lambda: now[0],
    )


def test_lock_doubles_on_repeated_lockouts(stack):
    make_user()
    now = [1_800_000_000.0]
    signin = signin_with_clock(now)
    locks = []
    for _ in range(3):
        for _ in range(5):
            with pytest.raises(Exception) as err:
                signin.login(email=None, code="MAN0001RAB", password="nope", client_ip="192.0.2.1")
            assert err.value.code == "invalid_credentials"
        locks.append(lock_documents()[0].get("locked_until") - now[0])
        now[0] += locks[-1] + 1
    assert locks == [60, 120, 240]


def test_rehash_when_parameters_rise(login):
    from otplogin.passwords import Argon2Params

    make_user(params=Argon2Params(memory_kib=19456, iterations=2, lanes=1))
    old = store.client().document("users/MAN0001RAB").get().get("password_hash")
    assert post(login, {"code": "MAN0001RAB", "password": PASSWORD}).status_code == 200
    new = store.client().document("users/MAN0001RAB").get().get("password_hash")
    assert new != old and not passwords.needs_rehash(new) and passwords.verify_password(PASSWORD, new)


def _use_keyring(secret_manager, keys: list[str]) -> None:
    secret_manager.add("pii-keyring", json.dumps({"keys": keys}))
    runtime.reset()


def test_wrong_key_never_fails_login_and_health_says_why(login, caplog, monkeypatch):
    make_user()
    with LocalSecretManager("demo-otp", seed_dev_secrets=True) as other:
        # Same pepper and JWT keys, but a keyring that lacks the key the data needs.
        for sid in ("otp-pepper", "jwt-signing-keys"):
            other.add(sid, runtime.secret(sid))
        old_kid = runtime.pii_keyring().primary_kid
        stranger = generate_key()
        other.add("pii-keyring", json.dumps({"keys": [stranger]}))
        monkeypatch.setenv("SECRET_MANAGER_EMULATOR_HOST", other.host)
        runtime.reset()
        with caplog.at_level(logging.ERROR, logger="otplogin"):
            r = post(login, {"code": "MAN0001RAB", "password": PASSWORD})
        assert r.status_code == 200
        body = r.get_json()
        assert body["user"]["phone"] is None and body["user"]["address"] is None
        assert body["unavailable_fields"] == ["address", "phone", "whatsapp"]
        messages = [rec.getMessage() for rec in caplog.records if getattr(rec, "fields", {}).get("event") == "pii_undecryptable"]
        assert len(messages) == 3 and all(old_kid in m and "does not hold" in m for m in messages)
        health = login.get("/healthz")
        assert health.status_code == 503 and health.get_json()["checks"]["pii_keyring"] == "encryption_key_mismatch"
        assert stranger not in health.get_data(as_text=True) and stranger not in json.dumps(body)


def test_missing_keyring_secret_degrades_to_no_pii(login, monkeypatch):
    make_user()
    with LocalSecretManager("demo-otp") as other:
        for sid in ("otp-pepper", "jwt-signing-keys"):
            other.add(sid, runtime.secret(sid))
        monkeypatch.setenv("SECRET_MANAGER_EMULATOR_HOST", other.host)
        runtime.reset()
        r = post(login, {"code": "MAN0001RAB", "password": PASSWORD})
        assert r.status_code == 200 and r.get_json()["unavailable_fields"] == ["address", "phone", "whatsapp"]
        health = login.get("/healthz").get_json()
        assert health["status"] == "unavailable"
        assert health["checks"]["secrets"]["pii-keyring"] == "not found"
        assert health["checks"]["pii_keyring"] == "keyring_unavailable"


def test_rotation_keeps_old_ciphertexts_readable(login, secret_manager):
    make_user()
    old = json.loads(runtime.secret("pii-keyring"))["keys"]
    new = generate_key()
    try:
        _use_keyring(secret_manager, [new, *old])
        r = post(login, {"code": "MAN0001RAB", "password": PASSWORD})
        assert r.status_code == 200 and r.get_json()["user"]["phone"] == PHONE
        assert runtime.pii_keyring().primary_kid == key_id(new)
        assert login.get("/healthz").get_json()["checks"]["pii_keyring"] == "ok"  # old canary still decrypts
    finally:
        _use_keyring(secret_manager, old)


def test_second_factor_end_to_end(login):
    make_user(mfa=True)
    r = post(login, {"email": "ana@example.com", "password": PASSWORD, "locale": "fr"})
    assert r.status_code == 200
    step = r.get_json()
    assert step["mfa_required"] is True and "access_token" not in step and "user" not in step
    assert step["phone_hint"] == "+243*******78" and step["expires_in"] == 300
    code = outbox_codes(store.client(), PHONE)[-1]
    verify = app_client("verify_otp")
    # The mfa token is not an access token.
    with pytest.raises(jwt.InvalidTokenError):
        verify_with_jwks(step["mfa_token"], jwks(login), issuer="otplogin", audience="otplogin-clients")
    r = post(verify, {"mfa_token": step["mfa_token"], "code": code})
    assert r.status_code == 200, r.get_data(as_text=True)
    claims = verify_with_jwks(r.get_json()["access_token"], jwks(login), issuer="otplogin", audience="otplogin-clients")
    assert claims["code"] == "MAN0001RAB" and claims["amr"] == ["pwd", "otp"]
    # The completed login is a session: its refresh token renews the same claims.
    refreshed = post(login, {"grant_type": "refresh_token", "refresh_token": r.get_json()["refresh_token"]})
    again = verify_with_jwks(refreshed.get_json()["access_token"], jwks(login), issuer="otplogin",
                             audience="otplogin-clients")
    assert again["sub"] == claims["sub"] and again["amr"] == ["pwd", "otp"]
    # Single use, and a plain phone code cannot complete someone's second factor.
    assert post(verify, {"mfa_token": step["mfa_token"], "code": code}).get_json()["error"]["code"] == "code_expired"


def test_phone_code_cannot_complete_a_second_factor(login):
    make_user(mfa=True)
    step = post(login, {"email": "ana@example.com", "password": PASSWORD}).get_json()
    send = app_client("send_otp")
    assert post(send, {"phone": PHONE}).status_code == 202  # a plain phone code, beside the login code
    code = outbox_codes(store.client(), PHONE)[-1]
    r = post(app_client("verify_otp"), {"mfa_token": step["mfa_token"], "code": code})
    assert r.status_code == 401 and r.get_json()["error"]["code"] == "invalid_code"  # checked as the login code


def test_tampered_mfa_token_is_rejected(login):
    r = post(app_client("verify_otp"), {"mfa_token": "abc.def.ghi", "code": "123456"})
    assert r.status_code == 400 and r.get_json()["error"]["field"] == "mfa_token"


BAD_LOGIN = [
    ("both identifiers", {"email": "a@example.com", "code": "MAN0001RAB", "password": "x"}),
    ("no identifier", {"password": "x"}),
    ("no password", {"email": "a@example.com"}),
    ("bad email", {"email": "not-an-email", "password": "x"}),
    ("bad code", {"code": "../users", "password": "x"}),
    ("password not a string", {"email": "a@example.com", "password": 123}),
    ("password too long", {"email": "a@example.com", "password": "x" * 2000}),
]


@pytest.mark.parametrize("case,body", BAD_LOGIN, ids=[c[0] for c in BAD_LOGIN])
def test_bad_login_input_is_400(login, case, body):
    r = post(login, body)
    assert r.status_code == 400 and r.get_json()["error"]["code"] == "invalid_request"


def test_jwt_from_login_and_verify_otp_verify_against_jwks_only(login):
    make_user()
    send, verify = app_client("send_otp"), app_client("verify_otp")
    post(send, {"phone": "+212612345678"})
    code = outbox_codes(store.client(), "+212612345678")[-1]
    phone_token = post(verify, {"phone": "+212612345678", "code": code}).get_json()["access_token"]
    user_token = post(login, {"code": "MAN0001RAB", "password": PASSWORD}).get_json()["access_token"]
    published = json.loads(json.dumps(jwks(login)))  # only the public document crosses the wire
    assert all(set(k) == {"kty", "crv", "x", "kid", "alg", "use"} for k in published["keys"])
    for token in (phone_token, user_token):
        assert verify_with_jwks(token, published, issuer="otplogin", audience="otplogin-clients")["iss"] == "otplogin"


# -- guessing under concurrency, enumeration, lockout as denial of service ---------------------


def post_from(client, body, ip):
    """One request as `ip` sees it (the right end of X-Forwarded-For is the caller's address)."""
    return post(client, body, headers={"X-Forwarded-For": ip})


def answer(r) -> tuple:
    return r.status_code, r.get_json(), r.headers.get("Retry-After")


class Argon2Gate:
    """Counts Argon2id verifications (real or dummy) and holds wrong ones until released.

    Holding the wrong guesses keeps every request of a burst in flight at once, the
    widest window a race between the lock check and the failure count can have."""

    def __init__(self, monkeypatch):
        self.real = passwords.verify_password
        self.lock = threading.Lock()
        self.wrong = self.right = 0
        self.release = threading.Event()
        monkeypatch.setattr(passwords, "verify_password", self.verify)

    def verify(self, password, phc):
        with self.lock:
            if password == PASSWORD:
                self.right += 1
            else:
                self.wrong += 1
        if password != PASSWORD:
            self.release.wait(30)
        return self.real(password, phc)


def burst(login, gate, bodies, ip):
    """Send `bodies` in parallel from `ip`; return once each is held in Argon2id or answered."""
    app = login.application
    pool = futures.ThreadPoolExecutor(len(bodies))
    pending = [pool.submit(post_from, app.test_client(), body, ip) for body in bodies]
    deadline = time.monotonic() + 30
    while gate.wrong + sum(f.done() for f in pending) < len(bodies) and time.monotonic() < deadline:
        time.sleep(0.01)
    return pool, pending


def test_parallel_wrong_passwords_get_no_more_hashes_than_the_lock_budget(login, monkeypatch):
    make_user()
    gate = Argon2Gate(monkeypatch)
    pool, pending = burst(login, gate, [{"code": "MAN0001RAB", "password": f"guess-{i}"} for i in range(24)], "198.51.100.7")
    try:
        # The budget (5) is spent by guesses still in flight: the right password must not get in.
        right = post_from(login, {"code": "MAN0001RAB", "password": PASSWORD}, "198.51.100.7")
    finally:
        gate.release.set()
        answers = [f.result() for f in pending]
        pool.shutdown()
    assert gate.wrong <= 5, f"{gate.wrong} passwords evaluated for a budget of 5"
    assert answer(right)[0] == 429 and right.get_json()["error"]["code"] == "account_locked"
    assert gate.right == 0  # refused before Argon2id
    codes = sorted(r.get_json()["error"]["code"] for r in answers)
    assert codes.count("invalid_credentials") == gate.wrong and set(codes) <= {"invalid_credentials", "account_locked"}


def test_parallel_guesses_from_one_ip_get_no_more_hashes_than_the_ip_budget(login, monkeypatch):
    monkeypatch.setenv("LOGINS_PER_IP_PER_HOUR", "5")
    runtime.reset()
    make_user()
    gate = Argon2Gate(monkeypatch)
    bodies = [{"email": f"spray{i}@example.com", "password": f"guess-{i}"} for i in range(24)]
    pool, pending = burst(login, gate, bodies, "198.51.100.8")
    try:
        right = post_from(login, {"code": "MAN0001RAB", "password": PASSWORD}, "198.51.100.8")
    finally:
        gate.release.set()
        answers = [f.result() for f in pending]
        pool.shutdown()
    assert gate.wrong <= 5, f"{gate.wrong} passwords evaluated for an IP budget of 5"
    assert right.status_code == 429 and right.get_json()["error"]["limit"] == "login_ip" and gate.right == 0
    assert sum(r.status_code == 401 for r in answers) == gate.wrong


def test_a_known_and_an_unknown_email_answer_the_same_sequence(login):
    make_user()
    known = [answer(post_from(login, {"email": "ana@example.com", "password": "nope"}, "198.51.100.9")) for _ in range(8)]
    unknown = [answer(post_from(login, {"email": "bob@example.com", "password": "nope"}, "198.51.100.9")) for _ in range(8)]
    assert known == unknown
    assert [status for status, _, _ in known] == [401] * 5 + [429] * 3  # the unknown email is "locked" too
    assert known[-1][1]["error"]["code"] == "account_locked" and 50 <= int(known[-1][2]) <= 60


def test_an_attacker_locking_an_account_from_one_client_does_not_lock_out_the_owner(login):
    make_user()
    for _ in range(6):
        post_from(login, {"code": "MAN0001RAB", "password": "nope"}, "203.0.113.66")
    assert post_from(login, {"code": "MAN0001RAB", "password": PASSWORD}, "203.0.113.66").status_code == 429
    r = post_from(login, {"email": "ana@example.com", "password": PASSWORD}, "198.51.100.20")
    assert r.status_code == 200, r.get_data(as_text=True)


def test_the_account_wide_ceiling_bounds_guesses_from_many_clients_but_lets_a_known_client_in(login, monkeypatch):
    monkeypatch.setenv("LOGIN_FAILURES_BEFORE_LOCK", "2")
    monkeypatch.setenv("LOGIN_ACCOUNT_FAILURES_PER_HOUR", "6")
    runtime.reset()
    make_user()
    owner = "198.51.100.30"
    assert post_from(login, {"code": "MAN0001RAB", "password": PASSWORD}, owner).status_code == 200
    gate = Argon2Gate(monkeypatch)
    gate.release.set()
    for i in range(8):  # a botnet: 8 clients, 3 guesses each
        for _ in range(3):
            post_from(login, {"code": "MAN0001RAB", "password": "nope"}, f"203.0.113.{i + 1}")
    assert gate.wrong == 6, f"{gate.wrong} guesses evaluated for an account-wide ceiling of 6"
    r = post_from(login, {"code": "MAN0001RAB", "password": PASSWORD}, "192.0.2.99")  # a client never seen
    assert r.status_code == 429 and r.get_json()["error"]["code"] == "account_locked"
    assert 3500 <= int(r.headers["Retry-After"]) <= 3600 and gate.right == 0
    assert post_from(login, {"code": "MAN0001RAB", "password": PASSWORD}, owner).status_code == 200


def test_lock_levels_decay_when_a_client_stops_failing(stack):
    from otplogin.errors import AccountLocked

    make_user()
    now = [1_800_000_000.0]
    signin = signin_with_clock(now)

    def lock_after_five_failures() -> int:
        for _ in range(5):
            with pytest.raises(Exception) as err:
                signin.login(email=None, code="MAN0001RAB", password="nope", client_ip="192.0.2.1")
            assert err.value.code == "invalid_credentials"
        with pytest.raises(AccountLocked) as locked:
            signin.login(email=None, code="MAN0001RAB", password="nope", client_ip="192.0.2.1")
        return locked.value.retry_after

    locks = []
    for _ in range(3):
        locks.append(lock_after_five_failures())
        now[0] += locks[-1] + 1
    assert locks == [60, 120, 240]
    now[0] += 2 * runtime.settings().login_lock_decay_seconds  # quiet: two levels forgiven
    assert lock_after_five_failures() == 120


def test_rehash_never_lowers_a_stronger_parameter(login):
    from otplogin.passwords import Argon2Params, parse_phc

    make_user(params=Argon2Params(memory_kib=65536, iterations=2, lanes=1))  # 64 MiB, one pass fewer than now
    assert post(login, {"code": "MAN0001RAB", "password": PASSWORD}).status_code == 200
    new = parse_phc(store.client().document("users/MAN0001RAB").get().get("password_hash"))
    assert new.memory_kib >= 65536 and new.iterations >= passwords.DEFAULT_PARAMS.iterations


def test_rehash_does_not_overwrite_a_password_changed_meanwhile(login, monkeypatch):
    from otplogin.passwords import Argon2Params

    make_user(params=Argon2Params(memory_kib=19456, iterations=2, lanes=1))
    real_hash = passwords.hash_password

    def hash_while_the_owner_changes_the_password(password, *args, **kwargs):
        # The password changes between this login's verification and its rehash write.
        store.client().document("users/MAN0001RAB").update({"password_hash": real_hash("a brand new password")})
        return real_hash(password, *args, **kwargs)

    monkeypatch.setattr(passwords, "hash_password", hash_while_the_owner_changes_the_password)
    assert post(login, {"code": "MAN0001RAB", "password": PASSWORD}).status_code == 200
    stored = store.client().document("users/MAN0001RAB").get().get("password_hash")
    assert passwords.verify_password("a brand new password", stored)


def test_a_second_factor_token_is_no_access_token_even_for_a_service_that_skips_aud(login):
    make_user(mfa=True)
    mfa_token = post(login, {"email": "ana@example.com", "password": PASSWORD}).get_json()["mfa_token"]
    keys = jwks(login)
    header = jwt.get_unverified_header(mfa_token)
    key = jwt.PyJWKSet.from_dict(keys)[header["kid"]]
    # A backend that checks signature and issuer but forgot the audience:
    with pytest.raises(jwt.InvalidIssuerError):
        jwt.decode(mfa_token, key, algorithms=["EdDSA"], issuer="otplogin", options={"verify_aud": False})
    # One that looks at the type header instead:
    assert header["typ"] != "at+jwt"
    # The access-token verifier refuses it by type, even told to expect its issuer and audience.
    with pytest.raises(jwt.InvalidTokenError, match="token type"):
        verify_with_jwks(mfa_token, keys, issuer="otplogin:mfa", audience="otplogin-clients:mfa")
    assert verify_with_jwks(
        mfa_token, keys, issuer="otplogin:mfa", audience="otplogin-clients:mfa", typ=SECOND_FACTOR_TOKEN_TYPE
    )["user"] == "MAN0001RAB"
    make_user(code="BOB0001RAB", email="bob@example.com")
    access = post(login, {"email": "bob@example.com", "password": PASSWORD}).get_json()["access_token"]
    assert jwt.get_unverified_header(access)["typ"] == "at+jwt"
