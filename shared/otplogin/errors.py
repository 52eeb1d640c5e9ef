"""One flat hierarchy of errors, each carrying the stable code of the HTTP contract.

Handlers never build error bodies themselves: they raise, and `otplogin.http`
renders `{"error": {"code", "message", ...data}}` with the status given here.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An error the client may see: stable snake_case code, status, human message."""

    code = "internal"
    status = 500
    message = "Something went wrong."

    def __init__(self, message: str | None = None, *, retry_after: int | None = None, **data: Any) -> None:
        super().__init__(message or self.message)
        self.message = message or self.message
        self.retry_after = retry_after
        self.data = data


class InvalidRequest(ApiError):
    code, status, message = "invalid_request", 400, "The request is not valid."


class InvalidPhone(ApiError):
    code, status, message = "invalid_phone", 400, "The phone number is not a valid mobile number."


class CountryNotAllowed(ApiError):
    code, status, message = "country_not_allowed", 403, "Codes cannot be sent to this country."


class NotFound(ApiError):
    code, status, message = "not_found", 404, "There is nothing here."


class MethodNotAllowed(ApiError):
    code, status, message = "method_not_allowed", 405, "This method is not allowed here."


class PayloadTooLarge(ApiError):
    code, status, message = "payload_too_large", 413, "The request body is too large."


class UnsupportedMediaType(ApiError):
    code, status, message = "unsupported_media_type", 415, "Send the body as application/json."


class RateLimited(ApiError):
    code, status, message = "rate_limited", 429, "Too many requests. Try again later."


class ChallengeRequired(ApiError):
    """A send limit would refuse, but a passed challenge lets the send through (otplogin.guard).

    `challenge` carries what is offered (an ALTCHA challenge, attestation); `limit` names the limit."""

    code, status, message = "challenge_required", 403, "Prove this request comes from a person or the app, then ask again."


class InvalidCode(ApiError):
    code, status, message = "invalid_code", 401, "The code is not correct."


class CodeExpired(ApiError):
    code, status, message = "code_expired", 401, "The code has expired or was never sent. Ask for a new one."


class TooManyAttempts(ApiError):
    code, status, message = "too_many_attempts", 429, "Too many wrong codes. Ask for a new code later."


class InvalidCredentials(ApiError):
    code, status, message = "invalid_credentials", 401, "The email, code or password is not correct."


class InvalidGrant(ApiError):
    """A refresh token that is unknown, malformed, spent, revoked or expired: never told apart."""

    code, status, message = "invalid_grant", 401, "The refresh token is not valid. Sign in again."


class InvalidToken(ApiError):
    code, status, message = "invalid_token", 401, "A valid access token (Authorization: Bearer) is required."


class AccountLocked(ApiError):
    code, status, message = "account_locked", 429, "Too many failed sign-ins. Try again later."


class SmsDeliveryFailed(ApiError):
    code, status, message = "sms_delivery_failed", 502, "The code could not be delivered. Try again."


class SmsDeliveryUncertain(SmsDeliveryFailed):
    """The provider did not confirm the text, which may still arrive: the send keeps its cooldown."""

    message = "The code may not have been delivered. If it does not arrive, ask for a new one after the wait."


class Unavailable(ApiError):
    code, status, message = "unavailable", 503, "The service is temporarily unavailable. Try again shortly."


class SecretUnavailable(Unavailable):
    """A Secret Manager secret is missing, empty, malformed or unreachable.

    The message names the secret (never its value) for the logs and health
    check; the client only ever sees the generic 503 `unavailable`.
    """

    def __init__(self, secret_id: str, reason: str) -> None:
        super().__init__(f"secret {secret_id!r} unavailable: {reason}")
        self.secret_id = secret_id
        self.reason = reason


class DeliveryError(Exception):
    """The provider did not confirm the message: it may still have been sent (and billed).

    A timeout, a 5xx answer, a dropped connection or an unreadable answer can
    all come after the provider accepted the message, so the send keeps its
    quota and cooldown: the user waits for the text, or resends after the cooldown."""


class DeliveryRejected(DeliveryError):
    """The provider certainly did not send the message (a 4xx refusal, no connection, refused locally).

    Only this gives the send's quota back and restores the previous code."""
