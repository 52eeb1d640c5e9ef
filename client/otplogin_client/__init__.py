"""Typed Python client for the otplogin functions (send_otp, verify_otp, login).

    from otplogin_client import Client, InvalidCode, SecondFactorRequired

    api = Client("http://127.0.0.1:8081", "http://127.0.0.1:8082", "http://127.0.0.1:8083")
    api.send_otp("+243812345678", locale="fr")
    token = api.verify_otp("+243812345678", "123456")

See `otplogin_client.client` for the retry policy and `otplogin_client.errors` for the errors.
"""

from otplogin_client.client import Client, solve_altcha
from otplogin_client.errors import (
    AccountLocked,
    ApiError,
    ChallengeRequired,
    ClientError,
    CodeExpired,
    CountryNotAllowed,
    InternalError,
    InvalidCode,
    InvalidCredentials,
    InvalidGrant,
    InvalidPhone,
    InvalidRequest,
    InvalidToken,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    SmsDeliveryFailed,
    Timeout,
    TooManyAttempts,
    TransportError,
    Unavailable,
    UnexpectedResponse,
    UnsupportedMediaType,
)
from otplogin_client.models import Health, LoginResult, SecondFactorRequired, SendResult, Token, User

__version__ = "0.1.0"
__all__ = [
    "AccountLocked",
    "ApiError",
    "ChallengeRequired",
    "Client",
    "ClientError",
    "CodeExpired",
    "CountryNotAllowed",
    "Health",
    "InternalError",
    "InvalidCode",
    "InvalidCredentials",
    "InvalidGrant",
    "InvalidPhone",
    "InvalidRequest",
    "InvalidToken",
    "LoginResult",
    "MethodNotAllowed",
    "NotFound",
    "PayloadTooLarge",
    "RateLimited",
    "SecondFactorRequired",
    "SendResult",
    "SmsDeliveryFailed",
    "Timeout",
    "Token",
    "TooManyAttempts",
    "TransportError",
    "Unavailable",
    "UnexpectedResponse",
    "UnsupportedMediaType",
    "User",
    "solve_altcha",
]
