"""Secret Manager client: fetch once per instance, cache, refresh on a schedule.

Secrets come only from Secret Manager (`.../versions/latest`): never from
environment variables, never from defaults. A secret that cannot be read
raises `SecretUnavailable(secret_id, reason)`, where the reason is a short
phrase ("not found", "permission denied", "disabled", "unreachable", "empty",
...) and never contains the value.

Parsing: `validators` maps a secret id to a function that raises `ValueError`
(with a message that never quotes the value) when the value is not usable. A
value that does not parse is treated like a failed fetch (reason
"malformed: ..."), so it never replaces a good cached value and never reaches
the code that would turn it into a 500.

Caching: each value is fetched once per `SecretStore` and refetched after
`refresh_seconds`. A refresh that fails for any reason (unreachable, a new
version that does not parse, a client bug) keeps serving the cached value (and
logs a WARNING), retrying at most every `failure_retry_seconds`; `check`
still reports it, since a new instance would have no cached value to serve.
Concurrent callers share one fetch per secret (single flight): while a
refresh is in flight, other threads get the cached value without waiting.

The client is created lazily, on the first fetch. With
`SECRET_MANAGER_EMULATOR_HOST=host:port` it talks plain gRPC to that server
(`tools/local_secret_manager.py`) with anonymous credentials; otherwise it
uses Application Default Credentials.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from msgspec import Struct, field

from otplogin.errors import SecretUnavailable, Unavailable

__all__ = ["SecretStore", "crc32c", "default_store", "make_client", "reset_default_store"]

log = logging.getLogger("otplogin.secrets")

EMULATOR_ENV = "SECRET_MANAGER_EMULATOR_HOST"
PROJECT_ENV = "GOOGLE_CLOUD_PROJECT"

# Short reconnect backoff for the local server: after it restarts, the channel
# must come back within the retry budget of one fetch, not after gRPC's
# default backoff (which grows to 120 s).
_EMULATOR_CHANNEL_OPTIONS = (
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 500),
)


def make_client(emulator_host: str | None = None) -> Any:
    """Build a `SecretManagerServiceClient`: plain gRPC to `emulator_host` if given, else ADC."""
    from google.cloud import secretmanager_v1

    if not emulator_host:
        return secretmanager_v1.SecretManagerServiceClient()

    import grpc
    from google.auth.credentials import AnonymousCredentials
    from google.cloud.secretmanager_v1.services.secret_manager_service.transports import (
        SecretManagerServiceGrpcTransport,
    )

    channel = grpc.insecure_channel(emulator_host, options=_EMULATOR_CHANNEL_OPTIONS)
    credentials = AnonymousCredentials()  # type: ignore[no-untyped-call]  # google-auth leaves __init__ unannotated
    transport = SecretManagerServiceGrpcTransport(channel=channel, credentials=credentials)
    return secretmanager_v1.SecretManagerServiceClient(transport=transport)


def _crc32c_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC32C_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC32C (Castagnoli) of `data`, as Secret Manager's `data_crc32c`. Payloads are <= 64 KiB."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = (crc >> 8) ^ _CRC32C_TABLE[(crc ^ byte) & 0xFF]
    return crc ^ 0xFFFFFFFF


def _reason(exc: Exception) -> str:
    """A short phrase for a failed access: never the value, never a stack trace."""
    from google.api_core import exceptions as gexc
    from google.auth import exceptions as auth_exc

    if isinstance(exc, gexc.NotFound):
        return "not found"
    if isinstance(exc, gexc.PermissionDenied):
        return "permission denied"
    if isinstance(exc, gexc.Unauthenticated):
        return "unauthenticated"
    if isinstance(exc, gexc.FailedPrecondition):
        # "Secret Version [...] is in DISABLED state." / "... DESTROYED state."
        return "destroyed" if "DESTROYED" in str(exc.message) else "disabled"
    if isinstance(exc, (gexc.ServiceUnavailable, gexc.DeadlineExceeded, gexc.RetryError)):
        return "unreachable"
    if isinstance(exc, auth_exc.DefaultCredentialsError):
        return "no credentials"
    if isinstance(exc, auth_exc.GoogleAuthError):
        return "credentials error"
    if isinstance(exc, gexc.GoogleAPICallError):
        return f"api error ({type(exc).__name__})"
    return f"client error ({type(exc).__name__})"


class _Flight(Struct):
    """One fetch in progress; threads that need the value and have none wait on it."""

    done: threading.Event = field(default_factory=threading.Event)
    value: str | None = None
    reason: str | None = None


class _Entry(Struct):
    value: str | None = None
    next_fetch: float = 0.0
    flight: _Flight | None = None
    refresh_error: str | None = None  # why the last refresh failed while `value` was served


class SecretStore:
    """Read-through cache of the latest enabled version of each secret of one project."""

    def __init__(
        self,
        project: str,
        *,
        client: Any = None,
        refresh_seconds: float = 300,
        failure_retry_seconds: float = 30,
        clock: Callable[[], float] = time.monotonic,
        timeout: float = 5.0,
        emulator_host: str | None = None,
        validators: Mapping[str, Callable[[str], object]] | None = None,
    ) -> None:
        if not project:
            raise ValueError("project is required")
        self.project = project
        self._client = client
        self._emulator_host = emulator_host
        self._refresh = float(refresh_seconds)
        self._failure_retry = min(float(failure_retry_seconds), self._refresh)
        self._clock = clock
        self._timeout = float(timeout)
        self._lock = threading.Lock()  # guards _entries; never held during network calls
        self._client_lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}
        self._validators = dict(validators or {})

    def get(self, secret_id: str) -> str:
        """The secret's value (cached); raises `SecretUnavailable` if it has none to serve."""
        with self._lock:
            entry = self._entries.setdefault(secret_id, _Entry())
            if entry.value is not None and (
                self._clock() < entry.next_fetch or entry.flight is not None
            ):
                return entry.value  # fresh, or stale while another thread refreshes it
            flight, leader = entry.flight, entry.flight is None
            if leader:
                flight = entry.flight = _Flight()
        if flight is None:  # unreachable: the leader always sets it
            raise RuntimeError("no fetch in flight")
        if not leader:
            # Bounded by the leader's own timeout; the margin covers a slow client.
            if not flight.done.wait(self._timeout * 2 + 5):
                raise SecretUnavailable(secret_id, "unreachable")
            if flight.value is None:
                raise SecretUnavailable(secret_id, flight.reason or "unreachable")
            return flight.value
        return self._lead_fetch(secret_id, entry, flight)

    def cached(self) -> list[str]:
        """The ids of the secrets holding a value: each is refetched at most once per refresh period."""
        with self._lock:
            return sorted(k for k, e in self._entries.items() if e.value is not None)

    @property
    def refresh_seconds(self) -> float:
        return self._refresh

    def check(self, secret_ids: Iterable[str]) -> dict[str, str]:
        """For health checks: {secret_id: "ok" | reason}. Never returns a value.

        A secret whose latest version does not parse is not "ok" even while its
        previous value is served: an instance starting now would have none."""
        result = {}
        for secret_id in secret_ids:
            try:
                self.get(secret_id)
            except SecretUnavailable as exc:
                result[secret_id] = exc.reason
                continue
            with self._lock:
                stale = self._entries[secret_id].refresh_error
            if stale and stale.startswith("malformed"):
                result[secret_id] = f"{stale} (serving the previous value)"
            else:
                result[secret_id] = "ok"
        return result

    def _lead_fetch(self, secret_id: str, entry: _Entry, flight: _Flight) -> str:
        try:
            value, reason = self._fetch(secret_id), None
        except SecretUnavailable as exc:
            value, reason = None, exc.reason
        except Exception as exc:  # a client bug: still a 503 naming the secret, and the cached value holds
            value, reason = None, f"client error ({type(exc).__name__})"
        except BaseException:
            value, reason = None, "client error"
            raise
        finally:
            with self._lock:
                entry.flight = None
                now = self._clock()
                if value is not None:
                    entry.value, entry.next_fetch, entry.refresh_error = value, now + self._refresh, None
                elif entry.value is not None:
                    entry.next_fetch, entry.refresh_error = now + self._failure_retry, reason
                    log.warning(
                        "secret %r refresh failed (%s); serving the cached value, next try in %.0f s",
                        secret_id, reason, self._failure_retry,
                    )
                    value = entry.value
                flight.value, flight.reason = value, reason
            flight.done.set()
        if value is None:
            raise SecretUnavailable(secret_id, reason or "unreachable")
        return value

    def _get_client(self) -> Any:
        with self._client_lock:
            if self._client is None:
                self._client = make_client(self._emulator_host)
            return self._client

    def _fetch(self, secret_id: str) -> str:
        """One read of `.../versions/latest`, bounded to `timeout` seconds in all."""
        from google.api_core import exceptions as gexc
        from google.api_core import retry as gretry
        from google.auth import exceptions as auth_exc

        name = f"projects/{self.project}/secrets/{secret_id}/versions/latest"
        retry = gretry.Retry(
            initial=0.2,
            maximum=1.0,
            multiplier=2.0,
            predicate=gretry.if_exception_type(gexc.ServiceUnavailable, gexc.ResourceExhausted),
            timeout=self._timeout,
        )
        try:
            response = self._get_client().access_secret_version(
                request={"name": name}, retry=retry, timeout=self._timeout
            )
        except (gexc.GoogleAPIError, auth_exc.GoogleAuthError) as exc:  # API, retry and credential errors
            raise SecretUnavailable(secret_id, _reason(exc)) from None
        payload = response.payload
        data = bytes(payload.data)
        if "data_crc32c" in payload and payload.data_crc32c != crc32c(data):
            raise SecretUnavailable(secret_id, "checksum mismatch")
        try:
            value = data.decode("utf-8")
        except UnicodeDecodeError:
            raise SecretUnavailable(secret_id, "not UTF-8 text") from None
        if not value.strip():
            raise SecretUnavailable(secret_id, "empty")
        validate = self._validators.get(secret_id)
        if validate is not None:
            try:
                validate(value)
            except ValueError as exc:  # validators' messages name positions and kids, never the value
                raise SecretUnavailable(secret_id, f"malformed: {exc}") from None
            except Exception as exc:
                raise SecretUnavailable(secret_id, f"malformed ({type(exc).__name__})") from None
        return value


_default: SecretStore | None = None
_default_lock = threading.Lock()


def default_store() -> SecretStore:
    """The process-wide store, built on first use from `GOOGLE_CLOUD_PROJECT` and
    `SECRET_MANAGER_EMULATOR_HOST`. No network until the first `get`."""
    global _default
    with _default_lock:
        if _default is None:
            project = os.environ.get(PROJECT_ENV, "").strip()
            if not project:
                raise Unavailable(f"{PROJECT_ENV} is not set: cannot locate Secret Manager secrets.")
            _default = SecretStore(project, emulator_host=os.environ.get(EMULATOR_ENV, "").strip() or None)
        return _default


def reset_default_store() -> None:
    """Forget the process-wide store (tests, or after changing the environment)."""
    global _default
    with _default_lock:
        _default = None
