"""A Hypothesis stateful test of the OTP service against a plain model.

Rules: send (to one of a few phones, from one of a few IPs, with the provider
accepting or refusing), verify with the right code, a wrong code or a
superseded one, advance the injected clock (boundaries included: 59/60/61 s,
299/300/301 s, an hour), and restart. The model predicts every answer
exactly (status code, the `limit` named, `attempts_remaining`), and
invariants are checked after each step against Firestore itself:

- single use: a code that succeeded never succeeds again;
- attempt budget: at most 5 wrong codes per code, 10 per phone per hour,
  whatever the number of new codes;
- expiry: no success at or after `expires_at` (checked in code, not by TTL);
- a newer code replaces the older one: a superseded code is never accepted
  (documented exception: when delivery of the newer one fails, the send is
  undone and the older code stays valid, see openapi.yaml 502);
- sends respect the cooldown, the per-phone, per-IP and global caps.

"Restart" is modelled in-process: `otplogin.runtime.reset()` drops every
in-memory cache (settings, Secret Manager cache, Firestore client) and a new
OtpService is built, as a new instance would. Real process restarts are in
tests/e2e and the load and fault proofs.
"""

from __future__ import annotations

import math
from collections import Counter

import pytest
from hypothesis import HealthCheck, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.stateful import (  # noqa: E402
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from otplogin import runtime, store
from otplogin.errors import (
    CodeExpired,
    InvalidCode,
    RateLimited,
    SmsDeliveryFailed,
    TooManyAttempts,
)
from otplogin.otp import random_code
from tests.prove.conftest import Clock, Outbox, code_in
from tests.prove.helpers import make_service

PHONES = ["+243812345678", "+243998765432", "+212650123456"]
IPS = ["203.0.113.1", "203.0.113.2"]
# The send guard off: its walls (a flat cap per address and clock hour, one project-wide budget) are
# exact enough to model; the guard's own decisions are proven in test_send_guard.py and test_sms_pumping.py.
# The per-client failure cap is not modelled here: it is high enough never to bind.
LIMITS = {"sends_per_ip_per_hour": 4, "sends_global_per_hour": 8, "failures_per_ip_per_hour": 1_000_000,
          "guard_enabled": False}
WINDOW = 3600
STATS: Counter = Counter()


class PhoneModel:
    def __init__(self) -> None:
        self.code: str | None = None
        self.state: str | None = None
        self.expires_at = 0.0
        self.attempts = 0
        self.resend_at = 0.0
        self.sends: list[float] = []
        self.failures: list[float] = []
        self.superseded: list[str] = []
        self.used: set[str] = set()
        self.failure_times: list[float] = []  # every counted wrong code, for the hourly invariant
        self.wrong_per_code: Counter = Counter()


def recent(events: list[float], now: float) -> list[float]:
    return [t for t in events if now - t < WINDOW]


class OtpMachine(RuleBasedStateMachine):
    emulator = None  # set by the test

    @initialize()
    def fresh(self):
        self.emulator.clear()
        self.clock = Clock(1_800_000_000.0)
        self.outbox = Outbox()
        self.issued: set[str] = set()
        self.phones = {p: PhoneModel() for p in PHONES}
        self.ip_sends: dict[str, list[float]] = {ip: [] for ip in IPS}
        self.global_sends: Counter = Counter()
        self.service = self._service()
        for phone, ip in zip(PHONES, IPS * 2, strict=False):
            self.send(phone, ip, True)

    def _make_code(self, n: int) -> str:
        code = random_code(n)
        while code in self.issued:  # distinct codes: equality in the model means "the same code"
            code = random_code(n)
        self.issued.add(code)
        return code

    def _service(self):
        return make_service(self.clock, self.outbox, make_code=self._make_code, **LIMITS)

    # ------------------------------------------------------------- rules
    @rule(phone=st.sampled_from(PHONES), ip=st.sampled_from(IPS), deliver=st.sampled_from([True, True, True, False]))
    def send(self, phone, ip, deliver):
        now, m, cfg = self.clock.now, self.phones[phone], self.service.settings
        shards = min(8, cfg.sends_global_per_hour)
        if m.resend_at > now:
            expected = "resend_cooldown"
        elif len(recent(m.sends, now)) >= cfg.sends_per_phone_per_hour:
            expected = "send_phone"
        elif sum(1 for t in self.ip_sends[ip] if t // 3600 == now // 3600) >= cfg.sends_per_ip_per_hour:
            expected = "send_ip"
        elif self.global_sends[int(now // 3600)] >= (cfg.sends_global_per_hour // shards) * shards:
            expected = "send_global"
        else:
            expected = "sent" if deliver else "delivery_failed"
        self.outbox.fail = not deliver
        before = len(self.outbox.messages)
        try:
            self.service.send(phone, "sms", "en", ip)
            actual = "sent"
        except RateLimited as exc:
            actual = exc.data["limit"]
            assert exc.retry_after >= 1
        except SmsDeliveryFailed:
            actual = "delivery_failed"
        finally:
            self.outbox.fail = False
        STATS[f"send:{actual}"] += 1
        assert actual == expected, (actual, expected)
        if actual == "sent":
            code = code_in(self.outbox.messages[-1][1])
            assert len(self.outbox.messages) == before + 1
            if m.code is not None:
                m.superseded.append(m.code)
            m.code, m.state, m.attempts = code, "active", 0
            m.expires_at = now + cfg.code_ttl_seconds
            m.resend_at = now + cfg.resend_cooldown_seconds
            m.sends.append(now)
            self.ip_sends[ip].append(now)
            self.global_sends[int(now // 3600)] += 1
        else:
            assert len(self.outbox.messages) == before  # refused or undone: nothing usable left

    def _verify(self, phone: str, code: str, kind: str) -> None:
        now, m, cfg = self.clock.now, self.phones[phone], self.service.settings
        if m.code is None or m.state != "active" or now >= m.expires_at:
            expected = ("code_expired", None)
        elif m.attempts >= cfg.max_attempts_per_code:
            expected = ("too_many_attempts", None)
        elif len(recent(m.failures, now)) >= cfg.failures_per_phone_per_hour:
            expected = ("too_many_attempts", None)
        elif code == m.code:
            expected = ("ok", None)
        else:
            remaining = min(cfg.max_attempts_per_code - (m.attempts + 1),
                            cfg.failures_per_phone_per_hour - (len(recent(m.failures, now)) + 1))
            expected = ("invalid_code", max(0, remaining))
        try:
            self.service.verify(phone, code, "192.0.2.1")
            actual = ("ok", None)
        except InvalidCode as exc:
            actual = ("invalid_code", exc.data["attempts_remaining"])
        except CodeExpired:
            actual = ("code_expired", None)
        except TooManyAttempts as exc:
            actual = ("too_many_attempts", None)
            assert exc.retry_after >= 1
        STATS[f"verify_{kind}:{actual[0]}"] += 1
        # Invariants stated directly, before the model comparison that implies them.
        if actual[0] == "ok":
            assert code not in m.used, "single use: a code succeeded twice"
            assert now < m.expires_at, "a code succeeded at or after its expiry"
            assert code not in m.superseded, "a superseded code was accepted"
        assert actual == expected, (kind, actual, expected)
        if actual[0] == "ok":
            m.state = "used"
            m.used.add(code)
        elif actual[0] == "invalid_code":
            m.attempts += 1
            m.failures.append(now)
            m.failure_times.append(now)
            m.wrong_per_code[m.code] += 1

    @rule(phone=st.sampled_from(PHONES))
    def verify_right(self, phone):
        m = self.phones[phone]
        if m.code is not None:
            self._verify(phone, m.code, "right")

    @rule(phone=st.sampled_from(PHONES), guess=st.integers(0, 999_999))
    def verify_wrong(self, phone, guess):
        self._verify(phone, f"{guess:06d}", "wrong")

    @precondition(lambda self: any(m.superseded for m in self.phones.values()))
    @rule(data=st.data())
    def verify_superseded(self, data):
        phone = data.draw(st.sampled_from([p for p, m in self.phones.items() if m.superseded]))
        self._verify(phone, data.draw(st.sampled_from(self.phones[phone].superseded)), "superseded")

    @precondition(lambda self: any(m.used for m in self.phones.values()))
    @rule(data=st.data())
    def verify_used_again(self, data):
        phone = data.draw(st.sampled_from([p for p, m in self.phones.items() if m.used]))
        self._verify(phone, data.draw(st.sampled_from(sorted(self.phones[phone].used))), "used_again")

    @rule(
        seconds=st.sampled_from([1, 30, 59, 60, 61, 240, 299, 300, 301, 600, 3599, 3600, 3601]),
        restart=st.sampled_from([False, False, False, False, True]),
    )
    def advance(self, seconds, restart):
        STATS["advance"] += 1
        self.clock.advance(seconds)
        if restart:
            self.restart()

    def restart(self):
        """A new instance: every in-memory cache dropped, a new service; all state is in Firestore."""
        STATS["restart"] += 1
        runtime.reset()
        self.service = self._service()

    # -------------------------------------------------------- invariants
    @invariant()
    def stored_state_matches_the_model(self):
        if not hasattr(self, "service"):
            return
        for phone, m in self.phones.items():
            doc = store.client().document(f"otp_codes/{self.service.phone_key(phone)}").get().to_dict()
            if m.code is None:
                assert doc is None
                continue
            assert doc["state"] == m.state and doc["attempts"] == m.attempts
            assert math.isclose(doc["expires_at"].timestamp(), m.expires_at)
            assert m.code not in str(doc) and phone not in str(doc)  # no plaintext at rest
            for _code, wrong in m.wrong_per_code.items():
                assert wrong <= self.service.settings.max_attempts_per_code, "attempt budget per code exceeded"
            assert all(
                len([t for t in m.failure_times if s <= t < s + WINDOW]) <= self.service.settings.failures_per_phone_per_hour
                for s in m.failure_times
            ), "more wrong codes in an hour than the per-phone budget"


def run_machine(stack, firestore_emulator, size, figures, *, derandomize: bool) -> None:
    OtpMachine.emulator = firestore_emulator
    STATS.clear()
    run_state_machine_as_test(
        OtpMachine,
        settings=settings(
            max_examples=size.sm_examples,
            stateful_step_count=size.sm_steps,
            deadline=None,
            derandomize=derandomize,
            database=None,
            suppress_health_check=list(HealthCheck),
            print_blob=True,
        ),
    )
    assert STATS["verify_right:ok"] > 0 and STATS["verify_wrong:invalid_code"] > 0
    # A restart happens inside an `advance` step: count the step once.
    steps = sum(v for k, v in STATS.items() if k != "restart")
    figures("state_machine", {
        "examples": size.sm_examples, "max_steps_per_example": size.sm_steps, "steps_run": steps,
        "actions": dict(sorted(STATS.items())),
        "restart_model": "runtime.reset() + a new OtpService (in-process)",
    })


def test_state_machine_small(stack, firestore_emulator, size, figures):
    run_machine(stack, firestore_emulator, size, figures, derandomize=True)


@pytest.mark.prove
def test_state_machine(stack, firestore_emulator, size, figures):
    run_machine(stack, firestore_emulator, size, figures, derandomize=False)
