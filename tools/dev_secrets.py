"""Fresh random development values for every Secret Manager secret of the project.

Used by `tools/local_secret_manager.py --seed-dev-secrets` (local mode) and by
tests. The formats are the contract of docs/architecture.md; nothing here is a
fixed value: every call returns new keys.

    >>> from tools.dev_secrets import generate_dev_secrets
    >>> sorted(generate_dev_secrets())          # doctest: +NORMALIZE_WHITESPACE
    ['admin-password', 'jwt-signing-keys', 'otp-pepper', 'pii-keyring',
     'twilio-account-sid', 'twilio-auth-token', 'twilio-sender']
"""

from __future__ import annotations

import json
import secrets

from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

# Twilio's documented magic "From" number for test credentials: it never sends.
DEV_TWILIO_SENDER = "+15005550006"

SECRET_IDS = (
    "otp-pepper",
    "jwt-signing-keys",
    "pii-keyring",
    "twilio-account-sid",
    "twilio-auth-token",
    "twilio-sender",
    "admin-password",
)


def new_signing_key() -> dict[str, str]:
    """One `jwt-signing-keys` entry: a new Ed25519 key as PKCS8 PEM with a `dev-` key id."""
    pem = Ed25519PrivateKey.generate().private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    )
    return {"kid": f"dev-{secrets.token_hex(4)}", "private_key_pem": pem.decode("ascii")}


def generate_dev_secrets() -> dict[str, str]:
    """Return {secret_id: value} with new random development values, one per secret id."""
    values = {
        "otp-pepper": secrets.token_urlsafe(32),
        "jwt-signing-keys": json.dumps({"keys": [new_signing_key()]}),
        "pii-keyring": json.dumps({"keys": [Fernet.generate_key().decode("ascii")]}),
        "twilio-account-sid": "AC" + secrets.token_hex(16),
        "twilio-auth-token": secrets.token_hex(16),
        "twilio-sender": DEV_TWILIO_SENDER,
        "admin-password": secrets.token_urlsafe(18),
    }
    if set(values) != set(SECRET_IDS):
        raise RuntimeError("dev secrets and SECRET_IDS disagree")
    return values
