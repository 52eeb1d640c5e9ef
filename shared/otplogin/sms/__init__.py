"""Delivery of codes: one small interface, one file per provider."""

from __future__ import annotations

from typing import Literal, Protocol

Channel = Literal["sms", "whatsapp"]


class SmsSender(Protocol):
    """Delivers one message, or raises `otplogin.errors.DeliveryRejected` when it certainly
    was not sent and `otplogin.errors.DeliveryError` when it may have been."""

    def send(self, to: str, body: str, channel: Channel) -> None: ...
