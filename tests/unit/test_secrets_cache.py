"""SecretStore caching, refresh and failure behaviour, with a fake Secret Manager client."""

from __future__ import annotations

import logging
import threading
import time

import pytest
from google.api_core import exceptions as gexc
from google.auth import exceptions as auth_exc
from google.cloud.secretmanager_v1 import types as t

from otplogin import secrets as secrets_mod
from otplogin.errors import SecretUnavailable, Unavailable
from otplogin.secrets import SecretStore, crc32c

PROJECT = "test-project"


def latest(secret_id: str) -> str:
    return f"projects/{PROJECT}/secrets/{secret_id}/versions/latest"


class FakeClient:
    """Answers access_secret_version from `results[secret_id]`: a str, bytes, an exception,
    or a list of those consumed one per call. Optionally blocks until `release` is set."""

    def __init__(self, **results):
        self.results = {k.replace("_", "-"): v for k, v in results.items()}
        self.calls: list[dict] = []
        self.release: threading.Event | None = None
        self.entered = threading.Event()
        self._lock = threading.Lock()

    def access_secret_version(self, request, retry=None, timeout=None):
        with self._lock:
            self.calls.append({"name": request["name"], "retry": retry, "timeout": timeout})
        self.entered.set()
        if self.release is not None:
            assert self.release.wait(10), "test never released the fake client"
        secret_id = request["name"].split("/")[3]
        result = self.results[secret_id]
        if isinstance(result, list):
            result = result.pop(0)
        if isinstance(result, BaseException):
            raise result
        data = result.encode() if isinstance(result, str) else result
        return t.AccessSecretVersionResponse(
            name=request["name"], payload=t.SecretPayload(data=data, data_crc32c=crc32c(data))
        )


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_store(client, clock=None, **kw) -> SecretStore:
    return SecretStore(PROJECT, client=client, clock=clock or Clock(), **kw)


def test_fetches_latest_once_then_serves_from_cache():
    client = FakeClient(otp_pepper="pepper-1")
    store = make_store(client)
    assert store.get("otp-pepper") == "pepper-1"
    assert store.get("otp-pepper") == "pepper-1"
    assert [c["name"] for c in client.calls] == [latest("otp-pepper")]


def test_each_call_is_bounded_by_timeout_and_retry_deadline():
    client = FakeClient(otp_pepper="p")
    make_store(client, timeout=2.5).get("otp-pepper")
    call = client.calls[0]
    assert call["timeout"] == 2.5
    assert call["retry"] is not None and call["retry"].timeout == 2.5
    assert call["retry"]._predicate(gexc.ServiceUnavailable("down"))
    assert not call["retry"]._predicate(gexc.NotFound("gone"))


def test_refetches_after_refresh_seconds():
    clock = Clock()
    client = FakeClient(otp_pepper=["v1", "v2"])
    store = make_store(client, clock, refresh_seconds=300)
    assert store.get("otp-pepper") == "v1"
    clock.now += 299.9
    assert store.get("otp-pepper") == "v1"
    assert len(client.calls) == 1
    clock.now += 0.1
    assert store.get("otp-pepper") == "v2"
    assert len(client.calls) == 2
    clock.now += 299
    assert store.get("otp-pepper") == "v2"
    assert len(client.calls) == 2


def test_cached_lists_only_secrets_holding_a_value_and_the_refresh_period():
    client = FakeClient(otp_pepper="p", pii_keyring=gexc.NotFound("missing"))
    store = make_store(client, refresh_seconds=120)
    assert store.cached() == []
    store.get("otp-pepper")
    with pytest.raises(SecretUnavailable):
        store.get("pii-keyring")
    assert store.cached() == ["otp-pepper"]
    assert store.refresh_seconds == 120


def test_failed_refresh_serves_cached_value_and_warns_without_value(caplog):
    clock = Clock()
    client = FakeClient(otp_pepper=["secret-v1", gexc.ServiceUnavailable("down"), "secret-v2"])
    store = make_store(client, clock, refresh_seconds=300, failure_retry_seconds=30)
    assert store.get("otp-pepper") == "secret-v1"
    clock.now += 300
    with caplog.at_level(logging.WARNING, logger="otplogin.secrets"):
        assert store.get("otp-pepper") == "secret-v1"
    assert len(client.calls) == 2
    [record] = [r for r in caplog.records if r.name == "otplogin.secrets"]
    assert record.levelno == logging.WARNING
    assert "otp-pepper" in record.getMessage() and "unreachable" in record.getMessage()
    assert "secret-v1" not in record.getMessage()

    clock.now += 29  # no retry storm: the next attempt waits failure_retry_seconds
    assert store.get("otp-pepper") == "secret-v1"
    assert len(client.calls) == 2
    clock.now += 1
    assert store.get("otp-pepper") == "secret-v2"
    assert len(client.calls) == 3


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (gexc.NotFound("Secret [x] not found or has no versions."), "not found"),
        (gexc.PermissionDenied("denied"), "permission denied"),
        (gexc.Unauthenticated("no token"), "unauthenticated"),
        (gexc.FailedPrecondition("Secret Version [x/versions/2] is in DISABLED state."), "disabled"),
        (gexc.FailedPrecondition("Secret Version [x/versions/2] is in DESTROYED state."), "destroyed"),
        (gexc.ServiceUnavailable("connection refused"), "unreachable"),
        (gexc.DeadlineExceeded("too slow"), "unreachable"),
        (gexc.RetryError("gave up", cause=gexc.ServiceUnavailable("x")), "unreachable"),
        (auth_exc.DefaultCredentialsError("no ADC"), "no credentials"),
        (auth_exc.RefreshError("token refresh failed"), "credentials error"),
    ],
)
def test_without_cached_value_errors_raise_secret_unavailable_with_reason(error, reason):
    store = make_store(FakeClient(pii_keyring=error))
    with pytest.raises(SecretUnavailable) as info:
        store.get("pii-keyring")
    assert info.value.secret_id == "pii-keyring"
    assert info.value.reason == reason
    assert str(info.value) == f"secret 'pii-keyring' unavailable: {reason}"
    # The client's exception is not chained: tracebacks show the reason, nothing more.
    assert info.value.__cause__ is None
    assert info.value.__context__ is None or info.value.__suppress_context__
    assert info.value.status == 503 and info.value.code == "unavailable"


def test_failure_is_not_cached_without_value():
    client = FakeClient(otp_pepper=[gexc.NotFound("missing"), "added-later"])
    store = make_store(client)
    with pytest.raises(SecretUnavailable):
        store.get("otp-pepper")
    assert store.get("otp-pepper") == "added-later"


@pytest.mark.parametrize(("payload", "reason"), [(b"", "empty"), (b"  \n", "empty"), (b"\xff\xfe", "not UTF-8 text")])
def test_unusable_payloads(payload, reason):
    store = make_store(FakeClient(otp_pepper=payload))
    with pytest.raises(SecretUnavailable, match=reason):
        store.get("otp-pepper")


def test_checksum_mismatch_is_reported_without_the_value():
    class CorruptingClient(FakeClient):
        def access_secret_version(self, request, retry=None, timeout=None):
            response = super().access_secret_version(request, retry, timeout)
            response.payload.data_crc32c ^= 1
            return response

    store = make_store(CorruptingClient(otp_pepper="do-not-leak-me"))
    with pytest.raises(SecretUnavailable) as info:
        store.get("otp-pepper")
    assert info.value.reason == "checksum mismatch"
    assert "do-not-leak-me" not in str(info.value) and "do-not-leak-me" not in repr(info.value.__dict__)


def test_payload_without_checksum_is_accepted():
    class NoCrcClient(FakeClient):
        def access_secret_version(self, request, retry=None, timeout=None):
            self.calls.append(request)
            return t.AccessSecretVersionResponse(payload=t.SecretPayload(data=b"plain"))

    assert make_store(NoCrcClient()).get("otp-pepper") == "plain"


def test_check_reports_status_per_secret_and_no_values():
    store = make_store(FakeClient(otp_pepper="hunter2", pii_keyring=gexc.PermissionDenied("no")))
    assert store.check(["otp-pepper", "pii-keyring"]) == {"otp-pepper": "ok", "pii-keyring": "permission denied"}


def run_threads(n, target):
    results: list = [None] * n

    def run(i):
        try:
            results[i] = target()
        except Exception as exc:  # noqa: BLE001 - collected for the assertions
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for th in threads:
        th.start()
    return threads, results


def test_concurrent_first_reads_share_one_fetch():
    client = FakeClient(otp_pepper="shared")
    client.release = threading.Event()
    store = make_store(client)
    threads, results = run_threads(10, lambda: store.get("otp-pepper"))
    assert client.entered.wait(5)
    time.sleep(0.2)  # let every thread reach the store while the fetch is blocked
    client.release.set()
    for th in threads:
        th.join(10)
    assert results == ["shared"] * 10
    assert len(client.calls) == 1


def test_concurrent_first_reads_share_one_failure():
    client = FakeClient(otp_pepper=gexc.NotFound("missing"))
    client.release = threading.Event()
    store = make_store(client)
    threads, results = run_threads(8, lambda: store.get("otp-pepper"))
    assert client.entered.wait(5)
    time.sleep(0.2)
    client.release.set()
    for th in threads:
        th.join(10)
    assert all(isinstance(r, SecretUnavailable) and r.reason == "not found" for r in results), results
    assert len(client.calls) == 1


def test_stale_value_served_without_waiting_while_one_thread_refreshes():
    clock = Clock()
    client = FakeClient(otp_pepper=["old", "new"])
    store = make_store(client, clock, refresh_seconds=60)
    assert store.get("otp-pepper") == "old"
    clock.now += 61
    client.release = threading.Event()
    leader, leader_result = run_threads(1, lambda: store.get("otp-pepper"))
    assert client.entered.wait(5)
    # While the refresh is blocked, other readers get the stale value at once.
    others, other_results = run_threads(5, lambda: store.get("otp-pepper"))
    for th in others:
        th.join(5)
        assert not th.is_alive()
    assert other_results == ["old"] * 5
    client.release.set()
    leader[0].join(10)
    assert leader_result == ["new"]
    assert store.get("otp-pepper") == "new"
    assert len(client.calls) == 2


def test_default_store_is_lazy_singleton_from_env(monkeypatch):
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "env-project")
    monkeypatch.setenv("SECRET_MANAGER_EMULATOR_HOST", "127.0.0.1:1")  # nothing listens: must not matter yet
    secrets_mod.reset_default_store()
    try:
        store = secrets_mod.default_store()
        assert store is secrets_mod.default_store()
        assert store.project == "env-project"
        assert store._client is None  # no client, no connection until the first get
    finally:
        secrets_mod.reset_default_store()


def test_default_store_requires_project(monkeypatch):
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT", raising=False)
    secrets_mod.reset_default_store()
    try:
        with pytest.raises(Unavailable, match="GOOGLE_CLOUD_PROJECT"):
            secrets_mod.default_store()
    finally:
        secrets_mod.reset_default_store()


def test_environment_values_are_never_used(monkeypatch):
    monkeypatch.setenv("OTP_PEPPER", "from-env")
    monkeypatch.setenv("otp-pepper", "from-env")
    store = make_store(FakeClient(otp_pepper=gexc.NotFound("missing")))
    with pytest.raises(SecretUnavailable, match="not found"):
        store.get("otp-pepper")


def test_crc32c_known_vector():
    assert crc32c(b"123456789") == 0xE3069283  # the CRC-32C check value
    assert crc32c(b"") == 0


def test_unexpected_client_bug_is_unavailable_and_does_not_wedge_the_secret():
    client = FakeClient(otp_pepper=[TypeError("bug in client"), "recovered"])
    store = make_store(client)
    with pytest.raises(SecretUnavailable) as info:  # a 503 naming the secret, not a 500
        store.get("otp-pepper")
    assert info.value.reason == "client error (TypeError)"
    assert store.get("otp-pepper") == "recovered"  # no fetch left "in flight" forever


def test_any_refresh_error_serves_the_cached_value():
    clock = Clock()
    client = FakeClient(otp_pepper=["v1", TypeError("bug in client"), "v2"])
    store = make_store(client, clock, refresh_seconds=60, failure_retry_seconds=10)
    assert store.get("otp-pepper") == "v1"
    clock.now += 60
    assert store.get("otp-pepper") == "v1"
    clock.now += 10
    assert store.get("otp-pepper") == "v2"


def reject_bad(value: str) -> None:
    if value.startswith("bad"):
        raise ValueError("expected a good value")


def test_a_value_that_does_not_parse_is_unavailable_and_never_shown():
    store = make_store(FakeClient(jwt_signing_keys="bad-private-material"), validators={"jwt-signing-keys": reject_bad})
    with pytest.raises(SecretUnavailable) as info:
        store.get("jwt-signing-keys")
    assert info.value.reason == "malformed: expected a good value"
    assert "private-material" not in str(info.value)
    assert store.check(["jwt-signing-keys"]) == {"jwt-signing-keys": "malformed: expected a good value"}


def test_a_new_value_that_does_not_parse_keeps_the_last_good_one(caplog):
    clock = Clock()
    client = FakeClient(jwt_signing_keys=["good-1", "bad-2", "bad-2", "good-3"])
    store = make_store(client, clock, refresh_seconds=60, failure_retry_seconds=10,
                       validators={"jwt-signing-keys": reject_bad})
    assert store.get("jwt-signing-keys") == "good-1"
    clock.now += 60
    with caplog.at_level(logging.WARNING, logger="otplogin.secrets"):
        assert store.get("jwt-signing-keys") == "good-1"
    assert "malformed" in caplog.text and "bad-2" not in caplog.text
    # Served, but not healthy: an instance starting now would have no value at all.
    clock.now += 10
    assert store.check(["jwt-signing-keys"]) == {
        "jwt-signing-keys": "malformed: expected a good value (serving the previous value)"
    }
    clock.now += 10
    assert store.get("jwt-signing-keys") == "good-3"
    assert store.check(["jwt-signing-keys"]) == {"jwt-signing-keys": "ok"}


def test_a_validator_bug_is_reported_by_type_only():
    def broken(value: str) -> None:
        raise KeyError(value)

    store = make_store(FakeClient(otp_pepper="do-not-leak-me"), validators={"otp-pepper": broken})
    with pytest.raises(SecretUnavailable) as info:
        store.get("otp-pepper")
    assert info.value.reason == "malformed (KeyError)"
