"""The environment that points a function (in-process or a child process) at the local stack."""

from __future__ import annotations

PROJECT = "demo-otp"


def local_env(firestore_emulator, secret_manager) -> dict[str, str]:
    return {
        "GOOGLE_CLOUD_PROJECT": PROJECT,
        "FIRESTORE_EMULATOR_HOST": firestore_emulator.host,
        "SECRET_MANAGER_EMULATOR_HOST": secret_manager.host,
        "SMS_PROVIDER": "dev_outbox",
        "OTP_ALLOWED_COUNTRIES": "CD,MA",
    }
