"""SMS pumping: bursts of send_otp over thousands of numbers from a few IPs.

The attacker's corpus (tests/prove/numbers.py) mixes sendable mobiles in the
allowed countries with foreign mobiles, landlines, premium-rate, toll-free,
shared-cost, VoIP, UAN, pager and personal numbers, and invalid input. Every
message is counted where it matters, at the SMS provider: the real Twilio SDK
talks to a recording proxy in front of Prism serving Twilio's own OpenAPI
contract. The count must stay within the per-IP and global caps, and only
numbers the oracle (`numbers.should_send`) accepts may ever reach it.

In-process runs use an injected clock to cover several simulated hours (bursts
every 5 minutes); the `prove` run also goes through real send_otp processes
over HTTP, with the left part of `X-Forwarded-For` randomized the way an
attacker would write it.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections import Counter, defaultdict

import phonenumbers
import pytest

from otplogin.errors import ApiError
from tests.prove.helpers import Deadline, make_service, max_in_window, twilio_sender
from tests.prove.numbers import corpus, describe, e164, should_send
from tests.support.prism import RecordingProxy

BURST_EVERY = 300  # simulated seconds between bursts


@pytest.fixture
def twilio(prism):
    with RecordingProxy(prism.base_url) as proxy:
        yield proxy


def pump(service, items, ip_for, clock, hours: int, deadline: Deadline) -> dict:
    bursts = hours * 3600 // BURST_EVERY
    per_burst = math.ceil(len(items) / bursts)
    start = clock.now
    sent: list[tuple[float, str, str]] = []  # (time, ip, phone)
    outcomes: dict[str, Counter] = defaultdict(Counter)
    done = 0
    for b in range(bursts):
        for i, (raw, category) in enumerate(items[b * per_burst:(b + 1) * per_burst]):
            if not deadline:
                break
            ip = ip_for(b * per_burst + i)
            try:
                service.send(raw, "sms", "en", ip)
            except ApiError as exc:
                outcomes[category][exc.code + (f":{exc.data['limit']}" if "limit" in exc.data else "")] += 1
            else:
                outcomes[category]["sent"] += 1
                sent.append((clock.now, ip, raw))
            done += 1
        clock.advance(BURST_EVERY)
    return {"sent": sent, "outcomes": outcomes, "requests": done, "start": start,
            "simulated_hours": round((clock.now - start) / 3600, 2)}


def check_and_summarize(run, twilio, items, *, per_ip: int, global_cap: int, shards: int = 8) -> dict:
    provider = list(twilio.requests)
    to_numbers = [r.form.get("To", [""])[0] for r in provider]
    sent = run["sent"]
    by_ip: dict[str, list[float]] = defaultdict(list)
    by_hour: Counter = Counter()
    by_ip_hour: Counter = Counter()
    for t, ip, _ in sent:
        by_ip[ip].append(t)
        by_hour[int(t // 3600)] += 1
        by_ip_hour[(ip, int(t // 3600))] += 1
    effective_global = (global_cap // min(shards, global_cap)) * min(shards, global_cap)
    summary = {
        "requests": run["requests"],
        "corpus": describe(items[: run["requests"]]),
        "simulated_hours": run["simulated_hours"],
        "accepted_202": len(sent),
        "reached_provider": len(provider),
        "provider_status": dict(Counter(r.status for r in provider)),
        "max_per_ip_in_any_hour": max((max_in_window(ts) for ts in by_ip.values()), default=0),
        "max_per_ip_in_a_clock_hour": max(by_ip_hour.values(), default=0),
        "max_per_clock_hour": max(by_hour.values(), default=0),
        "per_ip_cap": per_ip,
        "global_cap": global_cap,
        "global_cap_effective": effective_global,
        "ips": len(by_ip),
        "outcomes_by_category": {k: dict(v) for k, v in sorted(run["outcomes"].items())},
        "sent_to_disallowed": sum(1 for n in to_numbers if not should_send(n)),
    }
    # Every accepted send is exactly one provider request, and nothing else reached it.
    assert len(provider) == len(sent), summary
    assert sorted(to_numbers) == sorted(e164(phonenumbers.parse(p, None)) for _, _, p in sent)
    assert all(r.status == 201 for r in provider), summary["provider_status"]
    # Invalid and disallowed numbers send nothing.
    assert summary["sent_to_disallowed"] == 0
    for category, counts in run["outcomes"].items():
        if category != "allowed_mobile":
            assert counts.get("sent", 0) == 0, (category, counts)
    # Within the caps: per address and clock hour, and (sliding, two-bucket estimate) at most twice that.
    assert summary["max_per_ip_in_a_clock_hour"] <= per_ip
    assert summary["max_per_ip_in_any_hour"] <= 2 * per_ip
    assert summary["max_per_clock_hour"] <= effective_global
    return summary


def run_scenarios(stack, clock, twilio, size, figures, section):
    sender = twilio_sender(twilio.base_url)
    deadline = Deadline(size.deadline)
    items = corpus(size.pump_requests, seed=42)
    results = {}

    # A: four IPs (one of them sending half the traffic), the guard on: codes that are never
    # verified hold each address to its free allowance (GUARD_CLIENT_FREE_PER_HOUR).
    ips = ["203.0.113.7", "203.0.113.8", "198.51.100.9", "192.0.2.10"]
    service = make_service(clock, sender)
    per_ip = service.settings.guard_client_free_per_hour

    def few_ips(i: int) -> str:
        return ips[0] if i % 2 == 0 else ips[1 + i % 3]

    run = pump(service, items, few_ips, clock, size.pump_hours, deadline)
    results["few_ips"] = check_and_summarize(
        run, twilio, items, per_ip=per_ip, global_cap=service.settings.sends_global_per_hour,
    )
    assert results["few_ips"]["accepted_202"] <= len(ips) * per_ip * (size.pump_hours + 1)
    limited = sum(c.get("rate_limited:send_ip", 0) for c in run["outcomes"].values())
    assert limited > 0, "the per-IP cap was never reached: the run proves nothing"
    results["few_ips"]["refused_by_ip_cap"] = limited

    # B: many IPs, a low global cap, the guard off (its control): the plain project-wide wall binds.
    twilio.clear()
    clock.advance(24 * 3600)
    global_cap = 40
    service = make_service(clock, sender, sends_global_per_hour=global_cap, guard_enabled=False)
    run = pump(service, items, lambda i: f"100.64.{i // 200}.{i % 200 + 1}", clock, size.pump_hours, deadline)
    results["many_ips_global_cap"] = check_and_summarize(run, twilio, items, per_ip=service.settings.sends_per_ip_per_hour,
                                                         global_cap=global_cap)
    limited = sum(c.get("rate_limited:send_global", 0) for c in run["outcomes"].values())
    assert limited > 0, "the global cap was never reached: the run proves nothing"
    results["many_ips_global_cap"]["refused_by_global_cap"] = limited
    results["stopped_by_wall_clock"] = deadline.hit
    results["wall_seconds"] = round(deadline.elapsed, 1)
    figures(section, results)


def test_sms_pumping_small(stack, clock, twilio, size, figures):
    run_scenarios(stack, clock, twilio, size, figures, "sms_pumping")


@pytest.mark.prove
def test_sms_pumping_simulated_hours(stack, clock, twilio, size, figures):
    run_scenarios(stack, clock, twilio, size, figures, "sms_pumping")


def outcomes_limit(results: list[tuple[float, str, str, int, str]], limit: str) -> int:
    return sum(1 for r in results if r[4] == f"rate_limited:{limit}")


@pytest.mark.prove
def test_sms_pumping_over_http(stack, twilio, size, figures, tmp_path):
    """Real send_otp processes, concurrent bursts, spoofed left part of X-Forwarded-For."""
    import aiohttp

    from tests.support.functions import FunctionProcess

    # The global cap is set far above what the run can send, so the per-IP cap, counted by
    # the real (rightmost) client address, is what binds: a spoofed-left-entry bug fails it.
    global_cap, per_ip = 100_000, 20
    # The guard off: its flat per-address wall makes the address extraction's result exact.
    env = stack | {"SMS_PROVIDER": "twilio", "TWILIO_API_BASE": twilio.base_url, "GUARD_ENABLED": "false",
                   "OTP_SENDS_GLOBAL_PER_HOUR": str(global_cap), "OTP_SENDS_PER_IP_PER_HOUR": str(per_ip)}
    proc = FunctionProcess("send_otp", env, log_path=tmp_path / "send_otp.log").start()
    items = corpus(size.pump_http_requests, seed=7)
    attackers = ["203.0.113.50", "203.0.113.51", "198.51.100.52", "192.0.2.53", "192.0.2.54", "192.0.2.55"]
    rng = random.Random(3)
    results: list[tuple[float, str, str, int, str]] = []
    deadline = Deadline(size.deadline)

    async def one(session, sem, i, raw, category):
        ip = attackers[0] if i % 3 == 0 else attackers[1 + i % 5]
        forwarded = f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}, {ip}"
        async with sem:
            if not deadline:
                return
            async with session.post(proc.url, json={"phone": raw}, headers={"X-Forwarded-For": forwarded}) as r:
                body = await r.json(content_type=None)
                code = "sent" if r.status == 202 else body["error"]["code"] + (
                    f":{body['error']['limit']}" if "limit" in body["error"] else "")
                results.append((time.time(), ip, category, r.status, code))

    async def main():
        sem = asyncio.Semaphore(8)
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            await asyncio.gather(*(one(session, sem, i, raw, cat) for i, (raw, cat) in enumerate(items)))

    try:
        asyncio.run(main())
    finally:
        proc.stop()
    sent = [r for r in results if r[3] == 202]
    by_ip = Counter(r[1] for r in sent)
    by_hour = Counter(int(r[0] // 3600) for r in sent)
    statuses = Counter(r[3] for r in results)
    outcomes: dict[str, Counter] = defaultdict(Counter)
    for r in results:
        outcomes[r[2]][r[4]] += 1
    provider = list(twilio.requests)
    summary = {
        "requests": len(results), "corpus": describe(items), "concurrency": 8, "attacker_ips": len(attackers),
        "statuses": dict(statuses), "accepted_202": len(sent), "reached_provider": len(provider),
        "per_ip_cap": per_ip, "global_cap": global_cap, "max_per_ip": max(by_ip.values(), default=0),
        "clock_hours_touched": len(by_hour), "outcomes_by_category": {k: dict(v) for k, v in sorted(outcomes.items())},
        "sent_to_disallowed": sum(1 for r in provider if not should_send(r.form.get("To", [""])[0])),
        "wall_seconds": round(deadline.elapsed, 1), "stopped_by_wall_clock": deadline.hit,
    }
    assert len(provider) == len(sent)
    assert summary["sent_to_disallowed"] == 0
    assert all(c == "allowed_mobile" for _, _, c, s, _ in sent)
    assert max(by_ip.values(), default=0) <= per_ip * len(by_hour)
    # attackers[0] sends a third of the corpus, far above per_ip: the per-IP cap must have bound it.
    assert by_ip[attackers[0]] == per_ip * len(by_hour), by_ip
    assert outcomes_limit(results, "send_ip") > 0
    assert len(sent) <= global_cap * len(by_hour)
    assert statuses.get(500, 0) == 0 and statuses.get(502, 0) == 0
    figures("sms_pumping_http", summary)


# ------------------------------------------------------------------------ a simulated day: real users and attacks
ATTACKS = ("burst", "spread", "slow")


def day_runs(firestore_emulator, clock, size, monkeypatch) -> dict:
    """Each attack on a clean database with the guard on, then the burst with the guard off (the control)."""
    from otplogin import store
    from tests.prove.pumping_day import WriteRecorder, replace, run_day

    plan = size.day
    # The control needs only the first burst and the rest of its hour to show the failure.
    control = replace(plan, hours=min(plan.hours, 2), real_users=plan.real_users * min(plan.hours, 2) // plan.hours)
    results = {}
    for i, (attack, guard) in enumerate([(a, True) for a in ATTACKS] + [("burst", False)]):
        firestore_emulator.clear()
        recorder = WriteRecorder(clock)
        real = store.client()
        monkeypatch.setattr(store, "client", lambda real=real, recorder=recorder: recorder.wrap(real))
        clock.advance(7 * 86400)
        results[attack if guard else "control_burst_guard_off"] = run_day(
            lambda sender, **o: make_service(clock, sender, **o), clock, plan if guard else control, attack,
            seed=100 + i, guard=guard,
            recorder=recorder,
        )
        monkeypatch.setattr(store, "client", lambda real=real: real)
    return results


def check_day(results: dict, cap: int) -> None:
    """The goals. A missed one fails the test; the figures are recorded only after these pass."""
    for attack in ATTACKS:
        r = results[attack]
        where = f"{attack}: {r}"
        assert r["server_errors_5xx"] == 0, where
        assert r["texts_max_per_clock_hour"] <= cap, where  # the bill
        assert r["attacker_texts_max_per_hour"] <= 0.05 * cap, where
        assert r["highest_writes_per_second_60s_window"]["rate"] <= 1.0, where
        assert r["attacker_requests"] > 0 and r["real_users"] > 0
    for attack in ("burst", "slow"):  # concentrated: on one block, or from a few addresses
        assert results[attack]["real_served_first_or_second_try_pct"] >= 99.0, results[attack]
    spread = results["spread"]
    assert spread["returning_served_pct"] >= 99.0, spread
    assert spread["challenge_solvers_served_pct"] == 100.0, spread
    # The control: the walls of before, same burst. The run must see today's failure.
    control = results["control_burst_guard_off"]
    assert control["real_served_first_or_second_try_pct"] < 99.0, control
    assert control["attacker_texts_max_per_hour"] > 0.05 * cap, control


def test_simulated_day_small(stack, firestore_emulator, clock, size, figures, monkeypatch):
    results = day_runs(firestore_emulator, clock, size, monkeypatch)
    check_day(results, size.day.cap)
    figures("sms_pumping_day", results)


@pytest.mark.prove
def test_simulated_day(stack, firestore_emulator, clock, size, figures, monkeypatch):
    results = day_runs(firestore_emulator, clock, size, monkeypatch)
    check_day(results, size.day.cap)
    figures("sms_pumping_day", results)
