"""What the functions answer, as typed, immutable values."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["Health", "LoginResult", "SecondFactorRequired", "SendResult", "Token", "User"]

Function = Literal["send_otp", "verify_otp", "login"]


@dataclass(frozen=True, slots=True)
class SendResult:
    """send_otp's 202: the code is on its way."""

    expires_in: int  #: seconds the code stays valid
    resend_after: int  #: seconds before another code may be asked for this phone


@dataclass(frozen=True, slots=True)
class Token:
    """An access token (EdDSA JWT) and its lifetime, and the refresh token that renews it (`Client.refresh`)."""

    access_token: str = field(repr=False)
    token_type: str
    expires_in: int
    refresh_token: str | None = field(default=None, repr=False)  #: keep it like a password
    refresh_expires_in: int | None = None  #: seconds the session lasts unless refreshed

    def unverified_claims(self) -> dict[str, Any]:
        """The token's payload, decoded WITHOUT checking its signature.

        For display and debugging only. A backend that trusts a token verifies it
        with the public keys of `Client.jwks()` (e.g. PyJWT's `PyJWKSet`, algorithm EdDSA).
        """
        payload = self.access_token.split(".")[1]
        claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return claims

    @property
    def authorization(self) -> str:
        """The `Authorization` header value for calling your own backend."""
        return f"{self.token_type} {self.access_token}"


@dataclass(frozen=True, slots=True)
class User:
    """The signed-in user's profile; PII fields are None when not set or not decryptable."""

    id: str
    email: str
    code: str
    role: str
    phone: str | None
    address: str | None
    whatsapp: str | None


@dataclass(frozen=True, slots=True)
class LoginResult:
    """login's 200 without a second factor: a token and the decrypted profile."""

    token: Token
    user: User
    #: PII fields the server could not decrypt (None in `user`); empty when all were readable.
    unavailable_fields: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SecondFactorRequired:
    """login's 200 for a user with a second factor: a code was sent to `phone_hint`.

    Finish with `Client.verify_second_factor(result, code)` within `expires_in` seconds.
    """

    mfa_token: str = field(repr=False)
    channel: str
    phone_hint: str
    expires_in: int
    resend_after: int


@dataclass(frozen=True, slots=True)
class Health:
    """A function's readiness report (`GET /healthz`); never carries a secret value."""

    status: str  #: "ok" or "unavailable"
    checks: dict[str, Any]

    @property
    def ok(self) -> bool:
        return self.status == "ok"
