"""Non-secret settings, read from the environment once and validated.

Secrets never come from here: they are read from Secret Manager by
`otplogin.secrets`. Every setting below has a safe default except the project.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from functools import lru_cache

from msgspec import Struct, field

from otplogin.phone import written_as_e164


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


def _float(env: Mapping[str, str], name: str, default: float, low: float, high: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low} and {high}, got {value}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool = False) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw == "":
        return default
    if raw not in ("true", "false", "1", "0"):
        raise ConfigError(f"{name} must be true or false, got {raw!r}")
    return raw in ("true", "1")


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


# Ranges set aside for fiction, which no subscriber can hold: Ofcom's drama mobile range
# (07700 900000-900999) and the North American 555-0100..0199 block.
RESERVED_TEST_RANGES = (
    re.compile(r"^\+447700900\d{3}$"),
    re.compile(r"^\+1[2-9]\d{2}55501\d{2}$"),
)


def _test_numbers(env: Mapping[str, str], code_length: int, *, emulator: bool) -> tuple[dict[str, str], bool]:
    """`OTP_TEST_NUMBERS="+243800000001=123456,..."`: fixed codes, never an SMS; (numbers, in production).

    Anyone who types a listed number gets in with its fixed code, so outside emulator mode the
    list needs `OTP_TEST_NUMBERS_IN_PRODUCTION=true` and may hold only reserved fiction ranges."""
    numbers: dict[str, str] = {}
    for item in _list(env, "OTP_TEST_NUMBERS"):
        phone, _, code = item.partition("=")
        phone = phone.strip()
        if not (written_as_e164(phone) and code.isascii() and code.isdigit() and len(code) == code_length):
            raise ConfigError(f"OTP_TEST_NUMBERS entries look like +E164={'9' * code_length}")
        numbers[phone] = code
    allowed_in_production = _bool(env, "OTP_TEST_NUMBERS_IN_PRODUCTION")
    if not numbers or emulator:
        return numbers, False
    if not allowed_in_production:
        raise ConfigError(
            "OTP_TEST_NUMBERS is set outside emulator mode: set OTP_TEST_NUMBERS_IN_PRODUCTION=true to allow "
            "fixed codes there (reserved fiction ranges only), or remove it"
        )
    outside = [p for p in numbers if not any(r.match(p) for r in RESERVED_TEST_RANGES)]
    if outside:  # never echo the numbers: one may be a real subscriber's
        raise ConfigError(
            f"OTP_TEST_NUMBERS_IN_PRODUCTION allows only reserved fiction ranges (+44 7700 900xxx, "
            f"+1 NXX 555 01xx); {len(outside)} of the {len(numbers)} entries are outside them"
        )
    return numbers, True


def _country_shares(env: Mapping[str, str], countries: frozenset[str]) -> dict[str, int]:
    """`GUARD_COUNTRY_SHARES="CD=60,MA=40"`: each country's percent of the new-number budget (default: equal)."""
    items = _list(env, "GUARD_COUNTRY_SHARES")
    if not items:
        return {c: 100 // max(1, len(countries)) for c in sorted(countries)}
    shares: dict[str, int] = {}
    for item in items:
        country, _, percent = item.partition("=")
        country = country.strip().upper()
        if country not in countries or not percent.strip().isdigit():
            raise ConfigError("GUARD_COUNTRY_SHARES entries look like CD=60, for allowed countries only")
        shares[country] = int(percent)
    if sum(shares.values()) > 100:
        raise ConfigError("GUARD_COUNTRY_SHARES must add up to at most 100")
    return shares


_CHALLENGES = ("altcha", "attestation")


class Settings(Struct, frozen=True):
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
    # One client probing many phones: 50 wrong codes an hour bound it at 5e-5 per hour (6 digits),
    # with room for a carrier NAT's many users mistyping.
    failures_per_ip_per_hour: int = 50
    sends_per_ip_per_hour: int = 20
    sends_global_per_hour: int = 1000
    test_numbers: Mapping[str, str] = field(default_factory=dict)
    test_numbers_in_production: bool = False
    # Client addresses: how many proxies in front append to X-Forwarded-For (1 = Cloud Run's own front end).
    trusted_proxy_hops: int = 1
    # Send guard (otplogin.guard; docs/runbook.md "Send guard"). Off: the plain walls of the
    # per-IP and project-wide caps, kept as a control.
    guard_enabled: bool = True
    guard_range_block_digits: int = 5  # a range is a block of 10**5 numbers (never shorter than the NDC)
    guard_known_days: int = 30  # a phone verified this recently is "known"
    guard_known_share_percent: int = 30  # of the project cap, reserved for known phones
    guard_proven_share_percent: int = 20  # of the project cap, reserved for sends that passed a challenge
    guard_country_shares: Mapping[str, int] = field(default_factory=dict)  # percent of the rest, by country
    guard_range_free_per_hour: int = 8  # unverified sends a range gets before it must convert
    guard_range_sends_per_verify: float = 1.5
    guard_range_cap_percent: int = 10  # of the project cap: most one range may take in an hour
    guard_country_free_per_hour: int = 20
    guard_country_sends_per_verify: float = 1.25
    guard_client_free_per_hour: int = 5  # sends an address gets before its codes must be verified
    guard_client_sends_per_verify: float = 2.0
    guard_client_max_per_hour: int = 2000
    guard_proven_client_factor: int = 4  # a client's allowance is this much larger for challenge-passed sends
    guard_counter_shards: int = 4
    guard_challenges: frozenset[str] = frozenset()  # "altcha", "attestation"
    guard_altcha_algorithm: str = "PBKDF2/SHA-256"
    guard_altcha_cost: int = 1000
    guard_altcha_max_counter: int = 2000
    guard_challenge_ttl_seconds: int = 600
    guard_attestation_jwks_url: str | None = None
    guard_attestation_issuer: str | None = None
    guard_attestation_audience: str | None = None
    # Tokens
    jwt_issuer: str = "otplogin"
    jwt_audience: str = "otplogin-clients"
    jwt_ttl_seconds: int = 3600
    # Refresh tokens (otplogin.refresh): a family ends after this long unused, or this long after its sign-in
    refresh_idle_seconds: int = 30 * 86400
    refresh_lifetime_seconds: int = 90 * 86400
    # A retry with the token just rotated gets the same successor for this long (Supabase: 10 s); after, it is reuse
    refresh_reuse_grace_seconds: float = 10.0
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
        # Emulator mode as the dev SMS sink defines it: an emulator host and a `demo-` project.
        emulator = bool(env.get("FIRESTORE_EMULATOR_HOST")) and project.startswith("demo-")
        test_numbers, test_numbers_in_production = _test_numbers(env, code_length, emulator=emulator)
        challenges = frozenset(c.lower() for c in _list(env, "GUARD_CHALLENGES"))
        if not challenges <= set(_CHALLENGES):
            raise ConfigError(f"GUARD_CHALLENGES is a list of {', '.join(_CHALLENGES)}, got {sorted(challenges)}")
        jwks_url = env.get("GUARD_ATTESTATION_JWKS_URL") or None
        if "attestation" in challenges and not (jwks_url and env.get("GUARD_ATTESTATION_AUDIENCE")):
            raise ConfigError("GUARD_CHALLENGES=attestation needs GUARD_ATTESTATION_JWKS_URL and GUARD_ATTESTATION_AUDIENCE")
        known = _int(env, "GUARD_KNOWN_SHARE_PERCENT", 30, 0, 90)
        proven = _int(env, "GUARD_PROVEN_SHARE_PERCENT", 20, 0, 90)
        if known + proven > 90:
            raise ConfigError("GUARD_KNOWN_SHARE_PERCENT + GUARD_PROVEN_SHARE_PERCENT must leave at least 10 for new numbers")
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
            failures_per_ip_per_hour=_int(env, "OTP_FAILURES_PER_IP_PER_HOUR", 50, 1, 1_000_000),
            sends_per_ip_per_hour=_int(env, "OTP_SENDS_PER_IP_PER_HOUR", 20, 1, 100_000),
            sends_global_per_hour=_int(env, "OTP_SENDS_GLOBAL_PER_HOUR", 1000, 1, 10_000_000),
            test_numbers=test_numbers,
            test_numbers_in_production=test_numbers_in_production,
            trusted_proxy_hops=_int(env, "TRUSTED_PROXY_HOPS", 1, 1, 10),
            guard_enabled=_bool(env, "GUARD_ENABLED", True),
            guard_range_block_digits=_int(env, "GUARD_RANGE_BLOCK_DIGITS", 5, 2, 8),
            guard_known_days=_int(env, "GUARD_KNOWN_DAYS", 30, 1, 365),
            guard_known_share_percent=known,
            guard_proven_share_percent=proven,
            guard_country_shares=_country_shares(env, countries),
            guard_range_free_per_hour=_int(env, "GUARD_RANGE_FREE_PER_HOUR", 8, 0, 100_000),
            guard_range_sends_per_verify=_float(env, "GUARD_RANGE_SENDS_PER_VERIFY", 1.5, 1.0, 100.0),
            guard_range_cap_percent=_int(env, "GUARD_RANGE_CAP_PERCENT", 10, 1, 100),
            guard_country_free_per_hour=_int(env, "GUARD_COUNTRY_FREE_PER_HOUR", 20, 0, 1_000_000),
            guard_country_sends_per_verify=_float(env, "GUARD_COUNTRY_SENDS_PER_VERIFY", 1.25, 1.0, 100.0),
            guard_client_free_per_hour=_int(env, "GUARD_CLIENT_FREE_PER_HOUR", 5, 0, 100_000),
            guard_client_sends_per_verify=_float(env, "GUARD_CLIENT_SENDS_PER_VERIFY", 2.0, 1.0, 100.0),
            guard_client_max_per_hour=_int(env, "GUARD_CLIENT_MAX_PER_HOUR", 2000, 1, 10_000_000),
            guard_proven_client_factor=_int(env, "GUARD_PROVEN_CLIENT_FACTOR", 4, 1, 1000),
            guard_counter_shards=_int(env, "GUARD_COUNTER_SHARDS", 4, 1, 64),
            guard_challenges=challenges,
            guard_altcha_algorithm=env.get("GUARD_ALTCHA_ALGORITHM", "PBKDF2/SHA-256"),
            guard_altcha_cost=_int(env, "GUARD_ALTCHA_COST", 1000, 1, 1_000_000),
            guard_altcha_max_counter=_int(env, "GUARD_ALTCHA_MAX_COUNTER", 2000, 1, 10_000_000),
            guard_challenge_ttl_seconds=_int(env, "GUARD_CHALLENGE_TTL_SECONDS", 600, 30, 3600),
            guard_attestation_jwks_url=jwks_url,
            guard_attestation_issuer=env.get("GUARD_ATTESTATION_ISSUER") or None,
            guard_attestation_audience=env.get("GUARD_ATTESTATION_AUDIENCE") or None,
            jwt_issuer=env.get("JWT_ISSUER", "otplogin"),
            jwt_audience=env.get("JWT_AUDIENCE", "otplogin-clients"),
            jwt_ttl_seconds=_int(env, "JWT_TTL_SECONDS", 3600, 60, 86400),
            refresh_idle_seconds=_int(env, "REFRESH_IDLE_SECONDS", 30 * 86400, 60, 365 * 86400),
            refresh_lifetime_seconds=_int(env, "REFRESH_LIFETIME_SECONDS", 90 * 86400, 60, 730 * 86400),
            refresh_reuse_grace_seconds=_float(env, "REFRESH_REUSE_GRACE_SECONDS", 10.0, 0.0, 60.0),
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
