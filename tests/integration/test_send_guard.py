"""The send guard (otplogin.guard) against the Firestore emulator, with an injected clock.

Each test attacks one guarantee of the guard; the same test with the guard off
(`guard_enabled=False`, the walls of before) shows the failure it prevents.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import phonenumbers
import pytest
from msgspec import structs

from otplogin import runtime, store
from otplogin.config import Settings
from otplogin.errors import ChallengeRequired, RateLimited, Unavailable
from otplogin.guard import Proof, number_range
from otplogin.guard.clients import client_bucket
from otplogin.otp import OtpService
from tests.support.fakes import code_in

ATTACKED = "+24381230"  # CD, Vodacom, block 8123xxxxx
NEIGHBOUR = "+24381330"  # CD, Vodacom, block 8133xxxxx: same country and operator, another block


def make(clock, outbox, **overrides) -> OtpService:
    settings = structs.replace(Settings.from_env(), **overrides)
    return OtpService(settings, pepper=lambda: runtime.secret("otp-pepper"), sender=lambda: outbox, clock=clock)


def numbers(prefix: str, count: int, start: int = 0) -> list[str]:
    out = [f"{prefix}{i:04d}" for i in range(start, start + count)]
    assert all(phonenumbers.is_valid_number(phonenumbers.parse(n)) for n in out)
    return out


def spread(count: int, country_code: int = 243, start: int = 0) -> list[str]:
    """Valid mobile numbers of `country_code`, each in another block (range)."""
    out, i = [], 0
    while len(out) < count:
        candidate = phonenumbers.PhoneNumber(country_code=country_code, national_number=int(f"8{i % 10}{(i // 10) % 10}{(i // 100) % 10}{start:05d}"))
        if country_code == 212:
            candidate = phonenumbers.PhoneNumber(country_code=212, national_number=int(f"6{i % 10}{(i // 10) % 10}{(i // 100) % 10}{start:05d}"))
        if phonenumbers.is_valid_number(candidate) and phonenumbers.number_type(candidate) == phonenumbers.PhoneNumberType.MOBILE:
            out.append(phonenumbers.format_number(candidate, phonenumbers.PhoneNumberFormat.E164))
        i += 1
        assert i < 10_000
    return out


def outcome(service, phone, ip, proof=None) -> str:
    try:
        service.send(phone, "sms", "en", ip, proof=proof)
    except (RateLimited, ChallengeRequired) as exc:
        return f"{exc.code}:{exc.data['limit']}"
    return "sent"


def verify_last(service, outbox, phone, ip: str = "192.0.2.200") -> None:
    service.verify(phone, code_in([b for to, b, _ in outbox.messages if to == phone][-1]), ip)


def test_ranges_follow_the_number_block_not_the_destination_code():
    assert number_range("+243812345678").id == "CD-vodacom-8123"
    assert number_range("+243813345678").id == "CD-vodacom-8133"  # same NDC 812/813 family, other block
    assert number_range("+212612345678").id == "MA-orange-6123"  # 1-digit NDC: still a 100,000 block
    assert number_range("+212661234567").operator == "maroc_telecom"
    assert number_range("+243812345678", block_digits=7).id == "CD-vodacom-812"  # never shorter than the NDC


def test_ipv6_clients_are_bucketed_by_64():
    assert client_bucket("2001:db8:1:2::1") == client_bucket("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert client_bucket("2001:db8:1:3::1") != client_bucket("2001:db8:1:2::1")
    assert client_bucket("::ffff:203.0.113.9") == "203.0.113.9"
    assert client_bucket("203.0.113.9") == "203.0.113.9"
    assert client_bucket("not an address") == client_bucket("") == "unparsed"


def test_an_unconverted_range_is_throttled_and_its_neighbours_are_not(stack, clock, outbox):
    service = make(clock, outbox)
    free = service.settings.guard_range_free_per_hour
    # Pumping: new numbers of one block, each from its own address, never verified.
    results = [outcome(service, p, f"198.51.100.{i + 1}") for i, p in enumerate(numbers(ATTACKED, free + 6))]
    assert results[:free] == ["sent"] * free
    assert set(results[free:]) == {"rate_limited:send_range"}
    # Same country, same operator, another block: served.
    assert outcome(service, numbers(NEIGHBOUR, 1)[0], "192.0.2.1") == "sent"
    # The walls of before let every one of them through.
    clock.advance(86400)
    walls = make(clock, outbox, guard_enabled=False)
    assert {outcome(walls, p, f"198.51.100.{i + 1}") for i, p in enumerate(numbers(ATTACKED, free + 6, 100))} == {"sent"}


def test_a_range_whose_codes_are_verified_keeps_being_served(stack, clock, outbox):
    service = make(clock, outbox)
    free = service.settings.guard_range_free_per_hour
    for i, phone in enumerate(numbers(ATTACKED, 4 * free)):
        assert outcome(service, phone, f"198.51.100.{i + 1}") == "sent", i
        verify_last(service, outbox, phone)
        clock.advance(30)


def test_a_known_phone_is_served_in_an_attacked_range_and_from_its_reserved_share(stack, clock, outbox):
    # The country check is set out of the way: here an attack that passes every soft check spends the
    # new-number share of CD, and that share is all it can spend.
    service = make(clock, outbox, sends_global_per_hour=100, guard_country_free_per_hour=1000)
    returning = numbers(ATTACKED, 1, 9000)[0]
    service.send(returning, "sms", "en", "203.0.113.1")
    verify_last(service, outbox, returning)
    clock.advance(7200)
    # The attacked range spends its allowance, then the new-number share of CD runs out too.
    for i, phone in enumerate(numbers(ATTACKED, 40)):
        outcome(service, phone, f"198.51.100.{i + 1}")
    new_share = service.guard.country_budgets["CD"].cap
    for i, phone in enumerate(spread(new_share + 5)):  # one number in each of many blocks
        outcome(service, phone, f"100.64.{i // 200}.{i % 200 + 1}")
    assert outcome(service, spread(1, start=7)[0], "100.66.0.1") == "rate_limited:send_global"
    # The returning user, behind the attacker's own address even, is served.
    assert outcome(service, returning, "198.51.100.1") == "sent"
    sent_ma = outcome(service, "+212612345678", "192.0.2.77")
    assert sent_ma == "sent", "an attack on CD numbers spent Morocco's share"


def test_a_shared_address_whose_codes_are_verified_earns_a_larger_allowance(stack, clock, outbox):
    """Forty real users behind one carrier-grade NAT address, each verifying their code."""
    cgnat = "41.243.0.1"
    service = make(clock, outbox)
    phones = [p for prefix in ("+24381231", "+24382231", "+24385231", "+24399231") for p in numbers(prefix, 10)]
    results = []
    for phone in phones:
        results.append(outcome(service, phone, cgnat))
        if results[-1] == "sent":
            verify_last(service, outbox, phone)
        clock.advance(45)
    assert results.count("sent") == 40, results
    # An address whose codes are never verified gets the free allowance, then nothing.
    bot = [outcome(service, p, "203.0.113.66") for p in numbers("+24389231", 12)]
    free = service.settings.guard_client_free_per_hour
    assert bot[:free] == ["sent"] * free and set(bot[free:]) == {"rate_limited:send_ip"}
    # The walls of before: a flat 20 an hour for the whole address.
    clock.advance(86400)
    walls = make(clock, outbox, guard_enabled=False)
    assert sum(outcome(walls, p, cgnat) == "sent" for p in numbers("+24381241", 40)) == 20


def test_ipv6_addresses_of_one_64_share_one_allowance(stack, clock, outbox):
    service = make(clock, outbox)
    free = service.settings.guard_client_free_per_hour
    results = [outcome(service, p, f"2001:db8:7:7::{i + 1:x}") for i, p in enumerate(numbers("+24389241", free + 2))]
    assert results[free:] == ["rate_limited:send_ip"] * 2
    assert outcome(service, numbers("+24389251", 1)[0], "2001:db8:7:8::1") == "sent"


def test_altcha_challenge_instead_of_a_refusal(stack, clock, outbox):
    from altcha import Challenge, Payload, solve_challenge

    service = make(clock, outbox, guard_challenges=frozenset({"altcha"}), guard_altcha_cost=10, guard_altcha_max_counter=50)
    free = service.settings.guard_range_free_per_hour
    for i, phone in enumerate(numbers(ATTACKED, free)):
        assert outcome(service, phone, f"198.51.100.{i + 1}") == "sent"
    real = numbers(ATTACKED, 2, 5000)
    with pytest.raises(ChallengeRequired) as err:
        service.send(real[0], "sms", "en", "192.0.2.10")
    assert err.value.status == 403 and err.value.data["limit"] == "send_range"
    challenge = Challenge.from_dict(err.value.data["challenge"]["altcha"])
    payload = Payload(challenge, solve_challenge(challenge)).to_base64()
    # The solution is for that phone only: another phone cannot use it.
    assert outcome(service, real[1], "192.0.2.10", Proof(altcha=payload)).startswith("challenge_required")
    assert outcome(service, real[0], "192.0.2.10", Proof(altcha="bm90IGpzb24=")).startswith("challenge_required")
    assert outcome(service, real[0], "192.0.2.10", Proof(altcha=payload)) == "sent"
    # Expired: a solution is worth the challenge's lifetime only.
    clock.advance(service.settings.guard_challenge_ttl_seconds + 61)
    assert outcome(service, real[0], "192.0.2.10", Proof(altcha=payload)).startswith("challenge_required")


def test_no_document_grows_and_the_per_ip_event_list_is_gone(stack, clock, outbox):
    service = make(clock, outbox)
    for phone in numbers("+24381251", 30):
        outcome(service, phone, "41.243.0.9")
        clock.advance(20)
    docs = {d.id: d.to_dict() for d in store.client().collection("otp_counters").stream()}
    assert not [k for k in docs if k.startswith("send_ip:")]
    for name, doc in docs.items():
        assert not any(isinstance(v, list) for v in doc.values()) or name.startswith("send_phone:"), name
        assert len(doc) <= 4, (name, doc)


def test_a_failed_delivery_gives_back_what_the_guard_counted(stack, clock, outbox):
    from otplogin.errors import SmsDeliveryFailed

    service = make(clock, outbox)
    outbox.fail = True
    for phone in numbers(ATTACKED, 12):
        with pytest.raises(SmsDeliveryFailed):
            service.send(phone, "sms", "en", "203.0.113.5")
    docs = {d.id: d.to_dict() for d in store.client().collection("otp_counters").stream()}
    counted = {k: {f: v for f, v in d.items() if isinstance(v, int)} for k, d in docs.items() if not k.startswith("send_")}
    assert counted and all(v == 0 for d in counted.values() for v in d.values()), counted
    outbox.fail = False
    assert outcome(service, numbers(ATTACKED, 1, 100)[0], "203.0.113.5") == "sent"


def test_32_concurrent_sends_from_one_address_answer_no_503(stack, clock, outbox):
    """The per-IP event list made every concurrent send from one address conflict on one document."""
    service = make(clock, outbox, guard_client_free_per_hour=100)
    phones = numbers("+24381261", 32)

    def send(phone: str) -> str:
        try:
            service.send(phone, "sms", "en", "41.243.0.20")
        except Unavailable:
            return "503"
        except (RateLimited, ChallengeRequired) as exc:
            return exc.data["limit"]
        return "sent"

    with ThreadPoolExecutor(32) as pool:
        results = list(pool.map(send, phones))
    assert "503" not in results, results
    assert results.count("sent") >= 8  # the range's free allowance at least; the rest refused cleanly


class JwksServer:
    """The attestation service's public keys on a loopback port (as Firebase App Check publishes them)."""

    def __init__(self, jwks: dict) -> None:
        import json
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        body = json.dumps(jwks).encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jwks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_an_app_attestation_token_passes_the_challenge(stack, clock, outbox):
    import json
    import time

    import jwt
    from cryptography.hazmat.primitives.asymmetric import ec

    key, other = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    public = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key())) | {"kid": "k1", "alg": "ES256", "use": "sig"}
    server = JwksServer({"keys": [public]})
    issuer, audience = "https://attest.example/123", "projects/123"

    def token(signer=key, aud=audience, exp=3600) -> str:
        claims = {"iss": issuer, "aud": aud, "sub": "app:1", "exp": int(time.time()) + exp}
        return jwt.encode(claims, signer, algorithm="ES256", headers={"kid": "k1"})

    try:
        service = make(clock, outbox, guard_challenges=frozenset({"attestation"}), guard_range_free_per_hour=0,
                       guard_attestation_jwks_url=server.url, guard_attestation_issuer=issuer,
                       guard_attestation_audience=audience)
        phone = numbers(ATTACKED, 1)[0]
        with pytest.raises(ChallengeRequired) as err:
            service.send(phone, "sms", "en", "192.0.2.40")
        assert err.value.data["challenge"] == {"attestation": True}
        for bad in (token(signer=other), token(aud="projects/999"), token(exp=-60), "not.a.jwt"):
            assert outcome(service, phone, "192.0.2.40", Proof(attestation=bad)).startswith("challenge_required"), bad
        assert outcome(service, phone, "192.0.2.40", Proof(attestation=token())) == "sent"
    finally:
        server.close()
