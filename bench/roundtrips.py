"""Round trips of each request outcome, counted on the wire (bench.counting), in-process."""

from __future__ import annotations

from collections import Counter

from bench import seed
from bench.counting import COUNTER, SCAN_RPCS, firestore_calls, secret_calls
from bench.inproc import Functions


def _count_twilio():
    """Count HTTP requests the library's Twilio client sends (wraps RewritingHttpClient.request)."""
    from otplogin.sms import twilio as sms_twilio

    counter = Counter()
    original = sms_twilio.RewritingHttpClient.request

    def counting(self, method, url, *args, **kwargs):
        counter["twilio_http"] += 1
        return original(self, method, url, *args, **kwargs)

    sms_twilio.RewritingHttpClient.request = counting
    return counter, lambda: setattr(sms_twilio.RewritingHttpClient, "request", original)


def outcomes(fns: Functions, users: seed.UserSeeder) -> dict:
    users.grow_to(max(users.count, 2))
    phones = seed.phones("verify", 2)
    seed.seed_codes(phones)
    cases = [
        ("send_otp", "sent", {"phone": seed.phones("send", 1)[0], "channel": "sms"}, 202),
        ("verify_otp", "right code", {"phone": phones[0], "code": seed.CODE}, 200),
        ("verify_otp", "wrong code", {"phone": phones[1], "code": "000000"}, 401),
        ("verify_otp", "no active code", {"phone": seed.phones("verify", 1)[0], "code": seed.CODE}, 401),
        ("login", "by email", {"email": seed.user_email(1), "password": seed.PASSWORD}, 200),
        ("login", "by code", {"code": seed.user_code(1), "password": seed.PASSWORD}, 200),
        ("login", "wrong password", {"email": seed.user_email(1), "password": "wrong"}, 401),
        ("login", "unknown user", {"email": "nobody@bench.example", "password": "wrong"}, 401),
    ]
    twilio, restore = _count_twilio()
    rows = []
    try:
        for function, outcome, body, expected in cases:
            twilio.clear()
            with COUNTER.measure() as delta:
                status, answer = fns.post(function, body, ip=seed.client_ip())
            if status != expected:
                raise RuntimeError(f"{function} {outcome}: expected {expected}, got {status}: {answer}")
            calls = firestore_calls(delta)
            rows.append({
                "function": function,
                "outcome": outcome,
                "status": status,
                "firestore": calls,
                "firestore_total": sum(calls.values()),
                "query_scans": sum(calls.get(k, 0) for k in SCAN_RPCS),
                "secret_manager": secret_calls(delta),
                "twilio_http": twilio["twilio_http"],
            })
    finally:
        restore()
    return {"outcomes": rows}
