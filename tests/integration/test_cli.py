"""The operator CLI (`otplogin-admin`) in-process, against the Firestore emulator and a local Secret Manager.

Tests that change secrets (keyring versions, a deleted admin-password) use a
Secret Manager of this module's own, so the session-wide one stays as seeded.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import threading
import time
from types import SimpleNamespace

import jwt
import pytest
from cryptography.fernet import Fernet

from otplogin import cli, passwords, runtime, store, users
from otplogin.keyring import Keyring, key_id, stored_kid
from otplogin.tokens import verify_with_jwks
from tests.support.secret_manager import LocalSecretManager

PASSWORD = "correct horse battery staple"
PHONE = "+243812345678"


@pytest.fixture(scope="module")
def password_hash() -> str:
    return passwords.hash_password(PASSWORD)  # once: Argon2id is slow on purpose


@pytest.fixture(scope="module")
def own_sm():
    with LocalSecretManager("demo-otp", seed_dev_secrets=True) as sm:
        yield sm


@pytest.fixture
def iso(stack, own_sm, monkeypatch):
    """A clean database, and this module's Secret Manager with a fresh one-key pii-keyring."""
    old_key = Fernet.generate_key().decode()
    own_sm.add("pii-keyring", json.dumps({"keys": [old_key]}))
    monkeypatch.setenv("SECRET_MANAGER_EMULATOR_HOST", own_sm.host)
    runtime.reset()
    yield SimpleNamespace(sm=own_sm, old_key=old_key, old_kid=key_id(old_key), ring=Keyring([old_key]))
    runtime.reset()


def latest(sm: LocalSecretManager, secret_id: str) -> str:
    name = f"projects/{sm.project}/secrets/{secret_id}/versions/latest"
    return sm.client.access_secret_version(request={"name": name}).payload.data.decode()


def pii_for(i: int) -> dict[str, str | None]:
    return {
        "phone": f"+2438123{i:05d}",
        "address": None if i % 3 == 0 else f"{i} avenue du Commerce, Kinshasa",
        "whatsapp": None if i % 4 == 0 else f"+2129{i:08d}",
    }


def make_users(n: int, ring: Keyring, password_hash: str, prefix: str = "USR") -> list[str]:
    codes = []
    for i in range(n):
        code = f"{prefix}{i:04d}"
        users.create(code=code, email=f"{prefix.lower()}{i}@example.com", password_hash=password_hash,
                     role="user", keyring=ring, pii=pii_for(i))
        codes.append(code)
    return codes


def enc_values(code: str) -> dict[str, str]:
    data = users.get_by_code(code).data
    return {name: data[f"{name}_enc"] for name in users.PII_FIELDS if data.get(f"{name}_enc")}


def run(argv: list[str], capsys, stdin: str | None = None, monkeypatch=None) -> tuple[int, str, str]:
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = cli.main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


# -- create-user ---------------------------------------------------------------------


def test_create_user_hashes_the_password_and_encrypts_pii(stack, secret_manager, capsys, monkeypatch):
    argv = ["create-user", "--email", "Ana@Example.com", "--code", "ana0001kin", "--phone", "+243 81 234 5678",
            "--address", "12 avenue du Commerce, Kinshasa", "--whatsapp", PHONE, "--password-stdin"]
    code, out, err = run(argv, capsys, f"{PASSWORD}\n", monkeypatch)
    assert code == 0, err
    assert "created user ANA0001KIN" in out
    user = users.get_by_code("ANA0001KIN")
    assert user.email == "ana@example.com" and user.role == "user" and not user.mfa_enabled
    assert passwords.verify_password(PASSWORD, user.data["password_hash"])
    ring = Keyring.from_secret(latest(secret_manager, "pii-keyring"))
    pii, failures = users.decrypt_pii(user, ring)
    assert failures == {}
    assert pii == {"phone": PHONE, "address": "12 avenue du Commerce, Kinshasa", "whatsapp": PHONE}
    assert all(stored_kid(v) == ring.primary_kid for v in enc_values("ANA0001KIN").values())
    for secret in (PASSWORD, PHONE, "avenue"):
        assert secret not in out + err

    code, out, err = run(argv, capsys, f"{PASSWORD}\n", monkeypatch)
    assert code == 1 and "already exists" in err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--email", "not-an-email", "--code", "BAD0001"], "--email: email is not a valid address"),
        (["--email", "b@example.com", "--code", "no!"], "--code: code is not a valid user code"),
        (["--email", "b@example.com", "--code", "BAD0001", "--phone", "+2431"], "--phone:"),
        (["--email", "b@example.com", "--code", "BAD0001", "--mfa"], "--mfa needs --phone"),
    ],
)
def test_create_user_rejects_bad_input_clearly(stack, secret_manager, capsys, monkeypatch, extra, message):
    code, _, err = run(["create-user", *extra, "--password-stdin"], capsys, f"{PASSWORD}\n", monkeypatch)
    assert code == 1 and err.startswith("error: ") and message in err
    assert users.get_by_code("BAD0001") is None


def test_password_is_never_taken_from_argv(stack, capsys):
    for argv in (["--password", "hunter2hunter2"], ["--password=hunter2hunter2"], ["--pass", "hunter2hunter2"]):
        code, out, err = run(["create-user", "--email", "c@example.com", "--code", "CCC0001", *argv], capsys)
        assert code == 2 and "never taken from the command line" in err
        assert "hunter2" not in out + err
    assert users.get_by_code("CCC0001") is None
    # and argparse has no such option at all
    sub = next(a for a in cli.build_parser()._actions if a.dest == "command")
    options = {o for action in sub.choices["create-user"]._actions for o in action.option_strings}
    assert {o for o in options if "pass" in o} == {"--password-stdin"}


def test_prompt_asks_twice_and_refuses_a_mismatch(stack, secret_manager, capsys, monkeypatch):
    answers = iter(["first-password", "other-password", PASSWORD, PASSWORD])
    monkeypatch.setattr(cli.getpass, "getpass", lambda prompt="": next(answers))
    argv = ["create-user", "--email", "d@example.com", "--code", "DDD0001"]
    code, _, err = run(argv, capsys)
    assert code == 1 and "differ" in err and users.get_by_code("DDD0001") is None
    code, _, err = run(argv, capsys)
    assert code == 0, err
    assert passwords.verify_password(PASSWORD, users.get_by_code("DDD0001").data["password_hash"])


# -- bootstrap-admin ------------------------------------------------------------------


def test_bootstrap_admin_uses_the_admin_password_secret(stack, secret_manager, capsys):
    admin_password = latest(secret_manager, "admin-password")
    argv = ["bootstrap-admin", "--email", "admin@example.com", "--code", "ADM0001KIN"]
    code, out, err = run(argv, capsys)
    assert code == 0, err
    admin = users.get_by_code("ADM0001KIN")
    assert admin.role == "admin" and admin.email == "admin@example.com"
    assert passwords.verify_password(admin_password, admin.data["password_hash"])
    assert admin_password not in out + err

    code, out, _ = run(argv, capsys)  # idempotent, never overwrites
    assert code == 0 and "already exists" in out
    assert users.get_by_code("ADM0001KIN").data["password_hash"] == admin.data["password_hash"]


def test_bootstrap_admin_without_the_secret_is_a_clear_error(iso, capsys):
    iso.sm.delete("admin-password")
    try:
        code, out, err = run(["bootstrap-admin", "--email", "admin@example.com", "--code", "ADM0001KIN"], capsys)
    finally:
        iso.sm.add("admin-password", "a-new-development-admin-password")
    assert code == 1
    assert err.startswith("error: secret 'admin-password' is not available (not found): add it with ")
    assert "gcloud secrets versions add admin-password" in err
    assert users.get_by_code("ADM0001KIN") is None


# -- init ----------------------------------------------------------------------------------


def test_init_writes_the_canary_once_and_never_hides_a_mismatch(iso, capsys):
    code, out, _ = run(["init"], capsys)
    assert code == 0 and f"canary written with key {iso.old_kid}" in out
    assert users.canary_status(iso.ring) == "ok"
    code, out, _ = run(["init"], capsys)
    assert code == 0 and "nothing to do" in out

    other = Fernet.generate_key().decode()
    iso.sm.add("pii-keyring", json.dumps({"keys": [other]}))
    code, _, err = run(["init"], capsys)
    assert code == 1 and "does not decrypt" in err and iso.old_kid in err
    assert users.canary_status(iso.ring) == "ok"  # not overwritten
    code, out, _ = run(["init", "--force"], capsys)
    assert code == 0 and users.canary_status(Keyring([other])) == "ok"


# -- rotate-keys ---------------------------------------------------------------------------


def test_rotation_re_encrypts_everyone_and_says_the_old_key_is_unused(iso, password_hash, capsys):
    codes = make_users(30, iso.ring, password_hash)
    assert run(["init"], capsys)[0] == 0

    code, out, err = run(["rotate-keys", "--propagation-wait", "0"], capsys)
    assert code == 0, out + err
    ring = Keyring.from_secret(latest(iso.sm, "pii-keyring"))
    assert ring.kids[1:] == (iso.old_kid,) and ring.primary_kid != iso.old_kid
    for i, user_code in enumerate(codes):
        values = enc_values(user_code)
        assert {stored_kid(v) for v in values.values()} == {ring.primary_kid}
        pii, failures = users.decrypt_pii(users.get_by_code(user_code), ring)
        assert failures == {} and pii == pii_for(i)
    assert f"key {iso.old_kid} is no longer used by any user: it can be removed from pii-keyring" in out
    assert "30/30 users" in err  # the progress bar
    canary = store.client().document(users.CANARY_PATH).get().to_dict()
    new_key_only = Keyring(json.loads(latest(iso.sm, "pii-keyring"))["keys"][:1])
    assert canary["kid"] == ring.primary_kid and users.canary_status(new_key_only) == "ok"
    assert "gAAAA" not in out + err and "avenue" not in out + err  # no ciphertext, no plaintext


def test_rotation_loses_no_concurrent_login_update(iso, password_hash, capsys):
    codes = make_users(30, iso.ring, password_hash)
    done = threading.Event()
    increments = {c: 0 for c in codes}
    lock = threading.Lock()

    def count_failures():  # another writer of user documents (a rehash at login, say): one atomic update each
        i = 0
        while not done.is_set() or i < 2 * len(codes):
            path = f"users/{codes[i % len(codes)]}"
            store.atomic_update(
                [path],
                lambda docs, p=path: store.Plan(None, {p: {"failed_logins": docs[p].get("failed_logins", 0) + 1}}),
                max_attempts=50,
            )
            with lock:
                increments[codes[i % len(codes)]] += 1
            i += 1

    writers = [threading.Thread(target=count_failures) for _ in range(2)]
    for w in writers:
        w.start()
    try:
        result: dict = {}
        rotation = threading.Thread(
            target=lambda: result.update(code=cli.main(["rotate-keys", "--propagation-wait", "0", "--workers", "4"]))
        )
        rotation.start()
        rotation.join(30)
    finally:
        done.set()
        for w in writers:
            w.join(30)
    out, err = capsys.readouterr()
    assert result["code"] == 0, out + err
    ring = Keyring.from_secret(latest(iso.sm, "pii-keyring"))
    for i, user_code in enumerate(codes):
        user = users.get_by_code(user_code)
        assert user.data["failed_logins"] == increments[user_code]  # no update lost
        assert {stored_kid(v) for v in enc_values(user_code).values()} == {ring.primary_kid}
        assert users.decrypt_pii(user, ring) == (pii_for(i), {})
    assert sum(increments.values()) >= 4 * len(codes)


def test_rotation_is_resumable(iso, password_hash, capsys):
    codes = make_users(30, iso.ring, password_hash)
    code, out, err = run(["rotate-keys", "--propagation-wait", "0", "--batch", "10", "--workers", "2"], capsys)
    assert code == 0, out + err
    ring = Keyring.from_secret(latest(iso.sm, "pii-keyring"))
    done = [c for c in codes if {stored_kid(v) for v in enc_values(c).values()} == {ring.primary_kid}]
    assert done == codes[:10]
    assert f"key {iso.old_kid} is still used by" in out
    resume = re.search(r"--start-after (\w+)`", out).group(1)
    assert resume == codes[9]
    snaps = {c: store.client().document(f"users/{c}").get().update_time for c in done}

    code, out, err = run(["rotate-keys", "--no-add", "--propagation-wait", "0", "--start-after", resume], capsys)
    assert code == 0, out + err
    assert "of 20 users" in out and "0 users had nothing to re-encrypt" in out
    assert f"key {iso.old_kid} is no longer used by any user" in out
    assert Keyring.from_secret(latest(iso.sm, "pii-keyring")).kids == ring.kids  # --no-add added nothing
    assert {c: store.client().document(f"users/{c}").get().update_time for c in done} == snaps  # untouched

    code, out, _ = run(["rotate-keys", "--no-add", "--propagation-wait", "0"], capsys)
    assert code == 0 and "re-encrypted 0 values of 0 users" in out and "30 users had nothing to re-encrypt" in out


def test_an_undecryptable_value_is_reported_and_the_run_goes_on(iso, password_hash, capsys):
    codes = make_users(5, iso.ring, password_hash)
    foreign = Keyring([Fernet.generate_key().decode()])
    users.create(code="LOST0001", email="lost@example.com", password_hash=password_hash, role="user",
                 keyring=foreign, pii={"phone": PHONE})
    code, out, err = run(["rotate-keys", "--propagation-wait", "0"], capsys)
    assert code == 1
    assert f"cannot re-encrypt user LOST0001 field phone (key {foreign.primary_kid})" in out
    ring = Keyring.from_secret(latest(iso.sm, "pii-keyring"))
    assert all({stored_kid(v) for v in enc_values(c).values()} == {ring.primary_kid} for c in codes)
    assert f"{foreign.primary_kid}  missing" in out
    assert f"key {iso.old_kid} is no longer used by any user" in out


def add_legacy_user(code: str, token: str, password_hash: str) -> None:
    """A user whose phone is a legacy value: a bare Fernet token, without the `<kid>:` prefix."""
    users.create(code=code, email=f"{code.lower()}@example.com", password_hash=password_hash, role="user",
                 keyring=Keyring([Fernet.generate_key().decode()]), pii={})
    store.client().document(f"users/{code}").update({"phone_enc": token})


def test_the_report_finds_the_key_a_legacy_value_needs_and_keeps_it(iso, password_hash, capsys):
    make_users(4, iso.ring, password_hash)  # USR0000-3, sorted before the legacy user
    add_legacy_user("ZZZ0001", Fernet(iso.old_key).encrypt(PHONE.encode()).decode(), password_hash)
    code, out, err = run(["rotate-keys", "--propagation-wait", "0", "--batch", "4"], capsys)
    assert code == 0, out + err
    assert enc_values("ZZZ0001")["phone"].count(":") == 0  # not reached by this batch
    assert "it can be removed from pii-keyring" not in out
    assert f"key {iso.old_kid} is still used by 1 value" in out and "1 without a key id" in out


def test_the_report_advises_no_removal_while_a_value_s_key_is_unknown(iso, password_hash, capsys):
    make_users(3, iso.ring, password_hash)
    stray = Fernet(Fernet.generate_key()).encrypt(PHONE.encode()).decode()  # a key the ring never had
    add_legacy_user("ZZZ0002", stray, password_hash)
    code, out, err = run(["rotate-keys", "--propagation-wait", "0"], capsys)
    assert code == 1  # the stray value cannot be re-encrypted
    assert "it can be removed from pii-keyring" not in out
    assert "1 value has no key id and no key in pii-keyring decrypts it" in out
    assert f"key {iso.old_kid} is used by no value whose key is known" in out


def test_rotation_waits_for_running_functions_to_load_the_new_key(iso, capsys):
    started = time.monotonic()
    code, _, err = run(["rotate-keys", "--propagation-wait", "1"], capsys)
    assert code == 0 and time.monotonic() - started >= 1.0 and "waiting" in err


def test_rotation_refuses_to_run_twice_at_once_or_over_a_mismatch(iso, capsys):
    store.client().document(cli.ROTATION_LOCK_PATH).set(
        {"owner": "elsewhere:1:x", "started_at": time.time(), "expires_at": time.time() + 60}
    )
    code, _, err = run(["rotate-keys", "--propagation-wait", "0"], capsys)
    assert code == 1 and "another rotate-keys is running" in err
    store.client().document(cli.ROTATION_LOCK_PATH).delete()

    users.write_canary(Keyring([Fernet.generate_key().decode()]))
    code, _, err = run(["rotate-keys", "--propagation-wait", "0"], capsys)
    assert code == 1 and "canary does not decrypt" in err
    assert Keyring.from_secret(latest(iso.sm, "pii-keyring")).kids == (iso.old_kid,)  # no key added


# -- rotate-signing-key -----------------------------------------------------------------------


@pytest.fixture
def signing_keys(iso):
    """This module's jwt-signing-keys, put back as it was after the test."""
    before = latest(iso.sm, "jwt-signing-keys")
    yield iso.sm
    iso.sm.add("jwt-signing-keys", before)
    runtime.reset()


def kids_of(sm: LocalSecretManager) -> list[str]:
    return [k["kid"] for k in json.loads(latest(sm, "jwt-signing-keys"))["keys"]]


def signing_kid() -> str:
    runtime.reset()  # what a function instance signs with once it has refreshed the secret
    return jwt.get_unverified_header(runtime.token_signer().issue("u1"))["kid"]


def test_rotate_signing_key_publishes_the_key_then_waits_then_signs_with_it(signing_keys, capsys):
    from tests.support.apps import app_client

    (old_kid,) = kids_of(signing_keys)
    old_token = runtime.token_signer().issue("u1")
    result: dict = {}
    started = time.monotonic()
    rotation = threading.Thread(target=lambda: result.update(code=cli.main(["rotate-signing-key", "--publish-wait", "3"])))
    rotation.start()
    deadline = time.monotonic() + 20
    while len(kids_of(signing_keys)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    # Published, not signing: every verifier gets the key before any token needs it.
    published = kids_of(signing_keys)
    assert len(published) == 2 and published[0] == old_kid, published
    new_kid = published[1]
    assert signing_kid() == old_kid
    jwks = app_client("login").get("/.well-known/jwks.json").get_json()
    assert {k["kid"] for k in jwks["keys"]} == {old_kid, new_kid}
    rotation.join(30)
    out, err = capsys.readouterr()
    assert result["code"] == 0, out + err
    assert time.monotonic() - started >= 3 and "waiting" in err
    assert kids_of(signing_keys) == [new_kid, old_kid]
    assert signing_kid() == new_kid
    jwks = app_client("login").get("/.well-known/jwks.json").get_json()
    for token in (old_token, runtime.token_signer().issue("u2")):  # tokens of both keys verify
        verify_with_jwks(token, jwks, issuer="otplogin", audience="otplogin-clients")
    assert f"key {new_kid} now signs" in out and f"remove key {old_kid}" in out
    assert "PRIVATE KEY" not in out + err


def test_rotate_signing_key_resumes_a_published_key_without_adding_another(signing_keys, capsys, monkeypatch):
    from otplogin.cli import signing
    from otplogin.tokens import generate_signing_key

    real_wait = signing.wait_until

    def no_real_wait(ctx, until, renew, why):  # a wait still to come would hang the suite: fail instead
        assert until <= time.time() + 5, f"would wait {until - time.time():.0f} s"
        real_wait(ctx, until, renew, why)

    monkeypatch.setattr(signing, "wait_until", no_real_wait)
    data = json.loads(latest(signing_keys, "jwt-signing-keys"))
    old_kid = data["keys"][0]["kid"]
    pending = generate_signing_key() | {"published_at": int(time.time()) - 3600}  # published an hour ago
    signing_keys.add("jwt-signing-keys", json.dumps({"keys": [*data["keys"], pending]}))
    code, out, err = run(["rotate-signing-key", "--publish-wait", "1800"], capsys)  # its wait is over
    assert code == 0, out + err
    assert "resuming" in err and kids_of(signing_keys) == [pending["kid"], old_kid]
    code, out, err = run(["rotate-signing-key", "--publish-wait", "0"], capsys)  # a new rotation publishes anew
    assert code == 0 and len(kids_of(signing_keys)) == 3 and kids_of(signing_keys)[0] != pending["kid"]


def test_rotate_signing_key_refuses_a_malformed_secret_or_a_concurrent_run(signing_keys, capsys):
    signing_keys.add("jwt-signing-keys", json.dumps({"keys": [{"kid": "k1", "private_key_pem": "nope"}]}))
    code, _, err = run(["rotate-signing-key", "--publish-wait", "0"], capsys)
    assert code == 1 and "private_key_pem is not" in err
    assert kids_of(signing_keys) == ["k1"]  # nothing added
    store.client().document("system/jwt_rotation").set(
        {"owner": "elsewhere:1:x", "started_at": time.time(), "expires_at": time.time() + 60}
    )
    code, _, err = run(["rotate-signing-key", "--publish-wait", "0"], capsys)
    assert code == 1 and "another rotate-signing-key is running" in err


def test_the_wait_covers_the_jwks_cache_the_functions_announce():
    from otplogin import http
    from otplogin.cli import signing

    assert http.PUBLIC_CACHE == f"public, max-age={signing.JWKS_CACHE_SECONDS}"


# -- check-keys -----------------------------------------------------------------------------


def test_check_keys_reports_ok(iso, password_hash, capsys):
    make_users(12, iso.ring, password_hash)
    assert run(["init"], capsys)[0] == 0
    code, out, _ = run(["check-keys"], capsys)
    assert code == 0, out
    assert f"{iso.old_kid}  primary" in out and "canary: ok" in out and "users: 12 checked" in out
    assert re.search(r"phone\s+12\s+0\s+0", out) and out.rstrip().endswith("result: ok")
    assert "+2438123" not in out and "avenue" not in out


def test_check_keys_fails_and_names_a_missing_key(iso, password_hash, capsys):
    make_users(6, iso.ring, password_hash)
    assert run(["init"], capsys)[0] == 0
    iso.sm.add("pii-keyring", json.dumps({"keys": [Fernet.generate_key().decode()]}))  # the old key dropped
    code, out, _ = run(["check-keys", "--all"], capsys)
    assert code == 1
    assert "canary: FAILED" in out and f"key {iso.old_kid} not in pii-keyring" in out
    assert f"result: FAILED: add key(s) {iso.old_kid} back to pii-keyring" in out


def test_runs_as_a_module(stack):
    result = subprocess.run([sys.executable, "-m", "otplogin.cli", "--help"], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0 and "rotate-keys" in result.stdout


# -- set-password / delete-user / revoke-sessions: each signs the user out everywhere ---------


@pytest.fixture
def signed_in(stack, password_hash, monkeypatch):
    """A user with two sessions (refresh tokens), and a way to tell whether a token still refreshes."""
    import logging

    from otplogin.errors import InvalidGrant

    # A refused refresh logs: not into a stream an earlier test's capture closed.
    monkeypatch.setattr(logging.getLogger(), "handlers", [])

    user = users.create(code="SES0001", email="ses@example.com", password_hash=password_hash, role="user",
                        keyring=None, pii={})
    tokens = [runtime.refresh_tokens().issue(user.id, {}, user=user.code).refresh_token for _ in range(2)]

    def alive(token: str) -> bool:
        try:
            runtime.refresh_tokens().refresh(token)
        except InvalidGrant:
            return False
        return True

    time.sleep(0.01)  # revoked_before is later than the families' creation
    return SimpleNamespace(user=user, tokens=tokens, alive=alive)


def test_revoke_sessions_signs_the_user_out_everywhere(signed_in, capsys):
    code, out, _ = run(["revoke-sessions", "--email", "ses@example.com"], capsys)
    assert code == 0 and "revoked" in out
    assert not any(signed_in.alive(t) for t in signed_in.tokens)
    fresh = runtime.refresh_tokens().issue(signed_in.user.id, {}).refresh_token
    assert signed_in.alive(fresh)  # a sign-in after the revocation works
    assert run(["revoke-sessions", "--code", "NOPE0001"], capsys)[0] == 1


def test_set_password_changes_the_hash_and_revokes_every_session(signed_in, capsys, monkeypatch):
    new = "another long passphrase"
    code, _, _ = run(["set-password", "--code", "SES0001", "--password-stdin"], capsys, f"{new}\n", monkeypatch)
    assert code == 0
    assert passwords.verify_password(new, users.get_by_code("SES0001").data["password_hash"])
    assert not any(signed_in.alive(t) for t in signed_in.tokens)


def test_delete_user_removes_the_account_and_revokes_every_session(signed_in, capsys):
    assert run(["delete-user", "--email", "ses@example.com"], capsys)[0] == 0
    assert users.get_by_code("SES0001") is None and users.get_by_email("ses@example.com") is None
    assert not any(signed_in.alive(t) for t in signed_in.tokens)
