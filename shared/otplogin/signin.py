"""Password sign-in: lockout with backoff, Argon2id, PII that never fails a login, second factor.

Plain Python: the login handler parses, calls `SignIn.login`, renders.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from otplogin import log, passwords, store, users
from otplogin.config import Settings
from otplogin.errors import AccountLocked, InvalidCredentials, InvalidRequest, RateLimited, Unavailable
from otplogin.keyring import Keyring
from otplogin.limits import SlidingWindow
from otplogin.otp import OtpService, Sent
from otplogin.users import User


@dataclass(frozen=True)
class SignedIn:
    user: User
    pii: dict[str, str | None]
    unavailable_fields: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class SecondFactorSent:
    user: User
    phone_key: str
    phone_hint: str
    sent: Sent


class SignIn:
    def __init__(
        self,
        settings: Settings,
        *,
        keyring: Callable[[], Keyring | None],
        otp: Callable[[], OtpService],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self._keyring = keyring
        self._otp = otp
        self._clock = clock
        self.ip_failures = SlidingWindow("login_fail_ip", settings.logins_per_ip_per_hour)

    def login(
        self, *, email: str | None, code: str | None, password: str, client_ip: str, locale: str | None = None
    ) -> SignedIn | SecondFactorSent:
        now = self._clock()
        ip_path = self.ip_failures.path(self._otp().client_key(client_ip))
        # The IP's failure log and the account (or its email pointer) in one round trip;
        # a malformed email or code is still answered after the rate limit, as before.
        invalid: InvalidRequest | None = None
        try:
            lookup: str | None = users.lookup_path(email=email, code=code)
        except InvalidRequest as exc:
            lookup, invalid = None, exc
        docs = store.get_many([ip_path] if lookup is None else [ip_path, lookup])
        wait = self.ip_failures.retry_after(docs[ip_path], now)
        if wait is not None:
            log.event("rate_limited", "login refused by a rate limit", severity=logging.WARNING, limit="login_ip")
            raise RateLimited(retry_after=wait, limit="login_ip")
        if lookup is None:
            raise invalid or InvalidRequest()

        user = users.resolve(lookup, docs[lookup])
        if user is None:
            passwords.verify_against_dummy(password)  # same cost as a real user: no account enumeration by timing
            self._record_failure(None, ip_path, now)
            log.event("login_failed", "login failed", reason="invalid_credentials")
            raise InvalidCredentials()

        locked_for = user.data.get("locked_until", 0) - now
        if locked_for > 0:
            passwords.verify_against_dummy(password)
            log.event("login_locked", "login refused: account locked", user=user.code)
            raise AccountLocked(retry_after=math.ceil(locked_for))

        if not passwords.verify_password(password, user.data.get("password_hash", "")):
            locked = self._record_failure(user, ip_path, now)
            log.event("login_failed", "login failed", reason="invalid_credentials", user=user.code, locked=locked)
            raise InvalidCredentials()

        self._record_success(user, password)
        pii, unavailable = self._decrypt(user)
        if user.mfa_enabled:
            return self._send_second_factor(user, pii.get("phone"), client_ip, locale)
        return SignedIn(user, pii, unavailable)

    # -- outcomes -----------------------------------------------------------
    def _record_failure(self, user: User | None, ip_path: str, now: float) -> bool:
        """Count the failure for the IP and the account; lock with doubling backoff. True if it locked."""
        paths = [ip_path] + ([user.path] if user else [])
        cfg = self.settings

        def decide(docs: store.Docs) -> store.Plan[bool]:
            writes = {ip_path: self.ip_failures.with_event(docs[ip_path], now)}
            locked = False
            doc = docs[user.path] if user else None
            if user and doc:
                failed = doc.get("failed_logins", 0) + 1
                update = {"failed_logins": failed}
                if failed >= cfg.login_failures_before_lock:
                    level = doc.get("lock_level", 0)
                    lock = min(cfg.login_lock_max_seconds, cfg.login_lock_base_seconds * 2**level)
                    update = {"failed_logins": 0, "lock_level": level + 1, "locked_until": now + lock}
                    locked = True
                writes[user.path] = update
            return store.Plan(locked, writes)

        return store.atomic_update(paths, decide)

    def _record_success(self, user: User, password: str) -> None:
        """Reset the failure count; rehash the password if the parameters rose since it was set."""
        update: dict[str, Any] = {}
        if user.data.get("failed_logins") or user.data.get("lock_level"):
            update |= {"failed_logins": 0, "lock_level": 0, "locked_until": 0.0}
        if passwords.needs_rehash(user.data["password_hash"]):
            update["password_hash"] = passwords.hash_password(password)
            log.event("password_rehashed", "password rehashed with current parameters", user=user.code)
        if update:
            store.atomic_update([user.path], lambda docs: store.Plan(None, {user.path: update} if docs[user.path] else {}))

    def _decrypt(self, user: User) -> tuple[dict[str, str | None], list[str]]:
        keyring = self._keyring()
        pii, failures = users.decrypt_pii(user, keyring)
        for name, error in failures.items():
            if error is None:
                what = "the pii-keyring secret is unavailable or malformed (see the secrets log line)"
                kid, present = None, None
            else:
                kid, present = error.kid, error.kid_present
                what = (
                    f"it was encrypted with key {kid}, which the ring holds: the value is corrupted"
                    if present
                    else f"it was encrypted with key {kid}, which this instance's pii-keyring does not hold: "
                    "either the key was removed (add it back as a non-primary key) or this instance has not "
                    "loaded a newer keyring yet (see docs/operations.md, 'Recovering from encryption_key_mismatch')"
                )
            log.event(
                "pii_undecryptable",
                f"field {name} of user {user.code} cannot be decrypted: {what}",
                severity=logging.ERROR,
                field=name,
                kid=kid,
                kid_present=present,
                user=user.code,
            )
        return pii, sorted(failures)

    def _send_second_factor(self, user: User, phone: str | None, client_ip: str, locale: str | None) -> SecondFactorSent:
        if not phone:
            log.event(
                "mfa_unavailable",
                f"user {user.code} has a second factor but no readable phone",
                severity=logging.ERROR,
                user=user.code,
            )
            raise Unavailable("The second factor cannot be delivered right now. Try again later.")
        otp = self._otp()
        sent = otp.send(phone, "sms", locale, client_ip, purpose="login", subject=user.code)
        log.event("login_mfa_sent", "password accepted, second factor sent", user=user.code)
        return SecondFactorSent(user, otp.phone_key(phone), log.mask_phone(phone), sent)
