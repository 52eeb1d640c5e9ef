"""The local stack a benchmark runs on: Firestore emulator, local Secret Manager, Prism (Twilio).

Each server binds 127.0.0.1 on a free port and is stopped with its whole
process group (tests/support), so a run leaves nothing listening.
"""

from __future__ import annotations

import os
from contextlib import ExitStack

from tests.support.firestore import FirestoreEmulator
from tests.support.prism import PrismMock
from tests.support.secret_manager import LocalSecretManager

PROJECT = "demo-otp"


class Stack:
    def __init__(self) -> None:
        self._exit = ExitStack()
        self.firestore: FirestoreEmulator | None = None
        self.secrets: LocalSecretManager | None = None
        self.prism: PrismMock | None = None

    def start(self) -> Stack:
        try:
            self.firestore = FirestoreEmulator(project=PROJECT).start()
            self._exit.callback(self.firestore.stop)
            self.secrets = LocalSecretManager(PROJECT, seed_dev_secrets=True)
            self._exit.callback(self.secrets.close)
            self.prism = PrismMock().start()
            self._exit.callback(self.prism.stop)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        self._exit.close()

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def env(self) -> dict[str, str]:
        """What a function instance is given: the local stack, Twilio = Prism, and caps
        raised so that thousands of distinct benchmark phones and IPs are never refused
        (every cap is still read and written on each send)."""
        if not (self.firestore and self.secrets and self.prism):
            raise RuntimeError("the stack is not started")
        return {
            "GOOGLE_CLOUD_PROJECT": PROJECT,
            "FIRESTORE_EMULATOR_HOST": self.firestore.host,
            "SECRET_MANAGER_EMULATOR_HOST": self.secrets.host,
            "SMS_PROVIDER": "twilio",
            "TWILIO_API_BASE": self.prism.base_url,
            "OTP_ALLOWED_COUNTRIES": "CD,MA",
            "OTP_SENDS_PER_IP_PER_HOUR": "100000",
            "OTP_SENDS_GLOBAL_PER_HOUR": "10000000",
            "LOGINS_PER_IP_PER_HOUR": "1000000",
            # The send guard's free allowances: benchmark phones never verify, which is not abuse here.
            "GUARD_RANGE_FREE_PER_HOUR": "100000",
            "GUARD_COUNTRY_FREE_PER_HOUR": "1000000",
            "GUARD_CLIENT_FREE_PER_HOUR": "100000",
        }

    def apply_env(self) -> None:
        os.environ.update(self.env())
