"""One-time codes: issue, deliver, verify. Plain Python, no Flask.

Firestore holds, per phone, one document in `otp_codes` whose id is an HMAC
of the phone and whose `code_hash` is an HMAC of the code: no plaintext phone
or code at rest. Every decision (cooldown, caps, attempts, single use) is made
and written in one `store.atomic_update`, so all instances agree.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import logging
import math
import secrets
import time
from collections.abc import Callable
from typing import Any, TypeGuard

from otplogin import log, messages, phone, store
from otplogin.config import Settings
from otplogin.errors import (
    ChallengeRequired,
    CodeExpired,
    DeliveryError,
    InvalidCode,
    InvalidRequest,
    RateLimited,
    SmsDeliveryFailed,
    TooManyAttempts,
)
from otplogin.guard import Proof, SendGuard, Verdict
from otplogin.limits import SlidingWindow, timestamp
from otplogin.sms import Channel, SmsSender

CODES = "otp_codes"
CHANNELS = ("sms", "whatsapp")


@dataclasses.dataclass(frozen=True)
class Sent:
    expires_in: int
    resend_after: int


@dataclasses.dataclass(frozen=True)
class Verified:
    phone: str | None  # None when verified by key (second factor): no plaintext phone is stored
    purpose: str
    subject: str | None


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
        # Per-client, per-range and project-wide limits: the send guard (its own module).
        self.guard = SendGuard(settings, mac=self._mac, pepper=pepper)
        self.phone_failures = SlidingWindow("fail_phone", settings.failures_per_phone_per_hour)

    # -- keys -------------------------------------------------------------
    def _mac(self, purpose: str, value: str) -> str:
        return hmac.new(self._pepper().encode(), f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()

    def phone_key(self, e164: str) -> str:
        return self._mac("phone", e164)[:40]

    def client_key(self, client_ip: str) -> str:
        return self._mac("ip", client_ip)[:40]

    def _code_hash(self, key: str, code: str) -> str:
        return self._mac(f"code:{key}", code)

    # -- send -------------------------------------------------------------
    def send(
        self,
        raw_phone: str,
        channel: str,
        locale: str | None,
        client_ip: str,
        *,
        purpose: str = "phone",
        subject: str | None = None,
        proof: Proof | None = None,
    ) -> Sent:
        if not is_channel(channel):
            raise InvalidRequest("channel must be 'sms' or 'whatsapp'.", field="channel")
        e164, country = phone.validate_for_delivery(raw_phone, self.settings.allowed_countries)
        now = self._clock()
        key = self.phone_key(e164)
        fixed = self.settings.test_numbers.get(e164)
        code = fixed or self._make_code(self.settings.code_length)
        send_id = secrets.token_hex(8)
        new_doc = {
            "code_hash": self._code_hash(key, code),
            "state": "active",
            "attempts": 0,
            "expires_at": timestamp(now + self.settings.code_ttl_seconds),
            "resend_at": now + self.settings.resend_cooldown_seconds,
            "channel": channel,
            "purpose": purpose,
            "subject": subject,
            "send_id": send_id,
            "previous": None,
        }
        code_path = f"{CODES}/{key}"
        if fixed:
            # Configured test numbers: fixed code, no SMS, no caps (like Firebase's).
            store.atomic_update([code_path], lambda _docs: store.Plan(None, {code_path: new_doc}))
            log.event("otp_test_number", "code issued for a configured test number", phone=log.mask_phone(e164))
            return Sent(self.settings.code_ttl_seconds, self.settings.resend_cooldown_seconds)

        sender = self._sender()  # before any write: missing provider secrets must not consume a quota
        phone_path = self.phone_sends.path(key)
        # A login's second factor goes to the account's own phone, never one the caller chose.
        pending = self.guard.prepare(e164, key, client_ip, now, account=purpose == "login", proof=proof)
        chosen: dict[str, Verdict] = {}

        def decide(docs: store.Docs) -> store.Plan[None]:
            current = docs[code_path]
            if current and current.get("resend_at", 0) > now:
                return store.Plan(_limited("resend_cooldown", math.ceil(current["resend_at"] - now)))
            wait = self.phone_sends.retry_after(docs[phone_path], now)
            if wait is not None:
                return store.Plan(_limited(self.phone_sends.name, wait))
            verdict = chosen["verdict"] = pending.decide(docs)
            if verdict.error is not None:
                return store.Plan(verdict.error)
            previous = {k: v for k, v in current.items() if k != "previous"} | {"previous": None} if current else None
            return store.Plan(
                None,
                {
                    code_path: new_doc | {"previous": previous, "guard": verdict.ticket},
                    phone_path: self.phone_sends.with_event(docs[phone_path], now),
                    **verdict.writes,
                },
            )

        try:
            store.atomic_update([code_path, phone_path, *pending.paths], decide)
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
                **pending.log_fields(chosen.get("verdict")),
            )
            raise
        body = messages.code_message(code, locale, self.settings.code_ttl_seconds)
        try:
            sender.send(e164, body, channel)
        except DeliveryError as exc:
            self._undo_send(code_path, send_id, phone_path, chosen["verdict"].ticket, now)
            log.event(
                "otp_delivery_failed",
                f"delivery failed: {exc}",
                severity=logging.ERROR,
                channel=channel,
                country=country,
                phone=log.mask_phone(e164),
            )
            raise SmsDeliveryFailed() from None
        log.event(
            "otp_sent",
            "code sent",
            channel=channel,
            country=country,
            purpose=purpose,
            phone=log.mask_phone(e164),
            **pending.log_fields(chosen["verdict"]),
        )
        return Sent(self.settings.code_ttl_seconds, self.settings.resend_cooldown_seconds)

    def _undo_send(self, code_path: str, send_id: str, phone_path: str, ticket: dict[str, Any] | None, now: float) -> None:
        """Delivery failed: put back the previous code and give back the quota."""

        def decide(docs: store.Docs) -> store.Plan[None]:
            writes: dict[str, Any] = {}
            current = docs[code_path]
            if current and current.get("send_id") == send_id:
                writes[code_path] = current.get("previous") or store.DELETE
            writes[phone_path] = self.phone_sends.without_event(docs[phone_path], now, self._clock())
            return store.Plan(None, writes | self.guard.undo(ticket))

        try:
            store.atomic_update([code_path, phone_path], decide)
        except Exception:
            # The 502 still stands; the undelivered code is unknown to anyone.
            logging.getLogger("otplogin").exception("could not undo a failed send")

    # -- verify -----------------------------------------------------------
    def verify(self, raw_phone: str, code: str) -> Verified:
        e164 = phone.normalize(raw_phone)
        verified = self.verify_key(self.phone_key(e164), code, log.mask_phone(e164))
        return dataclasses.replace(verified, phone=e164)

    def verify_key(
        self, key: str, code: str, phone_for_logs: str = "(second factor)", *, login_subject: str | None = None
    ) -> Verified:
        """Verify a code for the phone whose HMAC is `key` (the second factor knows only the key).

        With `login_subject`, only a second-factor code sent for that user counts."""
        n = self.settings.code_length
        if not (isinstance(code, str) and len(code) == n and code.isascii() and code.isdigit()):
            raise InvalidRequest(f"code must be {n} digits.", field="code")
        now = self._clock()
        code_path = f"{CODES}/{key}"
        failures_path = self.phone_failures.path(key)
        max_attempts = self.settings.max_attempts_per_code

        def decide(docs: store.Docs) -> store.Plan[Verified]:
            doc = docs[code_path]
            if not doc or doc.get("state") != "active" or now >= doc["expires_at"].timestamp():
                return store.Plan(CodeExpired())
            if login_subject is not None and (doc.get("purpose"), doc.get("subject")) != ("login", login_subject):
                return store.Plan(CodeExpired())
            expires_in = math.ceil(doc["expires_at"].timestamp() - now)
            if doc.get("attempts", 0) >= max_attempts:
                return store.Plan(TooManyAttempts(retry_after=expires_in))
            wait = self.phone_failures.retry_after(docs[failures_path], now)
            if wait is not None:
                return store.Plan(TooManyAttempts(retry_after=wait))
            if hmac.compare_digest(doc["code_hash"], self._code_hash(key, code)):
                # Only the fields that change: the guarded update leaves the rest as read (a smaller commit).
                used = {"state": "used", "code_hash": "", "previous": None}
                verified = Verified(None, doc.get("purpose", "phone"), doc.get("subject"))
                # The guard's credit: the phone becomes known, its range and client earn sends.
                return store.Plan(verified, {code_path: used, **self.guard.verified(doc.get("guard"), key, now)})
            attempts = doc.get("attempts", 0) + 1
            failures = self.phone_failures.with_event(docs[failures_path], now)
            remaining = min(max_attempts - attempts, self.phone_failures.limit - len(failures["events"]))
            return store.Plan(
                InvalidCode(attempts_remaining=max(0, remaining)),
                {code_path: {"attempts": attempts, "previous": None}, failures_path: failures},
            )

        try:
            result = store.atomic_update([code_path, failures_path], decide)
        except (InvalidCode, TooManyAttempts, CodeExpired) as exc:
            log.event("otp_rejected", "code rejected", reason=exc.code, phone=phone_for_logs)
            raise
        log.event("otp_verified", "code verified", purpose=result.purpose, phone=phone_for_logs)
        return result


def _limited(limit: str, retry_after: int) -> RateLimited:
    return RateLimited(retry_after=retry_after, limit=limit)
