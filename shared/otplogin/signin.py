"""Password sign-in: an attempt reserved before Argon2id, lockout per (account, client) under an
account-wide ceiling, rehash, PII that never fails a login, second factor.

Plain Python: the login handler parses, calls `SignIn.login`, renders. The lockout
policy is stated in docs/architecture.md ("Lockout"); in short:

- Every attempt is counted *before* its password is hashed, in one atomic
  read-check-write over three documents: the IP's failure window, the
  account's failure window (the ceiling) and the (account, client) state. A
  burst of parallel guesses gets at most the budget evaluated; a success
  gives its reservation back.
- The account is whatever the identifier names: a user's account, or, for an
  email or code nobody has, that identifier (keyed by an HMAC). Both run the
  same code on the same kind of documents, so their answers are the same.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import time
from collections.abc import Callable
from typing import Any, NoReturn

from msgspec import Struct, field

from otplogin import log, passwords, store, users
from otplogin.config import Settings
from otplogin.errors import AccountLocked, ApiError, InvalidCredentials, InvalidRequest, RateLimited, Unavailable
from otplogin.keyring import Keyring
from otplogin.limits import COLLECTION, SlidingWindow, timestamp
from otplogin.otp import OtpService, Sent
from otplogin.users import User

#: A client the account signed in from passes the account-wide ceiling for this long.
KNOWN_CLIENT_SECONDS = 30 * 86400
#: Levels past this add nothing (the lock is capped at login_lock_max_seconds long before).
MAX_LEVEL = 32
#: Reservations on one hot account contend; retry more than the default before answering 503.
RESERVE_ATTEMPTS = 16


class SignedIn(Struct, frozen=True):
    user: User
    pii: dict[str, str | None]
    unavailable_fields: list[str] = field(default_factory=list)


class SecondFactorSent(Struct, frozen=True):
    user: User
    phone_key: str
    phone_hint: str
    sent: Sent


class ClientState(Struct, frozen=True):
    """What one client did to one account: its failure streak, lock level and lock, and trust.

    `level` counts the locks so far (each doubles the next one) and decays: one
    level is forgiven per `login_lock_decay_seconds` without a failure after the
    last failure or lock. A streak below the budget is forgotten after the same
    quiet time."""

    failures: int = 0
    level: int = 0
    locked_until: float = 0.0
    last_failure: float = 0.0
    known_until: float = 0.0

    @classmethod
    def load(cls, doc: store.Doc | None, now: float, cfg: Settings) -> ClientState:
        doc = doc or {}
        last, locked_until = float(doc.get("last_failure", 0.0)), float(doc.get("locked_until", 0.0))
        quiet = now - max(last, locked_until)
        forgiven = max(0, int(quiet // cfg.login_lock_decay_seconds)) if last else 0
        return cls(
            failures=int(doc.get("failures", 0)) if quiet < cfg.login_lock_decay_seconds else 0,
            level=max(0, int(doc.get("level", 0)) - forgiven),
            locked_until=locked_until,
            last_failure=last,
            known_until=float(doc.get("known_until", 0.0)),
        )

    def known(self, now: float) -> bool:
        return self.known_until > now

    def failed(self, now: float, cfg: Settings) -> ClientState:
        """This state after one more failure: at the budget, a lock of base * 2**level seconds."""
        failures = self.failures + 1
        if failures < cfg.login_failures_before_lock:
            return ClientState(failures, self.level, self.locked_until, now, self.known_until)
        lock = min(cfg.login_lock_max_seconds, cfg.login_lock_base_seconds * 2**self.level)
        return ClientState(0, min(MAX_LEVEL, self.level + 1), now + lock, now, self.known_until)

    def document(self, cfg: Settings) -> dict[str, Any]:
        # Kept while it still matters: its trust, or until every level has decayed.
        quiet_from = max(self.last_failure, self.locked_until)
        keep_until = max(self.known_until, quiet_from + cfg.login_lock_decay_seconds * max(1, self.level))
        return {
            "failures": self.failures,
            "level": self.level,
            "locked_until": self.locked_until,
            "last_failure": self.last_failure,
            "known_until": self.known_until,
            "expires_at": timestamp(keep_until),
        }


class Attempt(Struct, frozen=True):
    """A reserved attempt: counted as a failure until a success gives it back."""

    at: float
    ip_path: str
    account_path: str
    client_path: str
    locked: bool  # this attempt, if wrong, is the one that locked the client out
    user_doc: dict[str, Any] | None  # the account, read in the same round trip


class _Refused(Struct, frozen=True):
    error: ApiError
    lock: str  # "client" | "account" | "ip": for the log line only, never the answer
    user: str | None = None  # the user code, when the account exists: for the log line only


class SignIn:
    def __init__(
        self,
        settings: Settings,
        *,
        keyring: Callable[[], Keyring | None],
        otp: Callable[[], OtpService],
        pepper: Callable[[], str],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self._keyring = keyring
        self._otp = otp
        self._pepper = pepper
        self._clock = clock
        self.ip_failures = SlidingWindow("login_fail_ip", settings.logins_per_ip_per_hour)
        self.account_failures = SlidingWindow("login_fail_acct", settings.login_account_failures_per_hour)

    def login(
        self, *, email: str | None, code: str | None, password: str, client_ip: str, locale: str | None = None,
        also_write: Callable[[User], dict[str, Any]] | None = None,
    ) -> SignedIn | SecondFactorSent:
        """`also_write(user)` gives documents to create in the success's own commit (the session a
        login without a second factor starts), so a sign-in costs no commit more."""
        now = self._clock()
        client = self._otp().client_key(client_ip)
        ip_path = self.ip_failures.path(client)
        try:
            lookup = users.lookup_path(email=email, code=code)
        except InvalidRequest:
            # A malformed email or code is still answered after the rate limit.
            wait = self.ip_failures.retry_after(store.get_many([ip_path])[ip_path], now)
            if wait is not None:
                self._refused(_Refused(RateLimited(retry_after=wait, limit="login_ip"), "ip"), None)
            raise
        pointer = store.get_many([lookup])[lookup] if users.is_pointer(lookup) else None
        user_path = users.account_path(lookup, pointer)
        # An identifier nobody has is an account of its own: it locks exactly like a real one.
        attempt = self._reserve(user_path or lookup, client, ip_path, now, user_path)
        user = users.user_at(user_path, attempt.user_doc) if user_path else None
        if user is None:
            passwords.verify_against_dummy(password)  # same cost as a real user: no account enumeration by timing
            log.event("login_failed", "login failed", reason="invalid_credentials", locked=attempt.locked)
            raise InvalidCredentials()

        verified = user.data.get("password_hash", "")
        if not passwords.verify_password(password, verified):
            log.event(
                "login_failed", "login failed", reason="invalid_credentials", user=user.code, locked=attempt.locked
            )
            raise InvalidCredentials()

        self._succeeded(attempt, user, password, verified, None if user.mfa_enabled else also_write)
        pii, unavailable = self._decrypt(user)
        if user.mfa_enabled:
            return self._send_second_factor(user, pii.get("phone"), client_ip, locale)
        return SignedIn(user, pii, unavailable)

    # -- the attempt: reserved before Argon2id, given back on success --------------------------
    def _subject_key(self, subject: str) -> str:
        return hmac.new(self._pepper().encode(), f"login:{subject}".encode(), hashlib.sha256).hexdigest()[:40]

    def _reserve(self, subject: str, client: str, ip_path: str, now: float, user_path: str | None) -> Attempt:
        """Check the IP window, the client's lock and the account's ceiling, and count this attempt, atomically.

        The user document is read in the same round trip (it plays no part in the
        decision, which is the same whether the account exists or not)."""
        cfg = self.settings
        key = self._subject_key(subject)
        account_path = self.account_failures.path(key)
        client_path = f"{COLLECTION}/login_client:{key}:{client}"
        paths = [ip_path, account_path, client_path] + ([user_path] if user_path else [])

        def decide(docs: store.Docs) -> store.Plan[Attempt | _Refused]:
            user_doc = docs[user_path] if user_path else None
            who = user_path.partition("/")[2] if user_path and user_doc is not None else None
            wait = self.ip_failures.retry_after(docs[ip_path], now)
            if wait is not None:
                return store.Plan(_Refused(RateLimited(retry_after=wait, limit="login_ip"), "ip", who))
            state = ClientState.load(docs[client_path], now, cfg)
            if state.locked_until > now:
                locked_for = math.ceil(state.locked_until - now)
                return store.Plan(_Refused(AccountLocked(retry_after=locked_for), "client", who))
            if not state.known(now):
                wait = self.account_failures.retry_after(docs[account_path], now)
                if wait is not None:
                    return store.Plan(_Refused(AccountLocked(retry_after=wait), "account", who))
            after = state.failed(now, cfg)
            writes = {
                ip_path: self.ip_failures.with_event(docs[ip_path], now),
                account_path: self.account_failures.with_event(docs[account_path], now),
                client_path: after.document(cfg),
            }
            attempt = Attempt(now, ip_path, account_path, client_path, after.locked_until > now, user_doc)
            return store.Plan(attempt, writes)

        outcome = store.atomic_update(paths, decide, max_attempts=RESERVE_ATTEMPTS)
        if isinstance(outcome, _Refused):
            self._refused(outcome, outcome.user)
        return outcome

    def _refused(self, refused: _Refused, user: str | None) -> NoReturn:
        if isinstance(refused.error, RateLimited):
            log.event("rate_limited", "login refused by a rate limit", severity=logging.WARNING, limit="login_ip")
        else:
            who: dict[str, Any] = {"user": user} if user else {}
            log.event("login_locked", f"login refused: {refused.lock} locked out", lock=refused.lock, **who)
        raise refused.error

    def _succeeded(self, attempt: Attempt, user: User, password: str, verified: str,
                   also_write: Callable[[User], dict[str, Any]] | None = None) -> None:
        """Give the reserved attempt back, trust this client, and rehash if the parameters rose.

        The new hash is written only if the stored one is still the hash just
        verified: a password changed meanwhile is never overwritten."""
        cfg = self.settings
        params = passwords.rehash_params(verified)
        new_hash = passwords.hash_password(password, params) if params else None
        now = self._clock()
        paths = [attempt.ip_path, attempt.account_path, attempt.client_path, user.path]

        def decide(docs: store.Docs) -> store.Plan[bool]:
            writes: dict[str, Any] = {attempt.client_path: ClientState(known_until=now + KNOWN_CLIENT_SECONDS).document(cfg)}
            for path, window in ((attempt.ip_path, self.ip_failures), (attempt.account_path, self.account_failures)):
                if docs[path]:
                    writes[path] = window.without_event(docs[path], attempt.at, now)
            current = docs[user.path]
            rehash = new_hash is not None and current is not None and current.get("password_hash") == verified
            if rehash:
                writes[user.path] = {"password_hash": new_hash}
            if also_write:
                writes.update(also_write(user))
            return store.Plan(rehash, writes)

        if store.atomic_update(paths, decide, max_attempts=RESERVE_ATTEMPTS):
            log.event("password_rehashed", "password rehashed with current parameters", user=user.code)

    # -- what a right password leads to --------------------------------------------------------
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
