"""Load: one instance of each function, N concurrent users, a fixed time, on loopback only.

Each virtual user (an asyncio task over aiohttp) loops until the time is up:
send a code to a fresh phone, sometimes guess wrong first, then submit the
right code (half the time twice at once, to race the single-use write), and
now and then sign in with a password. Codes are read where a phone would get
them: at the SMS provider (the real Twilio SDK -> a recording proxy -> Prism
serving Twilio's contract).

Accounting, from both ends: every 202 is exactly one message at the provider
(nothing lost, nothing doubled there); every code submitted correctly verified
exactly once (one 200 per code, whatever the duplicates); every token is
distinct; errors are counted by status. The run's caps are raised (per-IP and
global) so it measures throughput and consistency, not the limits proven in
test_sms_pumping.py.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter, defaultdict

import aiohttp
import pytest

from otplogin import passwords, runtime, users
from tests.prove.conftest import code_in
from tests.prove.helpers import percentile
from tests.support.functions import FunctionProcess
from tests.support.prism import RecordingProxy

PASSWORD = "correct horse battery staple"

RAISED = {"OTP_SENDS_PER_IP_PER_HOUR": "100000", "OTP_SENDS_GLOBAL_PER_HOUR": "10000000",
          "GUARD_CLIENT_FREE_PER_HOUR": "100000", "GUARD_CLIENT_MAX_PER_HOUR": "10000000",
          "GUARD_RANGE_FREE_PER_HOUR": "100000", "GUARD_COUNTRY_FREE_PER_HOUR": "1000000",
          "GUARD_RANGE_CAP_PERCENT": "100"}


class Provider:
    """Codes by recipient, from the recording proxy's requests."""

    def __init__(self, proxy: RecordingProxy) -> None:
        self.proxy = proxy

    def codes(self, phone: str) -> list[str]:
        with self.proxy.lock:
            bodies = [r.form.get("Body", [""])[0] for r in self.proxy.requests if r.form.get("To", [""])[0] == phone]
        return [code_in(b) for b in bodies]


async def run_load(urls: dict[str, str], provider: Provider, users_n: int, seconds: float) -> dict:
    statuses: dict[str, Counter] = defaultdict(Counter)
    latencies: dict[str, list[float]] = defaultdict(list)
    sent_phones: list[str] = []
    verified: Counter = Counter()  # code -> number of 200 answers
    submitted_right: list[tuple[str, str]] = []
    tokens: list[str] = []
    failures: list[str] = []
    stop_at = time.monotonic() + seconds

    async def call(session, name: str, body: dict, ip: str) -> tuple[int, dict]:
        started = time.monotonic()
        try:
            async with session.post(urls[name], json=body, headers={"X-Forwarded-For": ip}) as r:
                data = await r.json(content_type=None)
                status = r.status
        except (TimeoutError, aiohttp.ClientError) as exc:
            statuses[name][type(exc).__name__] += 1
            return 0, {}
        latencies[name].append(time.monotonic() - started)
        statuses[name][str(status)] += 1
        return status, data

    async def user(u: int, session) -> None:
        rng = random.Random(u)
        ip = f"198.18.{u // 250}.{u % 250 + 1}"
        it = 0
        while time.monotonic() < stop_at and it < 10_000:
            it += 1
            if rng.random() < 0.08:
                status, body = await call(session, "login", {"email": "load@example.cd", "password": PASSWORD}, ip)
                if status == 200:
                    tokens.append(body["access_token"])
                elif status != 0:
                    failures.append(f"login {status} {body}")
                continue
            phone = f"+24381{u:03d}{it:04d}"
            status, body = await call(session, "send_otp", {"phone": phone, "locale": "fr"}, ip)
            if status != 202:
                failures.append(f"send {status} {body}")
                continue
            sent_phones.append(phone)
            codes = provider.codes(phone)
            if len(codes) != 1:
                failures.append(f"{len(codes)} messages for one 202")
                continue
            code = codes[0]
            if rng.random() < 0.25:
                wrong = f"{(int(code) + 1) % 1_000_000:06d}"
                status, body = await call(session, "verify_otp", {"phone": phone, "code": wrong}, ip)
                if status != 401 or body["error"]["code"] != "invalid_code":
                    failures.append(f"wrong code answered {status} {body}")
            copies = 2 if rng.random() < 0.5 else 1
            submitted_right.append((phone, code))
            answers = await asyncio.gather(*(call(session, "verify_otp", {"phone": phone, "code": code}, ip)
                                             for _ in range(copies)))
            for status, body in answers:
                if status == 200:
                    verified[(phone, code)] += 1
                    tokens.append(body["access_token"])
                elif not (status == 401 and body.get("error", {}).get("code") == "code_expired"):
                    failures.append(f"right code answered {status} {body}")

    timeout = aiohttp.ClientTimeout(total=60)
    # Drop idle connections before gunicorn does (its keep-alive is 2 s), so a request never races a server-side close.
    connector = aiohttp.TCPConnector(limit=users_n * 2, keepalive_timeout=1.0)
    started = time.monotonic()
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        await asyncio.gather(*(user(u, session) for u in range(users_n)))
    wall = time.monotonic() - started

    requests_total = sum(sum(c.values()) for c in statuses.values())
    lost = [pc for pc in submitted_right if verified[pc] == 0]
    doubled = [pc for pc in submitted_right if verified[pc] > 1]
    return {
        "users": users_n,
        "seconds": seconds,
        "wall_seconds": round(wall, 1),
        "requests": requests_total,
        "requests_per_second": round(requests_total / wall, 1),
        "statuses": {name: dict(sorted(c.items())) for name, c in sorted(statuses.items())},
        "latency_seconds": {
            name: {"p50": round(percentile(v, 50), 3), "p95": round(percentile(v, 95), 3),
                   "p99": round(percentile(v, 99), 3), "max": round(max(v), 3)}
            for name, v in sorted(latencies.items()) if v
        },
        "codes_sent": len(sent_phones),
        "messages_at_provider": sum(len(provider.codes(p)) for p in sent_phones),
        "codes_submitted_correctly": len(submitted_right),
        "verified_exactly_once": sum(1 for pc in submitted_right if verified[pc] == 1),
        "lost": len(lost),
        "doubled": len(doubled),
        "tokens": len(tokens),
        "distinct_tokens": len(set(tokens)),
        "unexpected_answers": len(failures),
        "unexpected_examples": failures[:5],
    }


def check(result: dict) -> None:
    assert result["lost"] == 0 and result["doubled"] == 0, result
    assert result["verified_exactly_once"] == result["codes_submitted_correctly"] > 0
    assert result["messages_at_provider"] == result["codes_sent"]
    assert result["distinct_tokens"] == result["tokens"]
    assert result["unexpected_answers"] == 0, result["unexpected_examples"]
    for name, counts in result["statuses"].items():
        bad = {k: v for k, v in counts.items() if not k.isdigit() or int(k) >= 500}
        assert not bad, (name, bad)


@pytest.mark.prove
def test_load_send_and_verify_one_instance_each(stack, prism, tmp_path, size, figures):
    users.write_canary(runtime.pii_keyring())
    users.create(code="LOAD0001", email="load@example.cd", password_hash=passwords.hash_password(PASSWORD),
                 role="user", keyring=runtime.pii_keyring(), pii={"phone": None, "address": None, "whatsapp": None},
                 mfa_enabled=False)
    procs = []
    with RecordingProxy(prism.base_url) as proxy:
        # The load is correctness under concurrency, not abuse: every cap and the send guard's free
        # allowances (every virtual user shares one address and a few number blocks) are raised.
        env = stack | {"SMS_PROVIDER": "twilio", "TWILIO_API_BASE": proxy.base_url, **RAISED,
                       "LOGINS_PER_IP_PER_HOUR": "1000000"}
        try:
            for name in ("send_otp", "verify_otp", "login"):
                procs.append(FunctionProcess(name, env, log_path=tmp_path / f"{name}.log").start())
            urls = {p.name: p.url for p in procs}
            result = asyncio.run(run_load(urls, Provider(proxy), size.load_users, size.load_seconds))
        finally:
            for p in procs:
                p.stop()
    result["instances_per_function"] = 1
    result["gunicorn_threads_per_instance"] = "functions-framework default (4 x CPUs)"
    result["caps_raised_for_the_run"] = {k: int(v) for k, v in RAISED.items()}
    (tmp_path / "load.json").write_text(json.dumps(result, indent=2))
    check(result)
    figures("load", result)
