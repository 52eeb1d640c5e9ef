"""Typed errors: one class per stable error code of the HTTP contract (openapi.yaml).

    try:
        client.verify_otp(phone, code)
    except InvalidCode as exc:
        print(f"wrong code, {exc.attempts_remaining} left")
    except (CodeExpired, TooManyAttempts):
        ...  # ask for a new code (TooManyAttempts.retry_after says when)
    except TransportError as exc:
        ...  # no answer; exc.sent says whether the request may have been processed

Branch on the class (or `code`), never on `message`: messages may change and be localized.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AccountLocked",
    "ApiError",
    "ChallengeRequired",
    "ClientError",
    "CodeExpired",
    "CountryNotAllowed",
    "InternalError",
    "InvalidCode",
    "InvalidCredentials",
    "InvalidPhone",
    "InvalidRequest",
    "MethodNotAllowed",
    "NotFound",
    "PayloadTooLarge",
    "RateLimited",
    "SmsDeliveryFailed",
    "Timeout",
    "TooManyAttempts",
    "TransportError",
    "Unavailable",
    "UnexpectedResponse",
    "UnsupportedMediaType",
    "error_for",
]


class ClientError(Exception):
    """Everything this package raises (besides `ValueError` for a bad argument)."""


class TransportError(ClientError):
    """No usable HTTP answer: the connection failed or timed out.

    `sent` is False only when the request provably never left this process
    (connection refused, name not resolved, connect timeout): then nothing
    happened on the server. When `sent` is True the server may have processed
    it (an SMS may be on its way, a code attempt may have been counted).
    """

    def __init__(self, message: str, *, sent: bool) -> None:
        super().__init__(message)
        self.sent = sent


class Timeout(TransportError):
    """The request was sent but no answer came within the timeout; its outcome is unknown."""

    def __init__(self, message: str) -> None:
        super().__init__(message, sent=True)


class UnexpectedResponse(ClientError):
    """An answer that is not the contract's JSON (e.g. an HTML page from a proxy or load balancer)."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"unexpected HTTP {status} answer: {body[:200]!r}")
        self.status = status
        self.body = body


class ApiError(ClientError):
    """An error answer of the contract: `{"error": {"code", "message", ...data}}`.

    `code` is the stable snake_case code, `status` the HTTP status, `message`
    the server's human sentence, `data` every other field of the error object
    (`field`, `limit`, `country`, ...), `retry_after` the seconds to wait (from
    `Retry-After` or the body; None when the answer has none).
    """

    code: str = "internal"

    def __init__(
        self,
        code: str,
        status: int,
        message: str,
        data: dict[str, Any] | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.code = code
        self.status = status
        self.message = message
        self.data = dict(data or {})
        self.retry_after = retry_after

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, status={self.status}, message={self.message!r})"


class InvalidRequest(ApiError):
    code = "invalid_request"

    @property
    def field(self) -> str | None:
        """The request field at fault, when the server named one."""
        value = self.data.get("field")
        return value if isinstance(value, str) else None


class InvalidPhone(ApiError):
    code = "invalid_phone"


class CountryNotAllowed(ApiError):
    code = "country_not_allowed"

    @property
    def country(self) -> str | None:
        value = self.data.get("country")
        return value if isinstance(value, str) else None


class NotFound(ApiError):
    code = "not_found"


class MethodNotAllowed(ApiError):
    code = "method_not_allowed"


class PayloadTooLarge(ApiError):
    code = "payload_too_large"


class UnsupportedMediaType(ApiError):
    code = "unsupported_media_type"


class RateLimited(ApiError):
    """A send limit (or login's per-IP limit) is reached; `limit` names it, `retry_after` says when."""

    code = "rate_limited"

    @property
    def limit(self) -> str | None:
        value = self.data.get("limit")
        return value if isinstance(value, str) else None


class ChallengeRequired(ApiError):
    """A send limit would refuse, but a passed challenge lets the send through.

    Solve `altcha_challenge` (with the ALTCHA widget, or `otplogin_client.solve_altcha`)
    and call `send_otp` again with `altcha=` the payload; or, where `attestation_accepted`,
    pass an app attestation token as `attestation=`. `limit` names the limit.
    """

    code = "challenge_required"

    @property
    def limit(self) -> str | None:
        value = self.data.get("limit")
        return value if isinstance(value, str) else None

    @property
    def altcha_challenge(self) -> dict[str, Any] | None:
        """The ALTCHA challenge (protocol v2: `parameters`, `signature`), or None if not offered."""
        offer = self.data.get("challenge")
        value = offer.get("altcha") if isinstance(offer, dict) else None
        return value if isinstance(value, dict) else None

    @property
    def attestation_accepted(self) -> bool:
        offer = self.data.get("challenge")
        return isinstance(offer, dict) and offer.get("attestation") is True


class InvalidCode(ApiError):
    """A wrong code; `attempts_remaining` more guesses are allowed for it."""

    code = "invalid_code"

    @property
    def attempts_remaining(self) -> int | None:
        value = self.data.get("attempts_remaining")
        return value if isinstance(value, int) else None


class CodeExpired(ApiError):
    """Expired, already used or never sent (deliberately indistinguishable): ask for a new code."""

    code = "code_expired"


class TooManyAttempts(ApiError):
    code = "too_many_attempts"


class InvalidCredentials(ApiError):
    code = "invalid_credentials"


class InvalidGrant(ApiError):
    """The refresh token is unknown, spent, revoked or expired (not told apart): sign in again."""

    code = "invalid_grant"


class InvalidToken(ApiError):
    """`logout(all_sessions=True)` without a valid access token."""

    code = "invalid_token"


class AccountLocked(ApiError):
    code = "account_locked"


class SmsDeliveryFailed(ApiError):
    """The code was not delivered, or not confirmed.

    Without `retry_after`, the provider refused it: the server undid the send, so asking again is
    allowed. With `retry_after`, the provider did not confirm and the text may still arrive: asking
    again before `retry_after` seconds answers RateLimited."""

    code = "sms_delivery_failed"


class Unavailable(ApiError):
    code = "unavailable"


class InternalError(ApiError):
    code = "internal"


_BY_CODE: dict[str, type[ApiError]] = {
    cls.code: cls
    for cls in (
        InvalidRequest, InvalidPhone, CountryNotAllowed, NotFound, MethodNotAllowed, PayloadTooLarge,
        UnsupportedMediaType, RateLimited, ChallengeRequired, InvalidCode, CodeExpired, TooManyAttempts, InvalidCredentials,
        InvalidGrant, InvalidToken, AccountLocked, SmsDeliveryFailed, Unavailable, InternalError,
    )
}  # fmt: skip


def error_for(
    code: str, status: int, message: str, data: dict[str, Any] | None = None, retry_after: int | None = None
) -> ApiError:
    """The typed error for `code`; a plain `ApiError` for a code this version does not know."""
    return _BY_CODE.get(code, ApiError)(code, status, message, data, retry_after)
