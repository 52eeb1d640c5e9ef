"""otplogin_client (client/) against the functions as real processes, and its retry policy
against small fake servers that count what reached them."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import otplogin_client as api
import pytest

from otplogin import passwords, runtime, store, users
from otplogin.tokens import verify_with_jwks
from tests.support.apps import outbox_codes
from tests.support.functions import FunctionProcess
from tests.support.ports import free_port
from tests.support.secret_manager import LocalSecretManager
from tests.support.stack import local_env

PHONE = "+243812345678"
PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def functions(firestore_emulator, secret_manager, tmp_path_factory) -> Iterator[dict[str, FunctionProcess]]:
    """The three functions, started once for the module (each test still gets a clean database)."""
    logs = tmp_path_factory.mktemp("client-function-logs")
    env = local_env(firestore_emulator, secret_manager)
    procs = {name: FunctionProcess(name, env, log_path=logs / f"{name}.log") for name in ("send_otp", "verify_otp", "login")}
    threads = [threading.Thread(target=proc.start) for proc in procs.values()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    yield procs
    for proc in procs.values():
        proc.stop()


@pytest.fixture
def client(stack, functions) -> Iterator[api.Client]:
    with api.Client(functions["send_otp"].url, functions["verify_otp"].url, functions["login"].url, timeout=20) as c:
        yield c


def make_user(email: str, code: str, phone: str, mfa: bool = False) -> None:
    users.create(
        code=code, email=email, password_hash=passwords.hash_password(PASSWORD), role="user",
        keyring=runtime.pii_keyring(), pii={"phone": phone, "address": "Rabat", "whatsapp": None}, mfa_enabled=mfa,
    )  # fmt: skip


# ------------------------------------------------------------------ against the functions


def test_phone_sign_in(client):
    sent = client.send_otp(PHONE, locale="fr")
    assert sent == api.SendResult(expires_in=300, resend_after=60)
    token = client.verify_otp(PHONE, outbox_codes(store.client(), PHONE)[-1])
    assert token.token_type == "Bearer" and token.expires_in == 3600
    assert token.authorization == f"Bearer {token.access_token}"
    assert "access_token" not in repr(token) and token.access_token not in repr(token)  # kept out of logs
    # The JWKS the client fetches verifies the token; unverified_claims() agrees with it.
    claims = verify_with_jwks(token.access_token, client.jwks(), issuer="otplogin", audience="otplogin-clients")
    assert claims == token.unverified_claims() and claims["sub"] == f"phone:{PHONE}"


def test_refresh_and_logout(client):
    client.send_otp(PHONE)
    first = client.verify_otp(PHONE, outbox_codes(store.client(), PHONE)[-1])
    assert first.refresh_token and first.refresh_expires_in == 30 * 86400
    assert first.refresh_token not in repr(first)  # kept out of logs
    second = client.refresh(first)
    assert second.refresh_token != first.refresh_token and second.unverified_claims()["sub"] == f"phone:{PHONE}"
    client.logout(second)
    with pytest.raises(api.InvalidGrant):
        client.refresh(second)
    client.logout("not-a-token")  # no oracle: the same quiet answer
    with pytest.raises(api.InvalidToken):
        client.logout(all_sessions=True, access_token="a.b.c")
    client.logout(all_sessions=True, access_token=second)


def test_typed_errors_mirror_the_error_codes(client):
    with pytest.raises(api.InvalidPhone) as exc:
        client.send_otp("+243 12")
    assert (exc.value.code, exc.value.status) == ("invalid_phone", 400)
    with pytest.raises(api.CountryNotAllowed) as exc:
        client.send_otp("+33612345678")
    assert exc.value.country == "FR" and exc.value.status == 403
    with pytest.raises(api.InvalidRequest) as exc:
        client.send_otp(PHONE, channel="pigeon")
    assert exc.value.field == "channel"

    client.send_otp(PHONE)
    with pytest.raises(api.RateLimited) as exc:
        client.send_otp(PHONE)  # within the 60 s cooldown
    assert exc.value.limit == "resend_cooldown" and 0 < exc.value.retry_after <= 60 and exc.value.status == 429

    real = outbox_codes(store.client(), PHONE)[-1]
    wrong = real[:-1] + str((int(real[-1]) + 1) % 10)
    with pytest.raises(api.InvalidCode) as exc:
        client.verify_otp(PHONE, wrong)
    assert exc.value.attempts_remaining == 4 and isinstance(exc.value, api.ApiError)
    with pytest.raises(api.TooManyAttempts) as exc:
        for _ in range(5):
            try:
                client.verify_otp(PHONE, wrong)
            except api.InvalidCode:
                continue
    assert exc.value.retry_after and exc.value.retry_after > 0
    with pytest.raises(api.CodeExpired):
        client.verify_otp("+243812340009", "123456")  # no code was ever sent
    with pytest.raises(api.InvalidCredentials) as exc:
        client.login(email="nobody@example.com", password="wrong")
    assert exc.value.status == 401 and exc.value.message


def test_a_challenge_is_solved_and_the_send_goes_through(stack, tmp_path):
    env = stack | {"GUARD_CHALLENGES": "altcha", "GUARD_RANGE_FREE_PER_HOUR": "0", "GUARD_ALTCHA_COST": "10",
                   "GUARD_ALTCHA_MAX_COUNTER": "40"}
    proc = FunctionProcess("send_otp", env, log_path=tmp_path / "send_otp.log").start()
    try:
        with api.Client(proc.url, proc.url, proc.url, timeout=20) as c:
            with pytest.raises(api.ChallengeRequired) as exc:
                c.send_otp(PHONE)
            assert exc.value.status == 403 and exc.value.limit == "send_range" and not exc.value.attestation_accepted
            assert exc.value.altcha_challenge is not None
            payload = api.solve_altcha(exc.value.altcha_challenge)
            assert c.send_otp(PHONE, altcha=payload) == api.SendResult(expires_in=300, resend_after=60)
    finally:
        proc.stop()


def test_password_sign_in_and_second_factor(client):
    users.write_canary(runtime.pii_keyring())
    make_user("ana@example.com", "ANA0001RAB", "+212612345678")
    make_user("mfa@example.com", "MFA0001RAB", "+212612345679", mfa=True)

    result = client.login(code="ana0001rab", password=PASSWORD)
    assert isinstance(result, api.LoginResult) and result.unavailable_fields == ()
    assert result.user.email == "ana@example.com" and result.user.phone == "+212612345678"
    assert result.user.address == "Rabat" and result.user.whatsapp is None
    assert result.token.unverified_claims()["amr"] == ["pwd"]

    step = client.login(email="MFA@example.com", password=PASSWORD, locale="fr")
    assert isinstance(step, api.SecondFactorRequired)
    assert step.phone_hint == "+212*******79" and step.channel == "sms" and step.mfa_token not in repr(step)
    code = outbox_codes(store.client(), "+212612345679")[-1]
    token = client.verify_second_factor(step, code)
    assert token.unverified_claims()["amr"] == ["pwd", "otp"]
    with pytest.raises(api.CodeExpired):
        client.verify_second_factor(step.mfa_token, code)  # single use

    with pytest.raises(ValueError):
        client.login(email="a@example.com", code="ANA0001RAB", password=PASSWORD)


def test_health_and_jwks(client):
    assert client.health("login").checks["pii_keyring"] == "canary_missing"  # a fresh database
    users.write_canary(runtime.pii_keyring())
    for function in ("send_otp", "verify_otp", "login"):
        health = client.health(function)
        assert health.ok and health.checks["firestore"] == "ok", (function, health)
    keys = client.jwks()["keys"]
    assert keys and all(key["kty"] == "OKP" and "d" not in key for key in keys)


def test_a_degraded_health_report_is_an_answer_not_an_error(stack, tmp_path):
    with LocalSecretManager("demo-otp") as empty:
        proc = FunctionProcess("verify_otp", stack | {"SECRET_MANAGER_EMULATOR_HOST": empty.host},
                               log_path=tmp_path / "verify.log").start()  # fmt: skip
        try:
            sleeps: list[float] = []
            client = api.Client("http://127.0.0.1:1", proc.url, "http://127.0.0.1:1", timeout=20, sleep=sleeps.append)
            health = client.health("verify_otp")
            assert not health.ok and health.checks["secrets"]["otp-pepper"] == "not found"
            assert sleeps == []  # a report is final: no retry
            with pytest.raises(api.Unavailable) as exc:
                client.verify_otp(PHONE, "123456")
            assert exc.value.status == 503
        finally:
            proc.stop()


# ------------------------------------------------------------------ retry policy


class FakeFunction:
    """Answers each request with the next of `answers` (status, body, headers) and records it."""

    def __init__(self, answers: list[tuple[int, str, dict[str, str]]]) -> None:
        self.answers = answers
        self.hits: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                fake.hits.append(f"{self.command} {self.path}")
                status, body, headers = fake.answers[min(len(fake.hits), len(fake.answers)) - 1]
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body.encode())))
                self.end_headers()
                self.wfile.write(body.encode())

            do_GET = do_POST = _answer

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake():
    made: list[FakeFunction] = []

    def make(*answers: tuple[int, str, dict[str, str]]) -> FakeFunction:
        made.append(FakeFunction(list(answers)))
        return made[-1]

    yield make
    for server in made:
        server.close()


UNAVAILABLE = (503, '{"error": {"code": "unavailable", "message": "Try again shortly."}}', {"Retry-After": "1"})
HTML_502 = (502, "<html><body>Bad Gateway</body></html>", {"Content-Type": "text/html"})
HEALTHY = (200, '{"status": "ok", "checks": {"firestore": "ok", "secrets": {}}}', {})
JWKS = (200, '{"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "x", "kid": "k", "alg": "EdDSA", "use": "sig"}]}', {})


def make_client(url: str, sleeps: list[float], **options: float) -> api.Client:
    return api.Client(url, url, url, sleep=sleeps.append, **options)


def test_gets_are_retried_on_503_and_bad_gateways_honouring_retry_after(fake):
    server, sleeps = fake(UNAVAILABLE, HTML_502, JWKS), []
    assert make_client(server.url, sleeps).jwks()["keys"][0]["kid"] == "k"
    assert server.hits == ["GET /.well-known/jwks.json"] * 3
    assert sleeps[0] == 1.0 and len(sleeps) == 2  # Retry-After first, then jittered backoff

    server, sleeps = fake(UNAVAILABLE, UNAVAILABLE, UNAVAILABLE, HEALTHY), []
    with pytest.raises(api.Unavailable):
        make_client(server.url, sleeps, retries=2).health("login")
    assert len(server.hits) == 3  # retries=2: three tries in all


@pytest.mark.parametrize("call", ["send_otp", "login", "verify_otp", "verify_second_factor", "refresh", "logout"])
def test_posts_are_never_repeated_once_they_reached_the_server(fake, call):
    server, sleeps = fake(UNAVAILABLE, (202, '{"status": "sent", "expires_in": 300, "resend_after": 60}', {})), []
    client = make_client(server.url, sleeps)
    with pytest.raises(api.Unavailable):
        {
            "send_otp": lambda: client.send_otp(PHONE),
            "login": lambda: client.login(email="a@example.com", password="p"),
            "verify_otp": lambda: client.verify_otp(PHONE, "123456"),
            "verify_second_factor": lambda: client.verify_second_factor("a.b.c", "123456"),
            "refresh": lambda: client.refresh("a.b.c"),
            "logout": lambda: client.logout("a.b.c"),
        }[call]()
    assert len(server.hits) == 1 and sleeps == []

    server = fake(HTML_502)
    with pytest.raises(api.UnexpectedResponse) as exc:
        make_client(server.url, sleeps).send_otp(PHONE)
    assert exc.value.status == 502 and len(server.hits) == 1


def test_a_send_that_never_left_is_retried_but_a_verify_is_not():
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens: connection refused
    sleeps: list[float] = []
    with pytest.raises(api.TransportError) as exc:
        make_client(dead, sleeps, retries=2).send_otp(PHONE)
    assert exc.value.sent is False and len(sleeps) == 2  # tried three times: nothing could have been sent
    sleeps.clear()
    with pytest.raises(api.TransportError) as exc:
        make_client(dead, sleeps, retries=2).verify_otp(PHONE, "123456")
    assert exc.value.sent is False and sleeps == []  # a verify is never retried


def test_a_timeout_after_sending_is_not_retried():
    with socket.socket() as listener:  # accepts connections (the kernel's backlog) but never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        sleeps: list[float] = []
        with pytest.raises(api.Timeout) as exc:
            make_client(url, sleeps, timeout=0.5).send_otp(PHONE)
        assert exc.value.sent is True and sleeps == []
        with pytest.raises(api.Timeout):
            make_client(url, sleeps, timeout=0.5, retries=1).health("send_otp")
        assert len(sleeps) == 1  # a GET may be repeated


def test_unknown_error_codes_stay_api_errors(fake):
    server = fake((418, '{"error": {"code": "teapot", "message": "short and stout", "spout": 1}}', {}))
    with pytest.raises(api.ApiError) as exc:
        make_client(server.url, []).send_otp(PHONE)
    assert type(exc.value) is api.ApiError and exc.value.code == "teapot" and exc.value.data == {"spout": 1}
