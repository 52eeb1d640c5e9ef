"""Development SMS sink: records each message in the emulator's `dev_outbox`.

Like the Firebase Auth emulator's verification-codes endpoint, it lets a
developer read the code without a phone. It refuses to exist outside emulator
mode, so a misconfigured deployment cannot write codes into a real database.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from otplogin.config import Settings
from otplogin.sms import Channel

COLLECTION = "dev_outbox"


class NotInEmulatorMode(RuntimeError):
    pass


class DevOutboxSender:
    def __init__(self, settings: Settings, firestore_client: Any) -> None:
        if not settings.emulator_mode or not settings.project.startswith("demo-"):
            raise NotInEmulatorMode(
                "SMS_PROVIDER=dev_outbox needs FIRESTORE_EMULATOR_HOST and a 'demo-' project id"
            )
        self._db = firestore_client

    def send(self, to: str, body: str, channel: Channel) -> None:
        sent_at = datetime.now(UTC)
        self._db.collection(COLLECTION).add({"to": to, "channel": channel, "body": body, "sent_at": sent_at})
        logging.getLogger("otplogin.dev_outbox").info("dev outbox: %s to %s: %s", channel, to, body)
