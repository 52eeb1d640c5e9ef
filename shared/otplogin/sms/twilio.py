"""Twilio delivery: the real `twilio` SDK behind the `SmsSender` protocol.

Only this module imports `twilio`, so functions that never send (verify_otp)
need neither the SDK nor its import time.

Errors: every failure becomes `DeliveryError` with a short message naming the
HTTP status and Twilio error code only. Only a definite refusal is
`DeliveryRejected` (not sent, nothing billed): a 4xx answer (including 429),
a connection that was never made, a recipient refused locally. A 5xx, a read
timeout, a connection dropped after the request went out, or an unreadable
2xx may follow an accepted (and billed) message, so they stay plain
`DeliveryError` and the caller keeps the send's quota. Twilio's own error text can
quote the recipient (error 21211: "The 'To' number +243... is not a valid
phone number"), and request exceptions quote the URL (which holds the account
SID), so neither is ever copied into the message, and the SDK exception is not
chained (`from None`): a logged traceback cannot carry them either.

Logging: the SDK logs each request's method, URL (with the account SID) and
headers at INFO through the `twilio.http_client` logger (9.x does not log the
form body, but nothing guarantees a later release won't). That logger is set
to WARNING at import below, so it stays quiet even when the application turns
the root logger to INFO or DEBUG; the SDK itself logs nothing above INFO.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

import requests
import urllib3
from twilio.base.exceptions import (
    TwilioException,
    TwilioRestException,
    TwilioServiceException,
)
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from otplogin.errors import DeliveryError, DeliveryRejected, SecretUnavailable
from otplogin.sms import Channel

__all__ = [
    "ACCOUNT_SID_PATTERN",
    "SECRET_ACCOUNT_SID",
    "SECRET_AUTH_TOKEN",
    "SECRET_SENDER",
    "RewritingHttpClient",
    "TwilioSender",
    "sender_from_secrets",
]

SECRET_ACCOUNT_SID = "twilio-account-sid"  # noqa: S105 (a secret id)
SECRET_AUTH_TOKEN = "twilio-auth-token"  # noqa: S105 (a secret id)
SECRET_SENDER = "twilio-sender"  # noqa: S105 (a secret id)

# The SDK logs request URLs and headers at INFO (see the module docstring).
_SDK_LOGGER = logging.getLogger("twilio.http_client")
_SDK_LOGGER.setLevel(logging.WARNING)

# https://api.twilio.com, or a regional / edge host such as
# https://api.dublin.ie1.twilio.com: all are sent to `api_base` in tests.
_TWILIO_API = re.compile(r"^https://api(?:\.[a-z0-9-]+)*\.twilio\.com(?=/|$)")
ACCOUNT_SID_PATTERN = re.compile(r"^AC[0-9a-fA-F]{32}$")
_WHATSAPP = "whatsapp:"

# The SDK reads TWILIO_EDGE / TWILIO_REGION (and credentials) from
# `environment`, falling back to os.environ when given an empty mapping. A
# non-empty mapping without those keys keeps the process environment out.
_NO_ENVIRONMENT = {"OTPLOGIN_TWILIO_ENVIRONMENT": "none"}


class RewritingHttpClient(TwilioHttpClient):  # type: ignore[misc,unused-ignore]  # twilio has no py.typed
    """`TwilioHttpClient` with a fixed timeout, no retries, and an optional base URL.

    With `api_base` (tests and local contract checks only), every request to
    `https://api.twilio.com` goes to `api_base` instead, path and query kept:
    that is how the real SDK is pointed at the Prism mock.
    """

    def __init__(self, *, timeout: float, api_base: str | None = None) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        super().__init__(timeout=timeout, logger=_SDK_LOGGER, max_retries=0)
        if api_base is not None:
            api_base = api_base.rstrip("/")
            if not re.match(r"^https?://[^/\s]+$", api_base):
                raise ValueError("api_base must be a scheme and host, like http://127.0.0.1:4010")
        self.api_base = api_base

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Response:
        if self.api_base is not None:
            url = _TWILIO_API.sub(self.api_base, url, count=1)
        return super().request(method, url, *args, **kwargs)


class TwilioSender:
    """Sends one message through Twilio's Messages API (SMS or WhatsApp).

    `sender` is the E.164 number the account owns; WhatsApp messages go from
    `whatsapp:<sender>` to `whatsapp:<to>`. `timeout` bounds each socket
    operation (connect, each read) of the single attempt: there are no retries
    here, the caller decides.
    """

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        sender: str,
        *,
        api_base: str | None = None,
        timeout: float = 5.0,
    ) -> None:
        if not account_sid or not auth_token or not sender:
            raise ValueError("account_sid, auth_token and sender are required")
        self._sender = sender.removeprefix(_WHATSAPP)
        self.timeout = timeout
        self.http_client = RewritingHttpClient(timeout=timeout, api_base=api_base)
        self._client = Client(
            account_sid,
            auth_token,
            http_client=self.http_client,
            environment=_NO_ENVIRONMENT,
        )

    def __repr__(self) -> str:  # never show credentials or the sender
        return f"<TwilioSender api_base={self.http_client.api_base or 'https://api.twilio.com'}>"

    def send(self, to: str, body: str, channel: Channel) -> None:
        if not to.strip():
            # Twilio answers 21604 ("A 'To' phone number is required"); the
            # Prism mock accepts an empty `To`, so refuse it here, unsent.
            raise DeliveryRejected(f"twilio {channel}: no recipient")
        if channel == "sms":
            from_, to_ = self._sender, to
        elif channel == "whatsapp":
            from_, to_ = _WHATSAPP + self._sender, _WHATSAPP + to.removeprefix(_WHATSAPP)
        else:
            raise ValueError(f"unknown channel {channel!r}")
        try:
            self._client.messages.create(to=to_, from_=from_, body=body)
        except (TwilioRestException, TwilioServiceException) as exc:
            error = DeliveryRejected if _is_refusal(exc.status) else DeliveryError
            raise error(_describe(channel, exc.status, exc.code)) from None
        except requests.ConnectTimeout:  # before requests.Timeout: no connection, nothing sent
            raise DeliveryRejected(f"twilio {channel}: connection failed (timeout)") from None
        except requests.Timeout:
            raise DeliveryError(f"twilio {channel}: no answer within {self.timeout:g} s (timeout)") from None
        except requests.ConnectionError as exc:
            if _never_connected(exc):
                raise DeliveryRejected(f"twilio {channel}: connection failed") from None
            raise DeliveryError(f"twilio {channel}: connection lost before an answer") from None
        except (requests.RequestException, TwilioException, ValueError) as exc:
            # ValueError: a 2xx answer that is not JSON (so probably accepted).
            raise DeliveryError(f"twilio {channel}: request failed ({type(exc).__name__})") from None


def _is_refusal(status: Any) -> bool:
    """Twilio answers 4xx only when it did not take the message (bad number, auth, 429)."""
    return isinstance(status, int) and 400 <= status < 500


def _never_connected(exc: requests.ConnectionError) -> bool:
    """True when the request could not have left: refused, unresolvable, TLS handshake failed.

    requests wraps urllib3's reason in a MaxRetryError (retries are off: one attempt)."""
    if isinstance(exc, requests.exceptions.SSLError):
        return True
    reason = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)
    return isinstance(reason, (urllib3.exceptions.NewConnectionError, urllib3.exceptions.ConnectTimeoutError))


def _describe(channel: str, status: Any, code: Any) -> str:
    status_text = f"HTTP {status}" if isinstance(status, int) else "HTTP ?"
    # The SDK puts the HTTP status in `code` when Twilio sent no error code.
    if isinstance(code, int) and code != status:
        return f"twilio {channel}: {status_text}, Twilio error {code}"
    return f"twilio {channel}: {status_text}"


def sender_from_secrets(get_secret: Callable[[str], str], api_base: str | None) -> TwilioSender:
    """Build the sender from Secret Manager values (`twilio-account-sid`, `twilio-auth-token`, `twilio-sender`).

    Values are stripped (a secret added with `echo` ends with a newline).
    An empty value or an account SID that is not `AC` + 32 hex digits raises
    `SecretUnavailable` naming the secret, never showing its value.
    """
    values = {}
    for secret_id in (SECRET_ACCOUNT_SID, SECRET_AUTH_TOKEN, SECRET_SENDER):
        value = get_secret(secret_id).strip()
        if not value:
            raise SecretUnavailable(secret_id, "empty")
        values[secret_id] = value
    if not ACCOUNT_SID_PATTERN.match(values[SECRET_ACCOUNT_SID]):
        malformed = "not an account SID (AC followed by 32 hex digits)"
        raise SecretUnavailable(SECRET_ACCOUNT_SID, malformed)
    return TwilioSender(
        values[SECRET_ACCOUNT_SID],
        values[SECRET_AUTH_TOKEN],
        values[SECRET_SENDER],
        api_base=api_base,
    )
