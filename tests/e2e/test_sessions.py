"""Refresh-token sessions through real processes on the emulator: sign in at verify_otp, refresh and
sign out at login (another process), the way instances run in the cloud."""

from __future__ import annotations

import json
import threading
import time

import pytest
import requests

from otplogin import passwords, runtime, store, users
from otplogin.tokens import verify_with_jwks
from tests.support.functions import FunctionProcess

PHONE = "+243800000001"  # a test number: fixed code, never texted (emulator mode)
CODE = "424242"
PASSWORD = "correct horse battery staple"


@pytest.fixture
def start(stack, tmp_path, monkeypatch):
    monkeypatch.setenv("OTP_TEST_NUMBERS", f"{PHONE}={CODE}")  # this process issues the fixed codes
    runtime.reset()
    started: list[FunctionProcess] = []

    def run(name: str, **env: str) -> FunctionProcess:
        proc = FunctionProcess(name, stack | {"OTP_TEST_NUMBERS": f"{PHONE}={CODE}", **env},
                               log_path=tmp_path / f"{name}-{len(started)}.log").start()
        started.append(proc)
        return proc

    yield run
    for proc in started:
        proc.stop()


def post(proc: FunctionProcess, body: dict, path: str = "/", **kw) -> requests.Response:
    return requests.post(proc.url + path, json=body, timeout=20, **kw)


def sign_in(verify: FunctionProcess) -> dict:
    runtime.otp_service().send(PHONE, "sms", None, "127.0.0.1")  # a test number: no text, no caps
    r = post(verify, {"phone": PHONE, "code": CODE})
    assert r.status_code == 200, r.text
    return r.json()


def refresh(login: FunctionProcess, token: str) -> requests.Response:
    return post(login, {"grant_type": "refresh_token", "refresh_token": token})


def refused(r: requests.Response) -> bool:
    return r.status_code == 401 and r.json()["error"]["code"] == "invalid_grant"


def test_sign_in_answers_a_refresh_token_that_rotates(start):
    verify, login = start("verify_otp"), start("login")
    first = sign_in(verify)
    token = first["refresh_token"]
    assert first["refresh_expires_in"] == 30 * 86400 and len(token.rpartition(".")[2]) >= 43  # 256 bits
    r = refresh(login, token)
    assert r.status_code == 200, r.text
    second = r.json()
    assert second["refresh_token"] != token and second["token_type"] == "Bearer"
    jwks = requests.get(login.url + "/.well-known/jwks.json", timeout=10).json()
    claims = verify_with_jwks(second["access_token"], jwks, issuer="otplogin", audience="otplogin-clients")
    assert claims["sub"] == f"phone:{PHONE}" and claims["phone_number"] == PHONE
    assert refresh(login, second["refresh_token"]).status_code == 200
    # At rest: only HMACs and ciphertext, no token and no phone number.
    dump = json.dumps([d.to_dict() for c in ("refresh_families", "refresh_subjects")
                       for d in store.client().collection(c).stream()], default=str)
    assert token not in dump and token.rpartition(".")[2] not in dump and PHONE not in dump and PHONE[4:] not in dump


def test_reuse_after_the_grace_revokes_the_family_newest_token_too(start):
    verify, login = start("verify_otp"), start("login", REFRESH_REUSE_GRACE_SECONDS="1")
    spent = sign_in(verify)["refresh_token"]
    newest = refresh(login, spent).json()["refresh_token"]
    time.sleep(1.2)
    assert refused(refresh(login, spent))  # the thief (or the victim) replays a spent token
    assert refused(refresh(login, newest))  # and the family is gone for both
    assert refresh(login, sign_in(verify)["refresh_token"]).status_code == 200  # a new sign-in is unaffected


def test_retry_within_the_grace_gets_the_same_successor(start):
    verify, login = start("verify_otp"), start("login")
    token = sign_in(verify)["refresh_token"]
    successor = refresh(login, token).json()["refresh_token"]
    retry = refresh(login, token)  # the first answer was lost
    assert retry.status_code == 200 and retry.json()["refresh_token"] == successor
    assert refresh(login, successor).status_code == 200  # the family lives on


def parallel(login: FunctionProcess, token: str, n: int = 10) -> list[requests.Response]:
    gate = threading.Barrier(n)
    answers: list[requests.Response] = []

    def one() -> None:
        gate.wait()
        answers.append(refresh(login, token))

    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return answers


def test_ten_parallel_refreshes_without_grace_one_success_and_the_family_revoked(start):
    verify = start("verify_otp")
    login = start("login", REFRESH_REUSE_GRACE_SECONDS="0")
    answers = parallel(login, sign_in(verify)["refresh_token"])
    ok = [r for r in answers if r.status_code == 200]
    assert len(ok) == 1 and sum(refused(r) for r in answers) == 9, [r.status_code for r in answers]
    assert refused(refresh(login, ok[0].json()["refresh_token"]))  # reuse revoked the winner's successor too


def test_ten_parallel_refreshes_within_grace_rotate_once(start):
    verify, login = start("verify_otp"), start("login")
    answers = parallel(login, sign_in(verify)["refresh_token"])
    assert all(r.status_code == 200 for r in answers), [r.text for r in answers]
    successors = {r.json()["refresh_token"] for r in answers}
    assert len(successors) == 1  # one rotation; the others were retries of it
    assert refresh(login, successors.pop()).status_code == 200


def test_logout_revokes_the_family_and_answers_the_same_for_anything(start):
    verify, login = start("verify_otp"), start("login")
    token = sign_in(verify)["refresh_token"]
    other = sign_in(verify)["refresh_token"]
    assert post(login, {"refresh_token": token}, "/logout").status_code == 204
    assert refused(refresh(login, token))
    assert refresh(login, other).status_code == 200  # another session of the same phone lives on
    fake = token[:-5] + "abcde"
    for body in ({"refresh_token": fake}, {"refresh_token": "garbage"}, {"refresh_token": token}):
        r = post(login, body, "/logout")
        assert r.status_code == 204 and r.content == b""
    for body in ({}, {"all_sessions": "yes"}, {"refresh_token": 7}):
        r = post(login, body, "/logout")
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_request", body


def test_sign_out_everywhere_revokes_every_family_of_the_subject(start):
    verify, login = start("verify_otp"), start("login")
    a, b = sign_in(verify), sign_in(verify)
    r = post(login, {"all_sessions": True}, "/logout")
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_token"  # needs a Bearer token
    headers = {"Authorization": f"Bearer {a['access_token']}"}
    assert post(login, {"all_sessions": True}, "/logout", headers=headers).status_code == 204
    assert refused(refresh(login, a["refresh_token"])) and refused(refresh(login, b["refresh_token"]))
    assert refresh(login, sign_in(verify)["refresh_token"]).status_code == 200  # signing in again works


def test_password_login_answers_a_refresh_token(start):
    users.create(code="MAN0001RAB", email="ana@example.com", password_hash=passwords.hash_password(PASSWORD),
                 role="user", keyring=runtime.pii_keyring(), pii={})
    login = start("login")
    r = post(login, {"email": "ana@example.com", "password": PASSWORD})
    assert r.status_code == 200, r.text
    again = refresh(login, r.json()["refresh_token"])
    assert again.status_code == 200 and again.json()["refresh_expires_in"] > 0
