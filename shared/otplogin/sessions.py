"""What a successful sign-in answers: a signed access token and its lifetime."""

from __future__ import annotations

from typing import Any

from otplogin import runtime
from otplogin.otp import Verified


def token_response(subject: str, claims: dict[str, Any]) -> dict[str, Any]:
    signer = runtime.token_signer()
    return {"access_token": signer.issue(subject, claims), "token_type": "Bearer", "expires_in": signer.ttl_seconds}


def for_verified_phone(verified: Verified) -> dict[str, Any]:
    """verify_otp's answer. A phone proves itself: subject `phone:+E164`."""
    return token_response(f"phone:{verified.phone}", {"phone_number": verified.phone, "amr": ["otp"]})
