"""Process-wide services, built lazily on first use and kept for the instance.

Nothing here runs at import: clients, channels and secrets are made by the
first request. What the requests will import is imported earlier, when
main.py loads (`load_before_fork`). Values that depend on secrets are rebuilt
when the secret's cached value changes (rotation), never per request.
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from otplogin import log, store
from otplogin.config import settings
from otplogin.errors import SecretUnavailable
from otplogin.otp import OtpService
from otplogin.sms import SmsSender

if TYPE_CHECKING:  # imported lazily below: each function loads only what it uses
    from otplogin.keyring import Keyring
    from otplogin.refresh import RefreshTokens
    from otplogin.secrets import SecretStore
    from otplogin.signin import SignIn
    from otplogin.tokens import TokenSigner

T = TypeVar("T")

# Secret Manager secret ids (names, never values).
OTP_PEPPER = "otp-pepper"
JWT_SIGNING_KEYS = "jwt-signing-keys"
PII_KEYRING = "pii-keyring"
TWILIO_SECRETS = ("twilio-account-sid", "twilio-auth-token", "twilio-sender")
ADMIN_PASSWORD = "admin-password"  # noqa: S105 (a secret id)

# What a function's requests use beyond Firestore and Secret Manager (which every function uses).
Uses = Literal["phones", "tokens", "sms", "sign_in"]
_MODULES: dict[str, tuple[str, ...]] = {
    "always": ("otplogin.secrets", "google.cloud.firestore", "google.cloud.secretmanager_v1"),  # store: above
    "phones": ("phonenumbers",),
    "tokens": ("otplogin.tokens", "otplogin.refresh"),
    "sms": ("otplogin.sms.twilio", "otplogin.sms.dev_outbox"),
    "sign_in": ("otplogin.signin", "otplogin.keyring", "otplogin.passwords"),
}


def load_before_fork(*uses: Uses) -> None:
    """Import now, while main.py loads, every library a function's first request would import.

    functions-framework loads main.py in gunicorn's master process, then forks the worker
    that serves: an import left to the first request runs in the forked worker, where it
    costs more than half again as much (verify_otp's first request: ~260 ms of imports
    there, ~160 ms in a fresh process; bench/README.md). Kept so by
    tests/integration/test_first_request_imports.py.
    Only imports: a client, a gRPC channel or a secret is still made by the first request,
    in the worker, since a channel must not cross a fork."""
    for name in ("always", *uses):
        for module in _MODULES[name]:
            importlib.import_module(module)


_lock = threading.Lock()
_built: dict[str, tuple[Any, Any]] = {}


def _memo(name: str, key: object, build: Callable[[], T]) -> T:
    """Keep one `name` per distinct `key` (a secret's value): rebuilt on rotation."""
    cached = _built.get(name)
    if cached is not None and cached[0] == key:
        return cached[1]  # type: ignore[no-any-return]  # stored by this function with the same name
    with _lock:
        value = build()
        _built[name] = (key, value)
        return value


def reset() -> None:
    """Forget every service (tests re-point the process at new emulators)."""
    global _secret_store
    _built.clear()
    _secret_store = None
    settings.cache_clear()
    store.reset_client()


_secret_store: SecretStore | None = None


# Each secret is parsed when it is fetched (requests and health alike): a value that does not
# parse is "malformed", never served, and never replaces the last good value in the cache.
def _check_pepper(text: str) -> None:
    if len(text) < 32:
        raise ValueError("shorter than 32 characters (expected >= 32 random bytes, URL-safe base64)")


def _check_signing_keys(text: str) -> None:
    from otplogin.tokens import SigningKeyError, TokenSigner

    try:
        TokenSigner.from_secret(text, issuer="-", audience="-")
    except SigningKeyError as exc:
        raise ValueError(str(exc)) from None


def _check_keyring(text: str) -> None:
    from otplogin.keyring import Keyring, KeyringError

    try:
        Keyring.from_secret(text)
    except KeyringError as exc:
        raise ValueError(str(exc)) from None


def _check_account_sid(text: str) -> None:
    from otplogin.sms.twilio import ACCOUNT_SID_PATTERN

    if not ACCOUNT_SID_PATTERN.match(text.strip()):
        raise ValueError("not an account SID (AC followed by 32 hex digits)")


SECRET_FORMATS: dict[str, Callable[[str], None]] = {
    OTP_PEPPER: _check_pepper,
    JWT_SIGNING_KEYS: _check_signing_keys,
    PII_KEYRING: _check_keyring,
    TWILIO_SECRETS[0]: _check_account_sid,
}


def secret_store() -> SecretStore:
    global _secret_store
    if _secret_store is None:
        from otplogin.secrets import SecretStore

        cfg = settings()
        _secret_store = SecretStore(
            cfg.project,
            refresh_seconds=cfg.secrets_refresh_seconds,
            emulator_host=cfg.secret_manager_emulator,
            validators=SECRET_FORMATS,
        )
    return _secret_store


def secret(secret_id: str) -> str:
    return secret_store().get(secret_id)


def sms_sender() -> SmsSender:
    cfg = settings()
    if cfg.sms_provider == "dev_outbox":
        from otplogin.sms.dev_outbox import DevOutboxSender

        return _memo("sms", "dev_outbox", lambda: DevOutboxSender(cfg, store.client()))
    from otplogin.sms.twilio import sender_from_secrets

    values = tuple(secret(s) for s in TWILIO_SECRETS)
    return _memo("sms", values, lambda: sender_from_secrets(secret, cfg.twilio_api_base))


def otp_service() -> OtpService:
    return _memo("otp", None, lambda: OtpService(settings(), pepper=lambda: secret(OTP_PEPPER), sender=sms_sender))


def _signer(name: str, issuer: str, audience: str, ttl_seconds: int, typ: str) -> TokenSigner:
    from otplogin.tokens import SigningKeyError, TokenSigner

    text = secret(JWT_SIGNING_KEYS)
    try:
        return _memo(
            name,
            text,
            lambda: TokenSigner.from_secret(text, issuer=issuer, audience=audience, ttl_seconds=ttl_seconds, typ=typ),
        )
    except SigningKeyError as exc:  # the store already parses it; this only guards a key error from becoming a 500
        raise SecretUnavailable(JWT_SIGNING_KEYS, f"malformed: {exc}") from None


def token_signer() -> TokenSigner:
    """Signs access tokens (verify_otp and login).

    Handlers build it before consuming a code or sending a text, so a key problem answers
    503 `unavailable` while the code is still usable."""
    from otplogin.tokens import ACCESS_TOKEN_TYPE

    cfg = settings()
    return _signer("signer", cfg.jwt_issuer, cfg.jwt_audience, cfg.jwt_ttl_seconds, ACCESS_TOKEN_TYPE)


def mfa_signer() -> TokenSigner:
    """Signs the short-lived token that links a password step to its second factor.

    Its own type header, issuer and audience, so it is never taken for an access
    token, not even by a service that skips the audience check."""
    from otplogin.tokens import SECOND_FACTOR_TOKEN_TYPE

    cfg = settings()
    return _signer(
        "mfa_signer", f"{cfg.jwt_issuer}:mfa", f"{cfg.jwt_audience}:mfa", cfg.code_ttl_seconds, SECOND_FACTOR_TOKEN_TYPE
    )


def refresh_tokens() -> RefreshTokens:
    """Session families: keyed with the OTP pepper, which verify_otp and login both read."""
    from otplogin.refresh import RefreshTokens

    return _memo("refresh", None, lambda: RefreshTokens(settings(), pepper=lambda: secret(OTP_PEPPER)))


def pii_keyring() -> Keyring | None:
    """The PII keyring, or None when its secret is unavailable or malformed (logged as an ERROR).

    None, not an exception: a login must succeed without PII rather than fail."""
    from otplogin.keyring import Keyring, KeyringError

    try:
        text = secret(PII_KEYRING)
        return _memo("keyring", text, lambda: Keyring.from_secret(text))
    except (SecretUnavailable, KeyringError) as exc:
        log.event("secret_load_failed", f"pii-keyring unusable: {exc}", severity=logging.ERROR, secret=PII_KEYRING)
        return None


def signin() -> SignIn:
    from otplogin.signin import SignIn

    return _memo(
        "signin", None, lambda: SignIn(settings(), keyring=pii_keyring, otp=otp_service, pepper=lambda: secret(OTP_PEPPER))
    )


def health(secret_ids: Iterable[str], extra: dict[str, Callable[[], str]] | None = None) -> dict[str, Any]:
    """Readiness of each dependency, by name, without any secret value."""
    cfg = settings()
    checks: dict[str, Any] = {"firestore": store.ping()}
    secret_ids = list(secret_ids)
    if cfg.sms_provider == "twilio" and set(TWILIO_SECRETS) & set(secret_ids):
        checks["sms_provider"] = "twilio"
    elif set(TWILIO_SECRETS) & set(secret_ids):
        checks["sms_provider"] = "dev_outbox"
        secret_ids = [s for s in secret_ids if s not in TWILIO_SECRETS]
    checks["secrets"] = secret_store().check(secret_ids)
    for secret_id, reason in checks["secrets"].items():  # the secret-load alert's signal, even without traffic
        if reason != "ok":
            message = f"secret {secret_id!r} unavailable: {reason}"
            log.event("secret_load_failed", message, severity=logging.ERROR, secret=secret_id, reason=reason)
    for name, check in (extra or {}).items():
        checks[name] = check()
    ok = checks["firestore"] == "ok" and all(v == "ok" for v in checks["secrets"].values())
    ok = ok and all(checks[name] == "ok" for name in (extra or {}))
    return {"status": "ok" if ok else "unavailable", "checks": checks}
