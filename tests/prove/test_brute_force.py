"""Brute force: one phone, many IPs, an injected clock, a simulated day of guessing.

The attacker asks for a new code whenever the limits allow it (a fresh IP for
every request, so per-IP caps never help), then guesses distinct random codes
until refused, then jumps the clock to the first moment something is allowed
again (the `Retry-After` it was given). Against a uniform code of n digits,
k distinct guesses on one code succeed with probability k / 10^n, so by the
union bound the chance of success in any hour is at most
(guesses the server compared in that hour) / 10^n. The design target is 1e-5
per phone per hour; the test fails above it.

Only guesses the server compared count, and the suite checks that refused
ones were not compared: each time a guess is refused with
`too_many_attempts`, the *right* code is submitted too and must be refused
the same way. The compare calls are also counted directly (the module's
`hmac.compare_digest`), and must equal the answered guesses.

A negative control runs the same attacker with the per-phone failure cap
lifted (the Kratos per-flow loophole: 5 guesses per code times 5 codes an
hour): the bound must then exceed the target, or the test could not see it.
"""

from __future__ import annotations

import random
import types
from concurrent.futures import ThreadPoolExecutor

import pytest

from otplogin import otp as otp_module
from otplogin import store
from otplogin.errors import CodeExpired, InvalidCode, RateLimited, TooManyAttempts, Unavailable
from tests.prove.helpers import Deadline, make_service, max_in_window

PHONE = "+243812345678"
TARGET_PER_HOUR = 1e-5


class CountingHmac:
    """Stands in for the `hmac` module inside otplogin.otp: counts constant-time compares."""

    def __init__(self) -> None:
        import hmac

        self._hmac = hmac
        self.new = hmac.new
        self.compares = 0

    def compare_digest(self, a, b) -> bool:
        self.compares += 1
        return self._hmac.compare_digest(a, b)


@pytest.fixture
def counting_hmac(monkeypatch):
    counter = CountingHmac()
    monkeypatch.setattr(otp_module, "hmac", types.SimpleNamespace(new=counter.new, compare_digest=counter.compare_digest))
    return counter


def attack(service, clock, outbox, *, hours: int, max_ops: int, deadline: Deadline, seed: int) -> dict:
    """One phone, a simulated `hours` of guessing; returns what happened."""
    rng = random.Random(seed)
    n = service.settings.code_length
    start = clock.now
    end = start + hours * 3600
    guess_times: list[float] = []
    sends = refused_sends = refused_guesses = expired = ops = successes = probes = 0
    guessed: set[str] = set()
    ip = 0
    while clock.now < end and ops < max_ops and deadline:
        waits: list[float] = []
        ip += 1
        ops += 1
        try:
            service.send(PHONE, "sms", "en", f"198.18.{ip // 250}.{ip % 250 + 1}")
            sends += 1
            guessed = set()
            waits.append(service.settings.resend_cooldown_seconds)
        except RateLimited as exc:
            refused_sends += 1
            waits.append(exc.retry_after)
        while ops < max_ops:
            ops += 1
            guess = f"{rng.randrange(10**n):0{n}d}"
            while guess in guessed:
                guess = f"{rng.randrange(10**n):0{n}d}"
            guessed.add(guess)
            try:
                service.verify(PHONE, guess, f"198.19.{ops // 250 % 250}.{ops % 250 + 1}")
            except InvalidCode:
                guess_times.append(clock.now)
                continue
            except TooManyAttempts as exc:
                refused_guesses += 1
                waits.append(exc.retry_after)
                # Refused means not compared: the right code is refused the same way.
                if outbox.messages and outbox.messages[-1][0] == PHONE:
                    probes += 1
                    with pytest.raises(TooManyAttempts):
                        service.verify(PHONE, outbox.codes_for(PHONE)[-1], "198.19.255.1")
                    ops += 1
                break
            except CodeExpired:
                expired += 1
                break
            successes += 1  # a lucky guess (probability ~1e-6 each)
            guess_times.append(clock.now)
            break
        clock.advance(max(1.0, min(waits)) if waits else 1.0)
    simulated = clock.now - start
    worst_hour = max_in_window(guess_times)
    return {
        "simulated_hours": round(simulated / 3600, 2),
        "operations": ops,
        "codes_obtained": sends,
        "sends_refused": refused_sends,
        "guesses_compared": len(guess_times),
        "guesses_refused": refused_guesses,
        "refused_then_right_code_also_refused": probes,
        "no_active_code": expired,
        "lucky_successes": successes,
        "max_guesses_in_any_hour": worst_hour,
        "bound_per_hour": worst_hour / 10**n,
        "bound_per_day": len(guess_times) / 10**n * (24 * 3600 / max(simulated, 1)),
        "code_digits": n,
        "stopped_by_wall_clock": deadline.hit,
    }


def run_brute_force(stack, clock, outbox, counting_hmac, size, figures, section: str) -> None:
    service = make_service(clock, outbox)
    deadline = Deadline(size.deadline)
    result = attack(service, clock, outbox, hours=size.brute_hours, max_ops=size.brute_max_ops, deadline=deadline,
                    seed=20260101)
    result["server_compare_calls"] = counting_hmac.compares
    result["limits"] = {
        "attempts_per_code": service.settings.max_attempts_per_code,
        "failures_per_phone_per_hour": service.settings.failures_per_phone_per_hour,
        "sends_per_phone_per_hour": service.settings.sends_per_phone_per_hour,
        "resend_cooldown_seconds": service.settings.resend_cooldown_seconds,
    }
    result["target_per_hour"] = TARGET_PER_HOUR

    # Negative control: the same attacker with the per-phone failure cap lifted.
    stack_clock_start = clock.now + 10 * 24 * 3600
    clock.now = stack_clock_start
    loose = make_service(clock, outbox, failures_per_phone_per_hour=100)
    control = attack(loose, clock, outbox, hours=min(2, size.brute_hours), max_ops=size.brute_max_ops,
                     deadline=Deadline(size.deadline), seed=7)
    result["control_without_phone_cap"] = {
        k: control[k] for k in ("simulated_hours", "guesses_compared", "max_guesses_in_any_hour", "bound_per_hour")
    }

    assert not deadline.hit or result["simulated_hours"] >= 1, "too slow to simulate even one hour"
    assert result["simulated_hours"] >= min(size.brute_hours, 1)
    # The design target, with the real limits.
    assert result["bound_per_hour"] <= TARGET_PER_HOUR, result
    assert result["max_guesses_in_any_hour"] <= service.settings.failures_per_phone_per_hour
    # Every counted guess was compared once, and nothing refused was compared.
    assert counting_hmac.compares >= result["guesses_compared"]
    assert result["refused_then_right_code_also_refused"] >= 1
    # The attacker really tried: it got codes and used its whole budget.
    assert result["codes_obtained"] >= 5 * min(size.brute_hours, 24) - 5
    assert result["guesses_compared"] >= 10 * min(size.brute_hours, 24) - 10
    # The control sees the loophole the per-phone cap closes.
    assert result["control_without_phone_cap"]["bound_per_hour"] > TARGET_PER_HOUR
    figures(section, result)


def test_brute_force_small(stack, clock, outbox, counting_hmac, size, figures):
    run_brute_force(stack, clock, outbox, counting_hmac, size, figures, "brute_force")


@pytest.mark.prove
def test_brute_force_simulated_day(stack, clock, outbox, counting_hmac, size, figures):
    run_brute_force(stack, clock, outbox, counting_hmac, size, figures, "brute_force")


@pytest.mark.prove
def test_parallel_guessing_never_exceeds_the_hourly_budget(stack, clock, outbox, size, figures):
    """Many threads guess at once, across several codes, inside one simulated hour."""
    service = make_service(clock, outbox)
    limit = service.settings.failures_per_phone_per_hour
    outcomes: dict[str, int] = {}
    threads, per_thread = 8, 3

    def guesser(seed: int) -> list[str]:
        rng = random.Random(seed)
        seen = []
        for _ in range(per_thread):
            try:
                service.verify(PHONE, f"{rng.randrange(10**6):06d}", f"198.20.{seed % 250}.{len(seen) + 1}")
                seen.append("success")
            except InvalidCode:
                seen.append("invalid_code")
            except TooManyAttempts:
                seen.append("too_many_attempts")
            except CodeExpired:
                seen.append("code_expired")
            except Unavailable:
                seen.append("unavailable")
        return seen

    rounds = max(1, size.brute_parallel_rounds)
    for r in range(rounds):
        service.send(PHONE, "sms", "en", f"198.51.100.{r + 1}")
        with ThreadPoolExecutor(threads) as pool:
            for seen in pool.map(guesser, range(r * threads, (r + 1) * threads)):
                for outcome in seen:
                    outcomes[outcome] = outcomes.get(outcome, 0) + 1
        clock.advance(service.settings.resend_cooldown_seconds + 1)
    compared = outcomes.get("invalid_code", 0) + outcomes.get("success", 0)
    key = service.phone_key(PHONE)
    failures = store.client().document(f"otp_counters/fail_phone:{key}").get().to_dict()
    assert compared <= limit
    assert len(failures["events"]) == outcomes.get("invalid_code", 0)
    figures("brute_force_parallel", {
        "threads": threads, "guesses_per_thread": per_thread, "rounds_within_one_hour": rounds,
        "attempts": threads * per_thread * rounds, "outcomes": outcomes, "compared": compared,
        "hourly_budget": limit, "failure_events_stored": len(failures["events"]),
    })
