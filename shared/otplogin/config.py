"""Non-secret settings, read from the environment once and validated.

Secrets never come from here: they are read from Secret Manager by
`otplogin.secrets`. Every setting below has a safe default except the project.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache


class ConfigError(Exception):
    """A setting is missing or malformed; the message names the variable."""


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low} and {high}, got {value}")
    return value


def _list(env: Mapping[str, str], name: str, default: str = "") -> tuple[str, ...]:
    return tuple(item.strip() for item in env.get(name, default).split(",") if item.strip())


_ORIGIN = re.compile(r"^https?://[a-z0-9.-]+(:[0-9]{1,5})?$")


def _origins(env: Mapping[str, str]) -> tuple[str, ...]:
    """Exact `scheme://host[:port]` origins only: never `*`, never `null` (sandboxed and file:// pages)."""
    origins = _list(env, "CORS_ALLOWED_ORIGINS")
    for origin in origins:
        if not _ORIGIN.match(origin):
            raise ConfigError(f"CORS_ALLOWED_ORIGINS entries look like https://app.example.com, got {origin!r}")
    return origins


def _test_numbers(env: Mapping[str, str], code_length: int) -> dict[str, str]:
    """`OTP_TEST_NUMBERS="+243800000001=123456,..."`: fixed codes, never an SMS."""
    numbers: dict[str, str] = {}
    for item in _list(env, "OTP_TEST_NUMBERS"):
        phone, _, code = item.partition("=")
        if not (phone.startswith("+") and code.isascii() and code.isdigit() and len(code) == code_length):
            raise ConfigError(f"OTP_TEST_NUMBERS entries look like +E164={'9' * code_length}")
        numbers[phone.strip()] = code
    return numbers


@dataclass(frozen=True)
class Settings:
    project: str
    firestore_emulator: str | None = None
    secret_manager_emulator: str | None = None
    sms_provider: str = "twilio"
    twilio_api_base: str | None = None
    allowed_countries: frozenset[str] = frozenset({"CD", "MA"})
    cors_allowed_origins: tuple[str, ...] = ()
    # OTP (DESIGN.md "Numbers")
    code_length: int = 6
    code_ttl_seconds: int = 300
    max_attempts_per_code: int = 5
    resend_cooldown_seconds: int = 60
    sends_per_phone_per_hour: int = 5
    # 10 wrong guesses per phone per hour bound a 6-digit brute force at 1e-5 per hour.
    failures_per_phone_per_hour: int = 10
    sends_per_ip_per_hour: int = 20
    sends_global_per_hour: int = 1000
    test_numbers: Mapping[str, str] = field(default_factory=dict)
    # Tokens
    jwt_issuer: str = "otplogin"
    jwt_audience: str = "otplogin-clients"
    jwt_ttl_seconds: int = 3600
    # Login (docs/architecture.md, "Lockout"): a lock per (account, client), an account-wide ceiling
    login_failures_before_lock: int = 5
    login_lock_base_seconds: int = 60
    login_lock_max_seconds: int = 3600
    login_lock_decay_seconds: int = 3600
    login_account_failures_per_hour: int = 20
    logins_per_ip_per_hour: int = 100
    # Plumbing
    secrets_refresh_seconds: int = 300
    max_body_bytes: int = 8192

    @property
    def emulator_mode(self) -> bool:
        return bool(self.firestore_emulator)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        project = env.get("GOOGLE_CLOUD_PROJECT", "").strip()
        if not project:
            raise ConfigError("GOOGLE_CLOUD_PROJECT is not set")
        sms_provider = env.get("SMS_PROVIDER", "twilio")
        if sms_provider not in ("twilio", "dev_outbox"):
            raise ConfigError(f"SMS_PROVIDER must be 'twilio' or 'dev_outbox', got {sms_provider!r}")
        code_length = _int(env, "OTP_CODE_LENGTH", 6, 6, 10)
        countries = frozenset(c.upper() for c in _list(env, "OTP_ALLOWED_COUNTRIES", "CD,MA"))
        return cls(
            project=project,
            firestore_emulator=env.get("FIRESTORE_EMULATOR_HOST") or None,
            secret_manager_emulator=env.get("SECRET_MANAGER_EMULATOR_HOST") or None,
            sms_provider=sms_provider,
            twilio_api_base=env.get("TWILIO_API_BASE") or None,
            allowed_countries=countries,
            cors_allowed_origins=_origins(env),
            code_length=code_length,
            code_ttl_seconds=_int(env, "OTP_TTL_SECONDS", 300, 30, 3600),
            max_attempts_per_code=_int(env, "OTP_MAX_ATTEMPTS", 5, 1, 10),
            resend_cooldown_seconds=_int(env, "OTP_RESEND_COOLDOWN_SECONDS", 60, 0, 3600),
            sends_per_phone_per_hour=_int(env, "OTP_SENDS_PER_PHONE_PER_HOUR", 5, 1, 100),
            failures_per_phone_per_hour=_int(env, "OTP_FAILURES_PER_PHONE_PER_HOUR", 10, 1, 100),
            sends_per_ip_per_hour=_int(env, "OTP_SENDS_PER_IP_PER_HOUR", 20, 1, 100_000),
            sends_global_per_hour=_int(env, "OTP_SENDS_GLOBAL_PER_HOUR", 1000, 1, 10_000_000),
            test_numbers=_test_numbers(env, code_length),
            jwt_issuer=env.get("JWT_ISSUER", "otplogin"),
            jwt_audience=env.get("JWT_AUDIENCE", "otplogin-clients"),
            jwt_ttl_seconds=_int(env, "JWT_TTL_SECONDS", 3600, 60, 86400),
            login_failures_before_lock=_int(env, "LOGIN_FAILURES_BEFORE_LOCK", 5, 1, 100),
            login_lock_base_seconds=_int(env, "LOGIN_LOCK_BASE_SECONDS", 60, 1, 86400),
            login_lock_max_seconds=_int(env, "LOGIN_LOCK_MAX_SECONDS", 3600, 1, 86400 * 7),
            login_lock_decay_seconds=_int(env, "LOGIN_LOCK_DECAY_SECONDS", 3600, 1, 86400 * 30),
            login_account_failures_per_hour=_int(env, "LOGIN_ACCOUNT_FAILURES_PER_HOUR", 20, 1, 1_000_000),
            logins_per_ip_per_hour=_int(env, "LOGINS_PER_IP_PER_HOUR", 100, 1, 1_000_000),
            secrets_refresh_seconds=_int(env, "SECRETS_REFRESH_SECONDS", 300, 1, 86400),
            max_body_bytes=_int(env, "MAX_BODY_BYTES", 8192, 256, 1_048_576),
        )


@lru_cache(maxsize=1)
def settings() -> Settings:
    """The process's settings, read once (tests call `settings.cache_clear()`)."""
    return Settings.from_env()
