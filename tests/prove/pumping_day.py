"""A simulated day of send_otp traffic on the emulator: real users, and one attack.

Events (a user asking for a code, typing it, an attacker's request) are played
in time order on an injected clock, through the real OtpService (Firestore
emulator, local Secret Manager), so every decision is the guard's own on the
documents it wrote. What the SMS provider receives is recorded; every write to
Firestore is recorded with its simulated time, so the highest write rate on any
one document is measured, not assumed.

Real users: distinct addresses and carrier-grade NAT addresses shared by many,
new numbers and returning ones (who verified in the days before), spread over
the number blocks of both countries (a few inside the attacked block); most of
them type their code. A user refused with a challenge solves it (the browser
widget would) and asks again; one refused with a short Retry-After asks again
after it. Served = a code on the first or the second try.

Attacks (the attacker never verifies, never solves a challenge):
- burst: a burst on one block (CD, Vodacom, 8123xxxxx) every few hours, each
  request from a new address;
- spread: numbers of every block of every allowed country, all day, from a
  pool of addresses;
- slow: a few addresses, one request each every few minutes, all day.
"""

from __future__ import annotations

import bisect
import dataclasses
import heapq
import itertools
import random
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import phonenumbers

from otplogin.errors import ApiError, ChallengeRequired, RateLimited, Unavailable
from otplogin.guard import Proof
from otplogin.otp import OtpService
from tests.support.fakes import code_in

ATTACKED_BLOCK = "8123"  # CD, Vodacom: +243 8123 xxxxx
HOUR = 3600
PREFIXES = {"CD": ["80", "81", "82", "83", "84", "85", "89", "90", "97", "98", "99"], "MA": ["6", "7"]}
LENGTH = {"CD": 9, "MA": 9}
DIAL = {"CD": 243, "MA": 212}
RETRY_WITHIN = 600  # a real user asks again after a Retry-After up to 10 minutes, not longer


@dataclass(frozen=True)
class DayPlan:
    hours: int
    real_users: int
    cap: int
    burst_every_hours: int
    burst_requests: int
    burst_rate: float  # requests per simulated second
    spread_requests: int
    slow_ips: int
    slow_interval: float
    returning_share: float = 0.5
    cgnat_share: float = 0.4
    cgnat_ips: int = 3
    attacked_block_users: float = 0.03  # share of real users whose number is in the attacked block
    verify_probability: float = 0.9
    overrides: dict[str, Any] = field(default_factory=dict)  # settings for this size


@dataclass
class User:
    phone: str
    ip: str
    returning: bool
    in_attacked_block: bool
    tries: int = 0
    served_on: int | None = None
    challenged: bool = False
    passed_challenge: bool = False
    outcomes: list[str] = field(default_factory=list)


def _mobile(rng: random.Random, country: str, prefix: str | None = None) -> str:
    """A random valid mobile number of `country` (of the block `prefix` when given)."""
    for _ in range(1000):
        head = prefix if prefix is not None else rng.choice(PREFIXES[country])
        national = head + "".join(str(rng.randrange(10)) for _ in range(LENGTH[country] - len(head)))
        number = phonenumbers.PhoneNumber(country_code=DIAL[country], national_number=int(national))
        if phonenumbers.is_valid_number(number) and phonenumbers.number_type(number) in (
            phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
        ):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    raise AssertionError(f"no valid mobile for {country} {prefix}")


def _ip(rng: random.Random, first: int) -> str:
    return f"{first}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def population(plan: DayPlan, rng: random.Random) -> list[User]:
    cgnat = [f"41.243.{i}.1" for i in range(plan.cgnat_ips)]
    users, seen = [], set()
    while len(users) < plan.real_users:
        in_block = rng.random() < plan.attacked_block_users
        country = "CD" if in_block or rng.random() < 0.6 else "MA"
        phone = _mobile(rng, country, ATTACKED_BLOCK if in_block else None)
        if phone in seen:
            continue
        seen.add(phone)
        ip = rng.choice(cgnat) if rng.random() < plan.cgnat_share else _ip(rng, rng.choice((102, 105, 154, 196)))
        users.append(User(phone, ip, rng.random() < plan.returning_share, in_block))
    return users


def attack_events(kind: str, plan: DayPlan, rng: random.Random) -> list[tuple[float, str, str]]:
    """(time, phone, ip) of every attacker request over the day."""
    day = plan.hours * HOUR
    events: list[tuple[float, str, str]] = []
    if kind == "burst":
        start = 0.5 * HOUR
        while start < day:
            for i in range(plan.burst_requests):
                events.append((start + i / plan.burst_rate, _mobile(rng, "CD", ATTACKED_BLOCK), _ip(rng, 100)))
            start += plan.burst_every_hours * HOUR
    elif kind == "spread":
        pool = [_ip(rng, 100) for _ in range(max(10, plan.spread_requests // 8))]
        for _ in range(plan.spread_requests):
            country = rng.choice(sorted(PREFIXES))
            events.append((rng.uniform(0, day), _mobile(rng, country), rng.choice(pool)))
    elif kind == "slow":
        for n in range(plan.slow_ips):
            ip, t = f"198.51.100.{n + 1}", rng.uniform(0, plan.slow_interval)
            while t < day:
                events.append((t, _mobile(rng, rng.choice(sorted(PREFIXES))), ip))
                t += plan.slow_interval * rng.uniform(0.8, 1.2)
    elif kind != "none":
        raise ValueError(kind)
    return sorted(events)


class WriteRecorder:
    """Every document a committed batch wrote, with the simulated time (wraps `store.client`)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.times: dict[str, list[float]] = defaultdict(list)

    def wrap(self, db: Any) -> Any:
        recorder = self

        class Batch:
            def __init__(self, inner: Any) -> None:
                self.inner, self.paths = inner, []

            def _note(self, ref: Any) -> None:
                self.paths.append(ref.path)

            def create(self, ref: Any, *a: Any, **k: Any) -> Any:
                self._note(ref)
                return self.inner.create(ref, *a, **k)

            def set(self, ref: Any, *a: Any, **k: Any) -> Any:
                self._note(ref)
                return self.inner.set(ref, *a, **k)

            def update(self, ref: Any, *a: Any, **k: Any) -> Any:
                self._note(ref)
                return self.inner.update(ref, *a, **k)

            def delete(self, ref: Any, *a: Any, **k: Any) -> Any:
                self._note(ref)
                return self.inner.delete(ref, *a, **k)

            def commit(self, *a: Any, **k: Any) -> Any:
                result = self.inner.commit(*a, **k)
                now = recorder.clock()
                for path in self.paths:
                    recorder.times[path].append(now)
                return result

        class Client:
            def __getattr__(self, name: str) -> Any:
                return getattr(db, name)

            def batch(self) -> Batch:
                return Batch(db.batch())

        return Client()

    def highest_rate(self, window: float) -> tuple[float, str]:
        """The most writes any one document took in a window of `window` simulated seconds, per second."""
        best, where = 0, ""
        for path, times in self.times.items():
            ordered = sorted(times)
            for i, start in enumerate(ordered):
                n = bisect.bisect_right(ordered, start + window - 1e-9) - i
                if n > best:
                    best, where = n, path
        collection, _, name = where.partition("/")
        return best / window, name.split(":", 1)[0] if ":" in name else f"{collection} (one phone's)"


class Provider:
    """The SMS provider: records every message (who, when)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.messages: list[tuple[float, str, str]] = []

    def send(self, to: str, body: str, channel: str) -> None:
        self.messages.append((self.clock(), to, body))

    def last_code(self, phone: str) -> str:
        return code_in(next(b for _, to, b in reversed(self.messages) if to == phone))


def solve(challenge: dict[str, Any]) -> str:
    from altcha import Challenge, Payload, solve_challenge

    parsed = Challenge.from_dict(challenge["altcha"])
    solution = solve_challenge(parsed, timeout=10)
    assert solution is not None
    return Payload(parsed, solution).to_base64()


def run_day(make: Callable[..., OtpService], clock: Any, plan: DayPlan, attack: str, *, seed: int,
            guard: bool = True, recorder: WriteRecorder | None = None) -> dict[str, Any]:
    rng = random.Random(seed)
    provider = Provider(clock)
    overrides = {"sends_global_per_hour": plan.cap, "guard_enabled": guard} | plan.overrides
    if guard:
        # The proof of work is made cheap here: the run measures the guard's decisions, not CPU
        # (a browser pays GUARD_ALTCHA_COST x the counter; the attacker here never solves one).
        overrides |= {"guard_challenges": frozenset({"altcha"}), "guard_altcha_cost": 1, "guard_altcha_max_counter": 20}
    service = make(provider, **overrides)
    users = population(plan, rng)
    day_start = clock.now = (int(clock.now // HOUR) + 1) * HOUR  # the day's hours are the counters' clock hours
    # The days before: returning users verified their number (from their usual address).
    warm = [u for u in users if u.returning]
    clock.now = day_start - 2 * 86400
    for u in warm:
        service.send(u.phone, "sms", "fr", u.ip)
        clock.advance(20)
        service.verify(u.phone, provider.last_code(u.phone), u.ip)
        clock.advance(10)
    warm_texts = len(provider.messages)
    clock.now = day_start
    day = plan.hours * HOUR
    seq = itertools.count()
    queue: list[tuple[float, int, str, Any]] = []
    for u in users:
        heapq.heappush(queue, (day_start + rng.uniform(0, day), next(seq), "real", u))
    for t, phone, ip in attack_events(attack, plan, rng):
        heapq.heappush(queue, (day_start + t, next(seq), "attack", (phone, ip)))
    attacker: Counter[str] = Counter()
    attacker_texts: list[float] = []
    server_errors: Counter[str] = Counter()
    attacker_phones: set[str] = set()
    real_phones = {u.phone for u in users}
    while queue:
        t, _, kind, item = heapq.heappop(queue)
        clock.now = t
        if kind == "attack":
            phone, ip = item
            attacker_phones.add(phone)
            try:
                service.send(phone, "sms", "en", ip)
            except (RateLimited, ChallengeRequired) as exc:
                attacker[f"{exc.code}:{exc.data['limit']}"] += 1
            except Unavailable:
                server_errors["503"] += 1
            except ApiError as exc:
                attacker[exc.code] += 1
                if exc.status >= 500:
                    server_errors[str(exc.status)] += 1
            else:
                attacker["sent"] += 1
                attacker_texts.append(t)
            continue
        if kind == "verify":
            try:
                service.verify(item.phone, provider.last_code(item.phone), item.ip)
            except ApiError as exc:
                if exc.status >= 500:
                    server_errors[str(exc.status)] += 1
            continue
        u, proof = (item, None) if kind == "real" else item
        u.tries += 1
        try:
            service.send(u.phone, "sms", "fr", u.ip, proof=proof)
        except ChallengeRequired as exc:
            u.outcomes.append(f"challenge:{exc.data['limit']}")
            u.challenged = True
            if u.tries < 2:
                heapq.heappush(queue, (t + 2, next(seq), "retry", (u, Proof(altcha=solve(exc.data["challenge"])))))
            continue
        except RateLimited as exc:
            u.outcomes.append(f"limited:{exc.data['limit']}")
            if u.tries < 2 and (exc.retry_after or 0) <= RETRY_WITHIN:
                heapq.heappush(queue, (t + (exc.retry_after or 1), next(seq), "retry", (u, None)))
            continue
        except ApiError as exc:
            u.outcomes.append(exc.code)
            if exc.status >= 500:
                server_errors[str(exc.status)] += 1
            continue
        u.served_on = u.tries
        u.passed_challenge = proof is not None
        u.outcomes.append("sent")
        if rng.random() < plan.verify_probability:
            heapq.heappush(queue, (t + rng.uniform(15, 150), next(seq), "verify", u))
    return summarize(plan, users, provider, attacker, attacker_texts, server_errors, warm_texts, day_start,
                     attacker_phones, real_phones, recorder)


def _pct(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 2) if whole else 100.0


def summarize(plan: DayPlan, users: list[User], provider: Provider, attacker: Counter[str], attacker_texts: list[float],
              server_errors: Counter[str], warm_texts: int, day_start: float, attacker_phones: set[str],
              real_phones: set[str], recorder: WriteRecorder | None) -> dict[str, Any]:
    day_texts = [(t, to) for t, to, _ in provider.messages[warm_texts:]]
    per_hour = Counter(int((t - day_start) // HOUR) for t, _ in day_texts)
    attacker_per_hour = Counter(int((t - day_start) // HOUR) for t in attacker_texts)
    served = [u for u in users if u.served_on in (1, 2)]
    returning = [u for u in users if u.returning]
    new = [u for u in users if not u.returning]
    passed = [u for u in users if u.challenged and u.tries >= 2 and u.outcomes[-1] == "sent"]
    solved = [u for u in users if u.challenged and u.tries >= 2]
    block = [u for u in users if u.in_attacked_block]
    out: dict[str, Any] = {
        "simulated_hours": plan.hours,
        "hourly_cap": plan.cap,
        "real_users": len(users),
        "real_served_first_or_second_try_pct": _pct(len(served), len(users)),
        "real_served_first_try": sum(1 for u in users if u.served_on == 1),
        "real_served_second_try": sum(1 for u in users if u.served_on == 2),
        "real_not_served": len(users) - len(served),
        "returning_served_pct": _pct(sum(1 for u in returning if u in served), len(returning)),
        "new_served_pct": _pct(sum(1 for u in new if u in served), len(new)),
        "challenged_users": sum(1 for u in users if u.challenged),
        "challenge_solvers_served_pct": _pct(len(passed), len(solved)),
        "attacked_block_users_served": f"{sum(1 for u in block if u in served)} / {len(block)}",
        "cgnat_users_served": f"{sum(1 for u in users if u.ip.startswith('41.243.') and u in served)} / "
                              f"{sum(1 for u in users if u.ip.startswith('41.243.'))}",
        "not_served_outcomes": dict(Counter(" > ".join(u.outcomes) for u in users if u not in served)),
        "attacker_requests": sum(attacker.values()),
        "attacker_answers": dict(attacker),
        "attacker_texts": len(attacker_texts),
        "attacker_texts_max_per_hour": max(attacker_per_hour.values(), default=0),
        "attacker_texts_max_per_hour_pct_of_cap": _pct(max(attacker_per_hour.values(), default=0), plan.cap),
        "texts_total": len(day_texts),
        "texts_max_per_clock_hour": max(per_hour.values(), default=0),
        "texts_to_attacker_numbers": sum(1 for _, to in day_texts if to in attacker_phones and to not in real_phones),
        "server_errors_5xx": sum(server_errors.values()),
    }
    if recorder is not None:
        rate_1s, where_1s = recorder.highest_rate(1.0)
        rate_60s, where_60s = recorder.highest_rate(60.0)
        out["highest_writes_per_second_1s_window"] = {"rate": rate_1s, "document": where_1s}
        out["highest_writes_per_second_60s_window"] = {"rate": round(rate_60s, 3), "document": where_60s}
        out["documents_written"] = len(recorder.times)
    return out


def replace(plan: DayPlan, **changes: Any) -> DayPlan:
    return dataclasses.replace(plan, **changes)
