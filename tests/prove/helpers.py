"""Shared pieces of the proofs: services on the local stack, numbers, windows, timing."""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable, Iterable
from typing import Any

from msgspec import structs

from otplogin import runtime, store
from otplogin.config import Settings
from otplogin.otp import OtpService, random_code


def settings(**overrides: Any) -> Settings:
    """The environment's settings (the `stack` fixture set it), with overrides."""
    base = Settings.from_env()
    return structs.replace(base, **overrides) if overrides else base


def make_service(
    clock: Callable[[], float],
    sender: Any,
    *,
    make_code: Callable[[int], str] = random_code,
    **overrides: Any,
) -> OtpService:
    """An OtpService like runtime.otp_service(), with an injected clock and sender."""
    return OtpService(
        settings(**overrides),
        pepper=lambda: runtime.secret(runtime.OTP_PEPPER),
        sender=lambda: sender,
        clock=clock,
        make_code=make_code,
    )


def twilio_sender(api_base: str):
    """The real TwilioSender built from the local Secret Manager's values, pointed at `api_base`."""
    from otplogin.sms.twilio import sender_from_secrets

    return sender_from_secrets(runtime.secret, api_base)


def max_in_window(times: Iterable[float], window: float = 3600.0) -> int:
    """The most events in any half-open window [t, t + window) (sliding)."""
    ordered = sorted(times)
    best = 0
    for i, start in enumerate(ordered):
        j = bisect.bisect_left(ordered, start + window)
        best = max(best, j - i)
    return best


def collection_docs(name: str) -> dict[str, dict]:
    return {doc.id: doc.to_dict() for doc in store.client().collection(name).stream()}


class Deadline:
    """A wall-clock budget: `bool(deadline)` is True while time is left."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.started = time.monotonic()
        self.hit = False

    def __bool__(self) -> bool:
        if time.monotonic() - self.started < self.seconds:
            return True
        self.hit = True
        return False

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]
