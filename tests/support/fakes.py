"""Small fakes for boundaries the library injects: the clock and the SMS provider."""

from __future__ import annotations

import re

from otplogin.errors import DeliveryError, DeliveryRejected


class Clock:
    """An injected clock (OtpService(clock=...)): time moves only when a test says so."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Outbox:
    """A recording SmsSender. `fail = True` refuses like a provider's 4xx (DeliveryRejected: nothing
    sent); `fail = "unconfirmed"` fails like a timeout or a 5xx (DeliveryError: it may have been sent)."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, str, str]] = []
        self.fail: bool | str = False

    def send(self, to: str, body: str, channel: str) -> None:
        if self.fail == "unconfirmed":
            self.messages.append((to, body, channel))  # it may well have arrived
            raise DeliveryError("provider answered 500")
        if self.fail:
            raise DeliveryRejected("provider answered 400")
        self.messages.append((to, body, channel))

    def codes_for(self, phone: str) -> list[str]:
        return [code_in(body) for to, body, _ in self.messages if to == phone]

    def last_code(self) -> str:
        return code_in(self.messages[-1][1])


def code_in(body: str) -> str:
    match = re.search(r"\b(\d{6,10})\b", body)
    assert match, "no code in the message"
    return match.group(1)
