"""One-time codes: issue, deliver, verify. Plain Python, no Flask.

Firestore holds one code document per *purpose*: a phone proof (`verify_otp`
with `{phone, code}`) and a user's login second factor never share a document,
a cooldown, a send cap or a failure window, so an anonymous caller who knows a
user's number can neither refuse, void nor redeem that user's login code. The
document id is an HMAC (of the phone, or of the user and the phone) and its
`code_hash` an HMAC of the code: no plaintext phone or code at rest. Every
decision (cooldown, caps, attempts, single use) is made and written in one
`store.atomic_update`, so all instances agree.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import re
import secrets
import time
from collections.abc import Callable
from typing import Any, TypeGuard

from msgspec import Struct, field, structs

from otplogin import log, messages, phone, store
from otplogin.config import Settings
from otplogin.errors import (
    ChallengeRequired,
    CodeExpired,
    DeliveryError,
    DeliveryRejected,
    InvalidCode,
    InvalidRequest,
    RateLimited,
    SmsDeliveryFailed,
    SmsDeliveryUncertain,
    TooManyAttempts,
)
from otplogin.guard import Pending, Proof, SendGuard, Verdict
from otplogin.limits import SlidingWindow, timestamp
from otplogin.sms import Channel, SmsSender

CODES = "otp_codes"
CHANNELS = ("sms", "whatsapp")
PHONE = "phone"  # purpose: prove a phone number (send_otp, verify_otp {phone, code})
LOGIN = "login"  # purpose: a user's second factor (login, verify_otp {mfa_token, code})

_COMPACT_PHONE = re.compile(r"^\+[0-9]+$")


class Sent(Struct, frozen=True):
    expires_in: int
    resend_after: int


class Verified(Struct, frozen=True):
    phone: str | None  # None when verified by key (second factor): no plaintext phone is stored
    purpose: str
    subject: str | None


class Scope(Struct, frozen=True):
    """Where one purpose keeps its code and its budgets (per phone, or per user and phone)."""

    purpose: str
    subject: str | None
    key: str  # the code document's id; codes are hashed under it
    sends: SlidingWindow
    failures: SlidingWindow

    @property
    def code_path(self) -> str:
        return f"{CODES}/{self.key}"

    @property
    def send_path(self) -> str:
        return self.sends.path(self.key)

    @property
    def failures_path(self) -> str:
        return self.failures.path(self.key)


class SendAttempt(Struct, frozen=True):
    """One send's reservation: what its decision reads, and the code document it writes."""

    scope: Scope
    guard: Pending  # the send guard's documents and decision
    now: float
    send_id: str
    code_doc: dict[str, Any]
    verdict: dict[str, Verdict] = field(default_factory=dict)  # the guard's, once decided

    @property
    def paths(self) -> list[str]:
        return [self.scope.code_path, self.scope.send_path, *self.guard.paths]


def is_channel(value: str) -> TypeGuard[Channel]:
    return value in CHANNELS


def random_code(length: int) -> str:
    """Uniform over all `length`-digit strings, leading zeros included."""
    return f"{secrets.randbelow(10**length):0{length}d}"


class OtpService:
    def __init__(
        self,
        settings: Settings,
        *,
        pepper: Callable[[], str],
        sender: Callable[[], SmsSender],
        clock: Callable[[], float] = time.time,
        make_code: Callable[[int], str] = random_code,
    ) -> None:
        self.settings = settings
        self._pepper = pepper
        self._sender = sender
        self._clock = clock
        self._make_code = make_code
        self.phone_sends = SlidingWindow("send_phone", settings.sends_per_phone_per_hour)
        self.login_sends = SlidingWindow("send_login", settings.sends_per_phone_per_hour)
        # Per-client, per-range and project-wide limits: the send guard (its own module).
        self.guard = SendGuard(settings, mac=self._mac, pepper=pepper)
        self.phone_failures = SlidingWindow("fail_phone", settings.failures_per_phone_per_hour)
        self.login_failures = SlidingWindow("fail_login", settings.failures_per_phone_per_hour)
        self.ip_failures = SlidingWindow("fail_ip", settings.failures_per_ip_per_hour)
        if settings.test_numbers:
            production = settings.test_numbers_in_production
            log.event(
                "otp_test_numbers_enabled",
                f"{len(settings.test_numbers)} test numbers with fixed codes are configured"
                + (" in production (OTP_TEST_NUMBERS_IN_PRODUCTION)" if production else " (emulator mode)"),
                severity=logging.WARNING if production else logging.INFO,
                count=len(settings.test_numbers),
                production=production,
            )

    # -- keys -------------------------------------------------------------
    def _mac(self, purpose: str, value: str) -> str:
        return hmac.new(self._pepper().encode(), f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()

    def phone_key(self, e164: str) -> str:
        return self._mac("phone", e164)[:40]

    def client_key(self, client_ip: str) -> str:
        return self._mac("ip", client_ip)[:40]

    def _code_hash(self, key: str, code: str) -> str:
        return self._mac(f"code:{key}", code)

    def phone_scope(self, phone_key: str) -> Scope:
        return Scope(PHONE, None, phone_key, self.phone_sends, self.phone_failures)

    def login_scope(self, phone_key: str, subject: str) -> Scope:
        return Scope(LOGIN, subject, self._mac("login", f"{subject}:{phone_key}")[:40], self.login_sends,
                     self.login_failures)

    def _test_number(self, raw_phone: str) -> tuple[str, str] | None:
        """(E.164, fixed code) of a configured test number. Never texted, so delivery rules do not apply."""
        if not self.settings.test_numbers or not isinstance(raw_phone, str):
            return None
        compact = raw_phone.strip().replace(" ", "").replace("-", "")
        code = self.settings.test_numbers.get(compact) if _COMPACT_PHONE.match(compact) else None
        return (compact, code) if code else None

    # -- send -------------------------------------------------------------
    def send(
        self,
        raw_phone: str,
        channel: str,
        locale: str | None,
        client_ip: str,
        *,
        purpose: str = PHONE,
        subject: str | None = None,
        proof: Proof | None = None,
    ) -> Sent:
        if not is_channel(channel):
            raise InvalidRequest("channel must be 'sms' or 'whatsapp'.", field="channel")
        if (purpose, bool(subject)) not in ((PHONE, False), (LOGIN, True)):
            raise ValueError("a login code is sent for a user (subject); a phone code for none")
        fixed = self._test_number(raw_phone) if purpose == PHONE else None  # never a fixed login code
        if fixed:
            return self._send_test_number(*fixed)
        e164, country = phone.validate_for_delivery(raw_phone, self.settings.allowed_countries)
        now = self._clock()
        key = self.phone_key(e164)
        scope = self.phone_scope(key) if subject is None else self.login_scope(key, subject)
        code = self._make_code(self.settings.code_length)
        sender = self._sender()  # before any write: missing provider secrets must not consume a quota
        attempt = SendAttempt(
            scope=scope,
            # A login's second factor goes to the account's own phone, never one the caller chose.
            guard=self.guard.prepare(e164, key, client_ip, now, account=purpose == LOGIN, proof=proof),
            now=now,
            send_id=secrets.token_hex(8),
            code_doc=self._new_code(scope, code, now, channel),
        )
        try:
            store.atomic_update(attempt.paths, lambda docs: self._decide_send(attempt, docs))
        except (RateLimited, ChallengeRequired) as exc:
            challenged = isinstance(exc, ChallengeRequired)
            log.event(
                "rate_limited",
                "send answered with a challenge" if challenged else "send refused by a rate limit",
                severity=logging.WARNING,
                limit=exc.data["limit"],
                reason=exc.data["limit"],
                action="challenge" if challenged else "refuse",
                country=country,
                purpose=purpose,
                **attempt.guard.log_fields(attempt.verdict.get("guard")),
            )
            raise
        except store.OutcomeUnknown:
            self._undo_send(attempt)  # the reservation may have landed, and no text went out
            raise
        body = messages.code_message(code, locale, self.settings.code_ttl_seconds)
        masked = log.mask_phone(e164)
        try:
            sender.send(e164, body, channel)
        except DeliveryError as exc:
            refused = isinstance(exc, DeliveryRejected)
            if refused:  # certainly not sent: as if this send never happened
                self._undo_send(attempt)
            what = "refused" if refused else "unconfirmed (the quota stays: it may have been sent)"
            log.event(
                "otp_delivery_failed",
                f"delivery {what}: {exc}",
                severity=logging.ERROR,
                channel=channel,
                country=country,
                phone=masked,
            )
            if refused:
                raise SmsDeliveryFailed() from None
            # The text may have gone out (and been billed): the code, cooldown and quota stay.
            raise SmsDeliveryUncertain(retry_after=self.settings.resend_cooldown_seconds or None) from None
        log.event(
            "otp_sent",
            "code sent",
            channel=channel,
            country=country,
            purpose=purpose,
            phone=masked,
            **attempt.guard.log_fields(attempt.verdict.get("guard")),
        )
        return Sent(self.settings.code_ttl_seconds, self.settings.resend_cooldown_seconds)

    def _new_code(self, scope: Scope, code: str, now: float, channel: str) -> dict[str, Any]:
        return {
            "code_hash": self._code_hash(scope.key, code),
            "state": "active",
            "attempts": 0,
            "expires_at": timestamp(now + self.settings.code_ttl_seconds),
            "resend_at": now + self.settings.resend_cooldown_seconds,
            "channel": channel,
            "purpose": scope.purpose,
            "subject": scope.subject,
            "previous": None,
        }

    def _decide_send(self, attempt: SendAttempt, docs: store.Docs) -> store.Plan[None]:
        """Cooldown, then each cap in turn; the reservation is written in the same commit.

        A new check reads its documents through `attempt.paths` and refuses with a
        `RateLimited` plan; a new counter adds its write to the plan (and its refund to
        `_undo_send`)."""
        scope, now = attempt.scope, attempt.now
        current = docs[scope.code_path]
        if current and current.get("resend_at", 0) > now:
            return store.Plan(_limited("resend_cooldown", math.ceil(current["resend_at"] - now)))
        wait = scope.sends.retry_after(docs[scope.send_path], now)
        if wait is not None:
            return store.Plan(_limited(scope.sends.name, wait))
        verdict = attempt.verdict["guard"] = attempt.guard.decide(docs)
        if verdict.error is not None:
            return store.Plan(verdict.error)
        previous = {k: v for k, v in current.items() if k != "previous"} | {"previous": None} if current else None
        # The code document names its send and what the guard counted, so an undo finds exactly that.
        code_doc = attempt.code_doc | {"send_id": attempt.send_id, "guard": verdict.ticket, "previous": previous}
        return store.Plan(
            None,
            {
                scope.code_path: code_doc,
                scope.send_path: scope.sends.with_event(docs[scope.send_path], now),
                **verdict.writes,
            },
        )

    def _undo_send(self, attempt: SendAttempt) -> None:
        """No text went out: put back the previous code and give back the quota.

        Only if this send's reservation is there (its `send_id` on the code): after a lost
        commit answer it may never have landed, and then there is nothing to give back."""
        scope = attempt.scope

        def decide(docs: store.Docs) -> store.Plan[None]:
            current = docs[scope.code_path]
            if not current or current.get("send_id") != attempt.send_id:
                return store.Plan(None)
            later = self._clock()
            writes: dict[str, Any] = {
                scope.code_path: current.get("previous") or store.DELETE,
                scope.send_path: scope.sends.without_event(docs[scope.send_path], attempt.now, later),
            }
            return store.Plan(None, writes | self.guard.undo(current.get("guard")))

        try:
            store.atomic_update([scope.code_path, scope.send_path], decide)
        except Exception:
            # The error answer still stands; the undelivered code is unknown to anyone.
            logging.getLogger("otplogin").exception("could not undo a send that sent nothing")

    def _send_test_number(self, e164: str, code: str) -> Sent:
        """Configured test numbers: fixed code, no SMS, no caps (like Firebase's). Phone purpose only."""
        scope = self.phone_scope(self.phone_key(e164))
        new_doc = self._new_code(scope, code, self._clock(), "sms") | {"send_id": secrets.token_hex(8)}
        store.atomic_update([scope.code_path], lambda _docs: store.Plan(None, {scope.code_path: new_doc}))
        log.event("otp_test_number", "code issued for a configured test number", phone=log.mask_phone(e164))
        return Sent(self.settings.code_ttl_seconds, self.settings.resend_cooldown_seconds)

    # -- verify -----------------------------------------------------------
    def verify(
        self, raw_phone: str, code: str, client_ip: str, *, also_write: Callable[[str], dict[str, Any]] | None = None
    ) -> Verified:
        """The `{phone, code}` path: only a code sent to prove this phone counts, never a login code.

        `also_write(e164)` gives documents to create in the same commit as the consume (the
        session a verified phone starts): a success costs one read and one commit, no more."""
        fixed = self._test_number(raw_phone)
        if fixed:
            return self._verify_phone(fixed[0], code, client_ip, also_write)
        # Apps send E.164: looked up as written, without parsing (verify_otp then never loads
        # phonenumbers, ~15 ms of its cold start). Parsed only when no code is found that way.
        written = phone.written_as_e164(raw_phone)
        if written is not None:
            try:
                return self._verify_phone(written, code, client_ip, also_write)
            except CodeExpired:
                e164 = phone.normalize(raw_phone)  # InvalidPhone when it is not a valid number
                if e164 == written:
                    raise
                # The same number written otherwise (`+2430812...`, a trunk 0 kept): its E.164 form.
                return self._verify_phone(e164, code, client_ip, also_write)
        return self._verify_phone(phone.normalize(raw_phone), code, client_ip, also_write)

    def _verify_phone(
        self, e164: str, code: str, client_ip: str, also_write: Callable[[str], dict[str, Any]] | None
    ) -> Verified:
        extra = (lambda: also_write(e164)) if also_write else None
        verified = self._verify(self.phone_scope(self.phone_key(e164)), code, client_ip, log.mask_phone(e164), extra)
        return structs.replace(verified, phone=e164)

    def verify_second_factor(self, phone_key: str, subject: str, code: str, client_ip: str) -> Verified:
        """A login's second factor: only a code sent for this user's login to this phone counts."""
        return self._verify(self.login_scope(phone_key, subject), code, client_ip, "(second factor)")

    def _verify(
        self, scope: Scope, code: str, client_ip: str, phone_for_logs: str,
        also_write: Callable[[], dict[str, Any]] | None = None,
    ) -> Verified:
        n = self.settings.code_length
        if not (isinstance(code, str) and len(code) == n and code.isascii() and code.isdigit()):
            raise InvalidRequest(f"code must be {n} digits.", field="code")
        now = self._clock()
        code_path, failures_path = scope.code_path, scope.failures_path
        ip_path = self.ip_failures.path(self.client_key(client_ip))
        max_attempts = self.settings.max_attempts_per_code

        def decide(docs: store.Docs) -> store.Plan[Verified]:
            doc = docs[code_path]
            if not doc or doc.get("state") != "active" or now >= doc["expires_at"].timestamp():
                return store.Plan(CodeExpired())
            if (doc.get("purpose", PHONE), doc.get("subject")) != (scope.purpose, scope.subject):
                return store.Plan(CodeExpired())  # a code of another purpose: as if there were none
            expires_in = math.ceil(doc["expires_at"].timestamp() - now)
            if doc.get("attempts", 0) >= max_attempts:
                return store.Plan(TooManyAttempts(retry_after=expires_in))
            # The phone's (or login's) hourly budget, and the client's across every phone it tries.
            for window, path in ((scope.failures, failures_path), (self.ip_failures, ip_path)):
                wait = window.retry_after(docs[path], now)
                if wait is not None:
                    return store.Plan(TooManyAttempts(retry_after=wait))
            if hmac.compare_digest(doc["code_hash"], self._code_hash(scope.key, code)):
                # Only the fields that change: the guarded update leaves the rest as read (a smaller commit).
                used = {"state": "used", "code_hash": "", "previous": None}
                # The guard's credit: the phone becomes known, its range, country and client earn sends.
                credit = self.guard.verified(doc.get("guard"), now)
                extra = also_write() if also_write else {}
                return store.Plan(Verified(None, scope.purpose, scope.subject), {code_path: used, **credit, **extra})
            attempts = doc.get("attempts", 0) + 1
            failures = scope.failures.with_event(docs[failures_path], now)
            client_failures = self.ip_failures.with_event(docs[ip_path], now)
            remaining = min(
                max_attempts - attempts,
                scope.failures.remaining(failures, now),
                self.ip_failures.remaining(client_failures, now),
            )
            return store.Plan(
                InvalidCode(attempts_remaining=remaining),
                {code_path: {"attempts": attempts, "previous": None}, failures_path: failures, ip_path: client_failures},
            )

        try:
            result = store.atomic_update([code_path, failures_path, ip_path], decide)
        except (InvalidCode, TooManyAttempts, CodeExpired) as exc:
            log.event("otp_rejected", "code rejected", reason=exc.code, purpose=scope.purpose, phone=phone_for_logs)
            raise
        log.event("otp_verified", "code verified", purpose=result.purpose, phone=phone_for_logs)
        return result


def _limited(limit: str, retry_after: int) -> RateLimited:
    return RateLimited(retry_after=retry_after, limit=limit)
