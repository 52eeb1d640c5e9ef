"""Refresh-token families on the emulator with an injected clock: idle and absolute expiry,
sign-out everywhere, and what one refresh costs in Firestore round trips."""

from __future__ import annotations

import pytest

from otplogin import runtime, store
from otplogin.config import settings
from otplogin.errors import InvalidGrant
from otplogin.refresh import RefreshTokens

DAY = 86400
SUBJECT = "phone:+243812345678"


@pytest.fixture
def tokens(stack, clock):
    return RefreshTokens(settings(), pepper=lambda: runtime.secret(runtime.OTP_PEPPER), clock=clock)


def test_idle_timeout_is_checked_in_code_and_slides_with_use(tokens, clock):
    issued = tokens.issue(SUBJECT, {"amr": ["otp"]})
    assert issued.expires_in == 30 * DAY
    clock.advance(30 * DAY - 1)
    token = tokens.refresh(issued.refresh_token).refresh_token  # used just in time: the idle clock restarts
    clock.advance(30 * DAY - 1)
    token = tokens.refresh(token).refresh_token
    clock.advance(30 * DAY)  # a month unused
    with pytest.raises(InvalidGrant):
        tokens.refresh(token)


def test_absolute_lifetime_ends_a_family_used_every_day(tokens, clock):
    token = tokens.issue(SUBJECT, {}).refresh_token
    for _ in range(89):
        clock.advance(DAY)
        issued = tokens.refresh(token)
        token = issued.refresh_token
    assert issued.expires_in == DAY  # the answer says when the family ends, whichever limit comes first
    clock.advance(DAY)
    with pytest.raises(InvalidGrant):
        tokens.refresh(token)


def test_sign_out_everywhere_is_one_write_and_spares_later_sign_ins(tokens, clock):
    before = [tokens.issue(SUBJECT, {}).refresh_token for _ in range(3)]
    clock.advance(1)
    tokens.revoke_subject(SUBJECT, "test")
    clock.advance(1)
    after = tokens.issue(SUBJECT, {}).refresh_token
    for token in before:
        with pytest.raises(InvalidGrant):
            tokens.refresh(token)
    assert tokens.refresh(after).refresh_token


def test_a_token_whose_subject_part_is_altered_is_refused_as_reuse(tokens, clock):
    victim = tokens.issue(SUBJECT, {}).refresh_token
    other = tokens.issue("phone:+243899999999", {}).refresh_token
    forged = other.partition(".")[0] + "." + victim.partition(".")[2]  # to dodge the victim's sign-out marker
    with pytest.raises(InvalidGrant):
        tokens.refresh(forged)
    with pytest.raises(InvalidGrant):  # someone holding the victim's token tampered with it: taken for reuse
        tokens.refresh(victim)
    assert tokens.refresh(other).refresh_token  # the subject whose key was borrowed is not affected


class CountingClient:
    """The emulator client, counting the round trips a refresh makes."""

    def __init__(self, inner):
        self.inner, self.reads, self.commits = inner, 0, 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def get_all(self, *args, **kwargs):
        self.reads += 1
        return self.inner.get_all(*args, **kwargs)

    def batch(self):
        batch, outer = self.inner.batch(), self

        class Counted:
            def __getattr__(self, name):
                return getattr(batch, name)

            def commit(self, *args, **kwargs):
                outer.commits += 1
                return batch.commit(*args, **kwargs)

        return Counted()


def test_a_refresh_is_one_read_and_one_commit_and_a_sign_in_one_commit(tokens, monkeypatch):
    counting = CountingClient(store.client())
    monkeypatch.setattr(store, "_client", counting)
    token = tokens.issue(SUBJECT, {}).refresh_token
    assert (counting.reads, counting.commits) == (0, 1)
    tokens.refresh(token)
    assert (counting.reads, counting.commits) == (1, 2)


def test_a_phone_sign_in_starts_its_session_in_the_consume_commit(stack, monkeypatch):
    from tests.support.apps import app_client

    monkeypatch.setenv("OTP_TEST_NUMBERS", "+243800000001=424242")
    runtime.reset()
    verify = app_client("verify_otp")
    runtime.otp_service().send("+243800000001", "sms", None, "127.0.0.1")
    runtime.token_signer()  # warm: the first request would fetch the signing key
    counting = CountingClient(store.client())
    monkeypatch.setattr(store, "_client", counting)
    r = verify.post("/", json={"phone": "+243800000001", "code": "424242"})
    assert r.status_code == 200 and r.get_json()["refresh_token"]
    assert (counting.reads, counting.commits) == (1, 1)  # the code's consume and the family: one commit
    monkeypatch.setattr(store, "_client", counting.inner)
    assert runtime.refresh_tokens().refresh(r.get_json()["refresh_token"]).refresh_token


def test_a_password_sign_in_starts_its_session_in_its_own_success_commit(stack, monkeypatch):
    from otplogin import passwords, users
    from tests.support.apps import app_client

    users.create(code="SES0002", email="ses2@example.com", password_hash=passwords.hash_password("long passphrase"),
                 role="user", keyring=None, pii={})
    login = app_client("login")
    runtime.token_signer(), runtime.mfa_signer(), runtime.pii_keyring()  # warm: no first-request key fetch
    counting = CountingClient(store.client())
    monkeypatch.setattr(store, "_client", counting)
    r = login.post("/", json={"code": "SES0002", "password": "long passphrase"})
    assert r.status_code == 200 and r.get_json()["refresh_token"]
    # The reservation's read and commit, the release's read and commit: the family rides on the release.
    assert (counting.reads, counting.commits) == (2, 2)
    monkeypatch.setattr(store, "_client", counting.inner)
    assert runtime.refresh_tokens().refresh(r.get_json()["refresh_token"]).claims["code"] == "SES0002"
