"""The real google-cloud-secret-manager client, through SecretStore, against
tools/local_secret_manager.py running as a subprocess."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
import time
import uuid

import pytest
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from google.api_core import exceptions as gexc

from otplogin.errors import SecretUnavailable
from otplogin.secrets import SecretStore, crc32c
from tests.support.secret_manager import SERVER, LocalSecretManager
from tools.dev_secrets import SECRET_IDS, generate_dev_secrets

PROJECT = "demo-otp"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def sm():
    with LocalSecretManager(project=PROJECT) as server:
        yield server


@pytest.fixture
def own_sm():
    """A server of the test's own, for tests that stop or restart it."""
    with LocalSecretManager(project=PROJECT) as server:
        yield server


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def store_for(server: LocalSecretManager, **kw) -> SecretStore:
    return SecretStore(server.project, emulator_host=server.host, **kw)


def reason_of(store: SecretStore, secret_id: str) -> str:
    with pytest.raises(SecretUnavailable) as info:
        store.get(secret_id)
    assert info.value.secret_id == secret_id
    return info.value.reason


def test_access_latest_version(sm):
    sid = unique("otp-pepper")
    sm.add(sid, "first")
    sm.add(sid, "second")
    assert store_for(sm).get(sid) == "second"
    response = sm.client.access_secret_version(request={"name": f"{sm.secret_name(sid)}/versions/latest"})
    assert response.name == f"{sm.secret_name(sid)}/versions/2"
    assert response.payload.data_crc32c == crc32c(b"second")
    old = sm.client.access_secret_version(request={"name": f"{sm.secret_name(sid)}/versions/1"})
    assert old.payload.data == b"first"


def test_new_version_is_served_after_refresh(sm):
    sid = unique("pii-keyring")
    sm.add(sid, "v1")
    clock = Clock()
    store = store_for(sm, clock=clock, refresh_seconds=300)
    assert store.get(sid) == "v1"
    sm.add(sid, "v2")
    assert store.get(sid) == "v1"  # cached until the refresh is due
    clock.now += 300
    assert store.get(sid) == "v2"


def test_disabled_latest_is_unavailable_even_with_older_enabled_version(sm):
    sid = unique("jwt-signing-keys")
    sm.add(sid, "good")
    sm.add(sid, "bad")
    disabled = sm.disable_latest(sid)
    assert disabled.endswith("/versions/2")
    # Like the real API, `latest` is the newest version whatever its state.
    assert reason_of(store_for(sm), sid) == "disabled"
    sm.client.enable_secret_version(request={"name": disabled})
    assert store_for(sm).get(sid) == "bad"


def test_destroyed_version_is_unavailable_and_cannot_be_enabled(sm):
    sid = unique("twilio-auth-token")
    name = sm.add(sid, "token")
    sm.client.destroy_secret_version(request={"name": name})
    assert reason_of(store_for(sm), sid) == "destroyed"
    with pytest.raises(gexc.FailedPrecondition):
        sm.client.enable_secret_version(request={"name": name})


def test_missing_deleted_and_versionless_secrets_are_not_found(sm):
    store = store_for(sm)
    assert reason_of(store, unique("never-created")) == "not found"

    deleted = unique("deleted")
    sm.add(deleted, "x")
    sm.delete(deleted)
    assert reason_of(store, deleted) == "not found"

    empty = unique("no-versions")
    sm.client.create_secret(
        request={"parent": f"projects/{PROJECT}", "secret_id": empty, "secret": {"replication": {"automatic": {}}}}
    )
    assert reason_of(store, empty) == "not found"

    sid = unique("other-project")
    sm.add(sid, "x")
    assert reason_of(SecretStore("another-project", emulator_host=sm.host), sid) == "not found"


def test_empty_value_is_reported(sm):
    sid = unique("twilio-sender")
    sm.add(sid, "")
    assert reason_of(store_for(sm), sid) == "empty"


def test_admin_api_behaves_like_the_real_one(sm):
    sid = unique("admin")
    sm.add(sid, "a")
    with pytest.raises(gexc.AlreadyExists):
        sm.client.create_secret(
            request={"parent": f"projects/{PROJECT}", "secret_id": sid, "secret": {"replication": {"automatic": {}}}}
        )
    with pytest.raises(gexc.InvalidArgument):  # replication is required
        sm.client.create_secret(request={"parent": f"projects/{PROJECT}", "secret_id": unique("r"), "secret": {}})
    with pytest.raises(gexc.NotFound):
        sm.client.add_secret_version(request={"parent": sm.secret_name(unique("nope")), "payload": {"data": b"x"}})
    with pytest.raises(gexc.InvalidArgument):  # a corrupted upload is refused
        sm.client.add_secret_version(
            request={"parent": sm.secret_name(sid), "payload": {"data": b"x", "data_crc32c": crc32c(b"y")}}
        )
    with pytest.raises(gexc.InvalidArgument):
        sm.client.add_secret_version(request={"parent": sm.secret_name(sid), "payload": {"data": b"x" * 65537}})
    sm.add(sid, "b")
    sm.add(sid, "c")
    versions = list(sm.client.list_secret_versions(request={"parent": sm.secret_name(sid), "page_size": 2}))
    assert [v.name.rsplit("/", 1)[1] for v in versions] == ["3", "2", "1"]  # newest first, across pages

    secret = sm.client.get_secret(request={"name": sm.secret_name(sid)})
    assert secret.name == sm.secret_name(sid) and secret.create_time.year >= 2024

    project = unique("listing")
    server_ids = [unique("s") for _ in range(5)]
    for s in server_ids:
        sm.client.create_secret(
            request={"parent": f"projects/{project}", "secret_id": s, "secret": {"replication": {"automatic": {}}}}
        )
    listed = sm.client.list_secrets(request={"parent": f"projects/{project}", "page_size": 2})
    assert sorted(x.name.rsplit("/", 1)[1] for x in listed) == sorted(server_ids)


def test_stopped_server_is_unreachable_within_seconds_and_cache_survives(own_sm, caplog):
    sid = unique("otp-pepper")
    own_sm.add(sid, "cached")
    clock = Clock()
    warm = store_for(own_sm, clock=clock, refresh_seconds=60, timeout=1.0)
    assert warm.get(sid) == "cached"
    own_sm.stop()
    assert own_sm.returncode == 0  # SIGTERM: clean shutdown

    cold = store_for(own_sm)  # the production defaults: timeout 5 s
    started = time.monotonic()
    assert reason_of(cold, sid) == "unreachable"
    elapsed = time.monotonic() - started
    assert elapsed < 8, f"took {elapsed:.1f} s"
    assert store_for(own_sm, timeout=1.0).check([sid]) == {sid: "unreachable"}

    clock.now += 60
    assert warm.get(sid) == "cached"  # refresh failed: the cached value is still served
    assert any(r.name == "otplogin.secrets" and r.levelname == "WARNING" for r in caplog.records)


def test_restarted_server_recovers_with_same_secrets(own_sm):
    sid = unique("otp-pepper")
    own_sm.add(sid, "persisted")
    store = store_for(own_sm, timeout=1.0)
    own_sm.stop()
    outage = time.monotonic()
    while time.monotonic() - outage < 6:  # an outage of several failed fetches
        assert reason_of(store, sid) == "unreachable"
    port = own_sm.port
    own_sm.restart()
    assert own_sm.port == port
    # Same store, same channel: it must reconnect at once, not after gRPC's
    # default reconnect backoff (which has grown to several seconds by now).
    restarted = time.monotonic()
    while True:
        try:
            assert store.get(sid) == "persisted"  # the state file kept the secret
            break
        except SecretUnavailable:
            assert time.monotonic() - restarted < 1.5, "no reconnection after restart"
            time.sleep(0.1)
    own_sm.add(sid, "after-restart")  # the admin client reconnects too
    assert store_for(own_sm).get(sid) == "after-restart"


def test_second_server_on_a_taken_port_fails(sm):
    proc = subprocess.run(
        [sys.executable, str(SERVER), "--host", "127.0.0.1", "--port", str(sm.port)],
        check=False, capture_output=True, text=True, timeout=30,
    )
    assert proc.returncode != 0
    assert "READY" not in proc.stdout


def check_dev_secret_formats(values: dict[str, str]) -> None:
    assert set(values) == set(SECRET_IDS)
    assert len(base64.urlsafe_b64decode(values["otp-pepper"] + "==")) >= 32

    jwt = json.loads(values["jwt-signing-keys"])
    [key] = jwt["keys"]
    assert re.fullmatch(r"dev-[0-9a-f]{8}", key["kid"])
    assert key["private_key_pem"].startswith("-----BEGIN PRIVATE KEY-----")  # PKCS8
    private = load_pem_private_key(key["private_key_pem"].encode(), password=None)
    assert isinstance(private, Ed25519PrivateKey)
    private.public_key().verify(private.sign(b"msg"), b"msg")

    [fernet_key] = json.loads(values["pii-keyring"])["keys"]
    fernet = Fernet(fernet_key.encode())
    assert fernet.decrypt(fernet.encrypt(b"+243812345678")) == b"+243812345678"

    assert re.fullmatch(r"AC[0-9a-f]{32}", values["twilio-account-sid"])
    assert re.fullmatch(r"[0-9a-f]{32}", values["twilio-auth-token"])
    assert values["twilio-sender"] == "+15005550006"
    assert re.fullmatch(r"[A-Za-z0-9_-]{24}", values["admin-password"])


def test_dev_secrets_have_documented_formats_and_are_fresh():
    first, second = generate_dev_secrets(), generate_dev_secrets()
    check_dev_secret_formats(first)
    for sid in SECRET_IDS:
        if sid != "twilio-sender":
            assert first[sid] != second[sid], sid


def test_seeded_server_serves_every_dev_secret():
    with LocalSecretManager(project=PROJECT, seed_dev_secrets=True) as seeded:
        store = store_for(seeded)
        assert store.check(SECRET_IDS) == {sid: "ok" for sid in SECRET_IDS}
        values = {sid: store.get(sid) for sid in SECRET_IDS}
        check_dev_secret_formats(values)
        seeded.restart()  # state file: seeding leaves existing secrets alone
        assert {sid: store_for(seeded).get(sid) for sid in SECRET_IDS} == values
