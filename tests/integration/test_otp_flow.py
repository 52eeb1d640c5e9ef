"""OtpService against the real Firestore emulator and the local Secret Manager.

The clock is injected; the SMS provider is a recording fake here (the real
Twilio contract is exercised in test_twilio_contract.py and the e2e tests).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from google.api_core import exceptions as gexc
from msgspec import structs

from otplogin import runtime, store
from otplogin.config import Settings
from otplogin.errors import (
    CodeExpired,
    InvalidCode,
    InvalidPhone,
    RateLimited,
    SmsDeliveryFailed,
    TooManyAttempts,
    Unavailable,
)
from otplogin.otp import OtpService

PHONE = "+243812345678"
IP = "203.0.113.5"


def make_service(clock, outbox, **overrides) -> OtpService:
    settings = structs.replace(Settings.from_env(), **overrides)
    return OtpService(settings, pepper=lambda: runtime.secret("otp-pepper"), sender=lambda: outbox, clock=clock)


@pytest.fixture
def service(stack, clock, outbox):
    return make_service(clock, outbox)


def test_send_then_verify_issues_once(service, outbox):
    sent = service.send(PHONE, "sms", "fr", "203.0.113.5")
    assert (sent.expires_in, sent.resend_after) == (300, 60)
    assert outbox.messages[0][0] == PHONE and "Votre code" in outbox.messages[0][1]
    verified = service.verify(PHONE, outbox.last_code(), IP)
    assert verified.phone == PHONE
    with pytest.raises(CodeExpired):  # single use
        service.verify(PHONE, outbox.last_code(), IP)


@pytest.mark.parametrize("written", ["+243 812 345 678", "+2430812345678", "+243-81-234-5678"])
def test_verify_finds_the_code_of_a_number_written_otherwise(service, outbox, written):
    """The E.164 lookup without parsing is a shortcut only: `+2430812345678` keeps the trunk 0,
    looks like E.164 and finds nothing as written, so verify parses it and finds the code."""
    service.send(PHONE, "sms", "en", IP)
    assert service.verify(written, outbox.last_code(), IP).phone == PHONE


def test_verify_tells_an_invalid_number_from_a_missing_code(service, outbox):
    with pytest.raises(InvalidPhone):  # spelled like E.164, but no such number: parsed when nothing is found
        service.verify("+24312345678", "123456", IP)
    with pytest.raises(CodeExpired):  # a valid number with no code
        service.verify("+243812345670", "123456", IP)


def test_code_expires_in_code_not_by_ttl(service, outbox, clock):
    service.send(PHONE, "sms", "en", "203.0.113.5")
    clock.now += 300
    with pytest.raises(CodeExpired):
        service.verify(PHONE, outbox.last_code(), IP)


def test_wrong_code_counts_attempts_until_budget(service, outbox):
    service.send(PHONE, "sms", "en", "203.0.113.5")
    right = outbox.last_code()
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    remaining = []
    for _ in range(5):
        with pytest.raises(InvalidCode) as err:
            service.verify(PHONE, wrong, IP)
        remaining.append(err.value.data["attempts_remaining"])
    assert remaining == [4, 3, 2, 1, 0]
    with pytest.raises(TooManyAttempts):
        service.verify(PHONE, right, IP)  # the budget is spent even for the right code


def test_resend_does_not_reset_the_hourly_failure_budget(service, outbox, clock):
    guesses = 0
    for _ in range(5):
        service.send(PHONE, "sms", "en", "203.0.113.5")
        wrong = f"{(int(outbox.last_code()) + 1) % 1_000_000:06d}"
        for _ in range(5):
            try:
                service.verify(PHONE, wrong, IP)
            except InvalidCode:
                guesses += 1
            except TooManyAttempts:
                break
        clock.now += 61
    assert guesses == 10  # failures_per_phone_per_hour, however many codes were sent


def test_newer_code_replaces_older(stack, outbox, clock):
    codes = iter(["111111", "222222"])  # two distinct codes: the old one must be refused, always
    service = OtpService(Settings.from_env(), pepper=lambda: runtime.secret("otp-pepper"), sender=lambda: outbox,
                         clock=clock, make_code=lambda _length: next(codes))
    service.send(PHONE, "sms", "en", "203.0.113.5")
    clock.now += 61
    service.send(PHONE, "sms", "en", "203.0.113.5")
    with pytest.raises(InvalidCode):
        service.verify(PHONE, "111111", IP)
    assert service.verify(PHONE, "222222", IP).phone == PHONE


def test_cooldown_and_hourly_cap(service, clock):
    service.send(PHONE, "sms", "en", "203.0.113.5")
    with pytest.raises(RateLimited) as err:
        service.send(PHONE, "sms", "en", "203.0.113.5")
    assert err.value.data["limit"] == "resend_cooldown" and 0 < err.value.retry_after <= 60
    for _ in range(4):
        clock.now += 61
        service.send(PHONE, "sms", "en", "203.0.113.5")
    clock.now += 61
    with pytest.raises(RateLimited) as err:
        service.send(PHONE, "sms", "en", "203.0.113.5")
    assert err.value.data["limit"] == "send_phone"


def test_delivery_failure_leaves_no_code_and_no_cooldown(service, outbox, clock):
    outbox.fail = True
    with pytest.raises(SmsDeliveryFailed):
        service.send(PHONE, "sms", "en", "203.0.113.5")
    key = service.phone_key(PHONE)
    assert store.client().document(f"otp_codes/{key}").get().exists is False
    outbox.fail = False
    service.send(PHONE, "sms", "en", "203.0.113.5")  # no cooldown was consumed
    assert service.verify(PHONE, outbox.last_code(), IP).phone == PHONE


def test_delivery_failure_restores_previous_code(service, outbox, clock):
    service.send(PHONE, "sms", "en", "203.0.113.5")
    first = outbox.last_code()
    clock.now += 61
    outbox.fail = True
    with pytest.raises(SmsDeliveryFailed):
        service.send(PHONE, "sms", "en", "203.0.113.5")
    assert service.verify(PHONE, first, IP).phone == PHONE


def test_ten_parallel_right_codes_exactly_one_succeeds(service, outbox):
    service.send(PHONE, "sms", "en", "203.0.113.5")
    code = outbox.last_code()

    def attempt(_):
        try:
            service.verify(PHONE, code, IP)
            return "ok"
        except CodeExpired:
            return "used"

    with ThreadPoolExecutor(10) as pool:
        results = list(pool.map(attempt, range(10)))
    assert results.count("ok") == 1 and results.count("used") == 9


def test_ten_parallel_wrong_guesses_never_exceed_the_budget(service, outbox):
    service.send(PHONE, "sms", "en", "203.0.113.5")
    wrong = f"{(int(outbox.last_code()) + 1) % 1_000_000:06d}"

    def attempt(_):
        try:
            service.verify(PHONE, wrong, IP)
        except InvalidCode:
            return "counted"
        except TooManyAttempts:
            return "refused"

    with ThreadPoolExecutor(10) as pool:
        results = list(pool.map(attempt, range(10)))
    assert results.count("counted") == 5 and results.count("refused") == 5
    doc = store.client().document(f"otp_codes/{service.phone_key(PHONE)}").get().to_dict()
    assert doc["attempts"] == 5


def test_per_ip_and_global_caps_with_the_guard_off(stack, clock, outbox):
    """GUARD_ENABLED=false keeps the plain walls (the control of tests/prove/test_sms_pumping.py)."""
    service = make_service(clock, outbox, sends_per_ip_per_hour=3, sends_global_per_hour=4, guard_enabled=False)
    phones = [f"+24381234{i:04d}" for i in range(6)]
    for p in phones[:3]:
        service.send(p, "sms", "en", "198.51.100.1")
    with pytest.raises(RateLimited) as err:
        service.send(phones[3], "sms", "en", "198.51.100.1")
    assert err.value.data["limit"] == "send_ip"
    service.send(phones[3], "sms", "en", "198.51.100.2")
    with pytest.raises(RateLimited) as err:
        service.send(phones[4], "sms", "en", "198.51.100.3")
    assert err.value.data["limit"] == "send_global"
    assert len(outbox.messages) == 4


def test_parallel_sends_from_one_address_never_pass_the_per_ip_cap_with_the_guard_off(stack, clock, outbox):
    """The flat per-address wall is hard: 16 sends at once from one address, cap 8, exactly 8 texts."""
    service = make_service(clock, outbox, sends_per_ip_per_hour=8, sends_global_per_hour=1000, guard_enabled=False)

    def attempt(i: int) -> str:
        try:
            service.send(f"+24381235{i:04d}", "sms", "en", "198.51.100.77")
            return "sent"
        except RateLimited as exc:
            return str(exc.data["limit"])

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(attempt, range(16)))
    assert results.count("sent") == 8 and results.count("send_ip") == 8, results
    assert len(outbox.messages) == 8


def test_test_numbers_get_fixed_code_and_no_message(stack, clock, outbox):
    service = make_service(clock, outbox, test_numbers={"+243800000001": "424242"})
    service.send("+243800000001", "sms", "en", "203.0.113.5")
    assert outbox.messages == []
    assert service.verify("+243800000001", "424242", IP).phone == "+243800000001"


def test_a_login_code_is_never_a_test_numbers_fixed_code(stack, clock, outbox):
    service = make_service(clock, outbox, test_numbers={PHONE: "424242"})
    service.send(PHONE, "sms", "en", IP, purpose="login", subject="MAN0001RAB")
    [(to, _body, _)] = outbox.messages  # a real text with a random code, even for a listed number
    assert to == PHONE and outbox.last_code() != "424242"
    key = service.phone_key(PHONE)
    with pytest.raises(InvalidCode):
        service.verify_second_factor(key, "MAN0001RAB", "424242", IP)
    assert service.verify_second_factor(key, "MAN0001RAB", outbox.last_code(), IP).subject == "MAN0001RAB"


def test_an_unconfirmed_delivery_keeps_the_code_the_cooldown_and_the_quota(service, outbox):
    outbox.fail = "unconfirmed"
    with pytest.raises(SmsDeliveryFailed) as err:
        service.send(PHONE, "sms", "en", IP)
    assert err.value.retry_after == 60
    outbox.fail = False
    with pytest.raises(RateLimited) as limited:  # no second paid text inside the cooldown
        service.send(PHONE, "sms", "en", IP)
    assert limited.value.data["limit"] == "resend_cooldown"
    assert service.verify(PHONE, outbox.last_code(), IP).phone == PHONE  # the text did arrive


def test_an_undo_after_an_unknown_outcome_gives_back_only_what_this_send_took(service, outbox, clock,
                                                                             faulty_firestore):
    service.send(PHONE, "sms", "en", IP)  # an earlier code and its quota: both must stay
    first = outbox.last_code()
    clock.advance(61)
    faulty_firestore.fail("commit", gexc.DeadlineExceeded("not applied"))  # the reservation did not land...
    faulty_firestore.fail("get_all", gexc.ServiceUnavailable("down"), after=1)  # ...and the check read fails
    with pytest.raises(Unavailable):
        service.send(PHONE, "sms", "en", IP)
    assert faulty_firestore.pending == 0 and len(outbox.messages) == 1
    counters = {d.id: d.to_dict() for d in store.client().collection("otp_counters").stream()}

    def counted(prefix: str, field: str) -> int:
        return sum(d.get(field, 0) for name, d in counters.items() if name.startswith(prefix))

    assert counted("pool:", "n") == 1  # the send guard's budget share
    assert counted(f"client:{service.guard.client_key(IP)}:", "s") == 1
    assert len(counters[f"send_phone:{service.phone_key(PHONE)}"]["events"]) == 1
    assert service.verify(PHONE, first, IP).phone == PHONE


def test_a_login_code_left_at_the_phones_document_is_not_accepted_on_the_phone_path(service, outbox):
    # Before purposes had their own documents, a login code lived at the phone's document.
    service.send(PHONE, "sms", "en", IP)
    path = f"otp_codes/{service.phone_key(PHONE)}"
    store.client().document(path).update({"purpose": "login", "subject": "MAN0001RAB"})
    with pytest.raises(CodeExpired):
        service.verify(PHONE, outbox.last_code(), IP)
    assert store.client().document(path).get().get("state") == "active"  # not consumed either
