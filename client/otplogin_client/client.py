"""`Client`: one method per function, typed answers and errors, retries only where safe.

Retry policy (the reason each call is, or is not, retried):

| call | retried when | why |
| --- | --- | --- |
| `health`, `jwks` (GET) | any connection failure or timeout, and 502/503/504 answers | reading has no effect on the server |
| `send_otp`, `login` (POST) | only when the request never left: connection refused, name not resolved, connect timeout | each one may text a code and counts against limits: a request that may have arrived is never repeated |
| `verify_otp`, `verify_second_factor` (POST) | never | a code is single-use and every attempt is counted; the caller decides |
| `refresh`, `logout` (POST) | only when the request never left | a refresh that may have landed spent its token: the server answers a retry with the same token within its reuse grace (10 s) with the same successor, after it as theft, so the caller retries a `Timeout` at once or signs in again |

Retries wait `backoff * 2**n` seconds with full jitter (at most `max_retry_wait`,
or the server's `Retry-After` when it is within that bound), `retries` times at most.
Every call has a timeout (`connect_timeout` to connect, `timeout` for the answer);
a `Timeout` means the request was sent and its outcome is unknown.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Mapping
from enum import Enum
from typing import Any, TypeVar

import requests
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from otplogin_client.errors import Timeout, TransportError, UnexpectedResponse, error_for
from otplogin_client.models import Function, Health, LoginResult, SecondFactorRequired, SendResult, Token, User

__all__ = ["Client", "solve_altcha"]

T = TypeVar("T")

JWKS_PATH = "/.well-known/jwks.json"
USER_AGENT = "otplogin-client/0.1"
_RETRY_STATUSES = frozenset({502, 503, 504})


class _Retry(Enum):
    NEVER = "never"  # verify: not even a request that never left
    UNSENT = "unsent"  # non-idempotent POST: only when provably not sent
    IDEMPOTENT = "idempotent"  # GET: any transport failure and 502/503/504


class Client:
    """Calls the three functions at their URLs (`make run`: http://127.0.0.1:8081, :8082, :8083).

        with Client(send_url, verify_url, login_url) as api:
            api.send_otp("+243812345678", locale="fr")
            token = api.verify_otp("+243812345678", "123456")

    Thread-safe as far as `requests.Session` is (one client per thread is simplest).
    """

    def __init__(
        self,
        send_otp_url: str,
        verify_otp_url: str,
        login_url: str,
        *,
        timeout: float = 5.0,
        connect_timeout: float | None = None,
        retries: int = 2,
        backoff: float = 0.25,
        max_retry_wait: float = 10.0,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if timeout <= 0 or retries < 0 or backoff < 0:
            raise ValueError("timeout must be positive; retries and backoff may not be negative")
        self.urls: dict[Function, str] = {
            "send_otp": send_otp_url.rstrip("/"),
            "verify_otp": verify_otp_url.rstrip("/"),
            "login": login_url.rstrip("/"),
        }
        self.timeout = (connect_timeout if connect_timeout is not None else timeout, timeout)
        self.retries = retries
        self.backoff = backoff
        self.max_retry_wait = max_retry_wait
        self._session = session or requests.Session()
        self._own_session = session is None
        self._sleep = sleep

    @classmethod
    def for_project(cls, base_url: str, **options: Any) -> Client:
        """Functions served as `BASE/send_otp`, `BASE/verify_otp`, `BASE/login`
        (`https://REGION-PROJECT.cloudfunctions.net`)."""
        base = base_url.rstrip("/")
        return cls(f"{base}/send_otp", f"{base}/verify_otp", f"{base}/login", **options)

    # -- the functions -----------------------------------------------------------------
    def send_otp(
        self,
        phone: str,
        channel: str = "sms",
        locale: str | None = None,
        *,
        altcha: str | None = None,
        attestation: str | None = None,
    ) -> SendResult:
        """Text a one-time code to `phone` (E.164) by "sms" or "whatsapp", in `locale` ("fr", "en").

        After ChallengeRequired, call again with `altcha` (the solved challenge's payload,
        see `solve_altcha`) or `attestation` (an app attestation token).

        Raises InvalidPhone, CountryNotAllowed, ChallengeRequired (`altcha_challenge`, `limit`),
        RateLimited (`retry_after`, `limit`), SmsDeliveryFailed (call again at once, or after
        its `retry_after`), Unavailable, InvalidRequest.
        """
        body = _drop_none(
            {"phone": phone, "channel": channel, "locale": locale, "altcha": altcha, "attestation": attestation}
        )
        data = self._call("POST", self.urls["send_otp"], body, _Retry.UNSENT)
        return _build(lambda: SendResult(expires_in=int(data["expires_in"]), resend_after=int(data["resend_after"])), data)

    def verify_otp(self, phone: str, code: str) -> Token:
        """Check the code `phone` received; its access token (subject `phone:+E164`).

        Never retried. Raises InvalidCode (`attempts_remaining`), CodeExpired (expired,
        used or never sent: ask for a new one), TooManyAttempts (`retry_after`), InvalidRequest.
        """
        data = self._call("POST", self.urls["verify_otp"], {"phone": phone, "code": code}, _Retry.NEVER)
        return _token(data)

    def verify_second_factor(self, mfa_token: str | SecondFactorRequired, code: str) -> Token:
        """Finish a login that answered `SecondFactorRequired` with the code texted to the user.

        Never retried. Raises the same errors as `verify_otp`; CodeExpired also when
        the step itself has expired (log in again).
        """
        token = mfa_token.mfa_token if isinstance(mfa_token, SecondFactorRequired) else mfa_token
        data = self._call("POST", self.urls["verify_otp"], {"mfa_token": token, "code": code}, _Retry.NEVER)
        return _token(data)

    def login(
        self,
        *,
        password: str,
        email: str | None = None,
        code: str | None = None,
        locale: str | None = None,
    ) -> LoginResult | SecondFactorRequired:
        """Sign in with `email` or the user `code` (exactly one) and `password`.

        A user with a second factor gets `SecondFactorRequired` (a code was texted to
        them, in `locale`); the others a `LoginResult`. Raises InvalidCredentials
        (unknown user and wrong password alike), AccountLocked / RateLimited
        (`retry_after`), InvalidRequest.
        """
        if (email is None) == (code is None):
            raise ValueError("give exactly one of email and code")
        body = _drop_none({"email": email, "code": code, "password": password, "locale": locale})
        data = self._call("POST", self.urls["login"], body, _Retry.UNSENT)
        if data.get("mfa_required") is True:
            return _build(
                lambda: SecondFactorRequired(
                    mfa_token=str(data["mfa_token"]),
                    channel=str(data["channel"]),
                    phone_hint=str(data["phone_hint"]),
                    expires_in=int(data["expires_in"]),
                    resend_after=int(data["resend_after"]),
                ),
                data,
            )

        def result() -> LoginResult:
            user = data["user"]
            return LoginResult(
                token=_token(data),
                user=User(
                    id=str(user["id"]), email=str(user["email"]), code=str(user["code"]), role=str(user["role"]),
                    phone=user["phone"], address=user["address"], whatsapp=user["whatsapp"],
                ),  # fmt: skip
                unavailable_fields=tuple(data.get("unavailable_fields") or ()),
            )

        return _build(result, data)

    def refresh(self, refresh_token: str | Token) -> Token:
        """Rotate a refresh token: a new access token and the successor refresh token (the old one is spent).

        Keep the successor and drop the old token. Raises InvalidGrant when the session is over
        (unknown, spent, revoked or expired: sign in again); a spent token also ends the session.
        """
        token = refresh_token.refresh_token if isinstance(refresh_token, Token) else refresh_token
        if not token:
            raise ValueError("this Token carries no refresh token")
        body = {"grant_type": "refresh_token", "refresh_token": token}
        return _token(self._call("POST", self.urls["login"], body, _Retry.UNSENT))

    def logout(
        self, refresh_token: str | Token | None = None, *, all_sessions: bool = False, access_token: str | Token | None = None
    ) -> None:
        """Sign out: revoke `refresh_token`'s session, and with `all_sessions` every session of the
        access token's subject (`access_token` required). Unknown tokens are not an error.
        Raises InvalidToken when `all_sessions` is given without a valid access token."""
        token = refresh_token.refresh_token if isinstance(refresh_token, Token) else refresh_token
        bearer = access_token.access_token if isinstance(access_token, Token) else access_token
        if all_sessions and not bearer:
            raise ValueError("all_sessions needs the access_token")
        if not token and not all_sessions:
            raise ValueError("give refresh_token, or all_sessions with access_token")
        body: dict[str, Any] = _drop_none({"refresh_token": token, "all_sessions": all_sessions or None})
        headers = {"Authorization": f"Bearer {bearer}"} if bearer else None
        self._call("POST", self.urls["login"] + "/logout", body, _Retry.UNSENT, headers=headers)

    def jwks(self) -> dict[str, Any]:
        """login's public keys (`{"keys": [...]}`, RFC 7517) that verify every access token."""
        data = self._call("GET", self.urls["login"] + JWKS_PATH, None, _Retry.IDEMPOTENT)
        if not isinstance(data.get("keys"), list):
            raise UnexpectedResponse(200, json.dumps(data))
        return data

    def health(self, function: Function) -> Health:
        """`function`'s readiness. A report of a dependency that is not ready is an answer
        (`Health.ok` False), not an error; a function that cannot even read its
        configuration raises Unavailable."""
        data = self._call("GET", self.urls[function] + "/healthz", None, _Retry.IDEMPOTENT, report_ok=True)
        return _build(lambda: Health(status=str(data["status"]), checks=dict(data["checks"])), data)

    # -- plumbing ------------------------------------------------------------------------
    def close(self) -> None:
        if self._own_session:
            self._session.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(
        self, method: str, url: str, body: Mapping[str, Any] | None, retry: _Retry, *, report_ok: bool = False,
        headers: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        attempt = 0
        while True:
            try:
                response = self._send(method, url, body, headers)
            except TransportError as exc:
                if attempt < self.retries and _may_retry_transport(exc, retry):
                    self._pause(attempt, None)
                    attempt += 1
                    continue
                raise
            if retry is _Retry.IDEMPOTENT and response.status_code in _RETRY_STATUSES and attempt < self.retries:
                if not (report_ok and _is_health_report(response)):
                    self._pause(attempt, _retry_after(response))
                    attempt += 1
                    continue
            return _answer(response, report_ok=report_ok)

    def _send(
        self, method: str, url: str, body: Mapping[str, Any] | None, extra_headers: Mapping[str, str] | None = None
    ) -> requests.Response:
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT, **(extra_headers or {})}
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body).encode("utf-8")
        try:
            return self._session.request(
                method, url, data=data, headers=headers, timeout=self.timeout, allow_redirects=False
            )
        except requests.exceptions.ConnectTimeout as exc:
            raise TransportError(f"could not connect to {url} in time", sent=False) from exc
        except requests.exceptions.SSLError as exc:
            raise TransportError(f"TLS failed with {url}: {exc}", sent=False) from exc
        except requests.exceptions.Timeout as exc:
            raise Timeout(f"no answer from {url} within {self.timeout[1]} s") from exc
        except requests.exceptions.ConnectionError as exc:
            raise TransportError(f"connection to {url} failed: {exc}", sent=not _never_sent(exc)) from exc
        except requests.exceptions.RequestException as exc:
            raise TransportError(f"request to {url} failed: {exc}", sent=True) from exc

    def _pause(self, attempt: int, retry_after: int | None) -> None:
        if retry_after is not None and 0 < retry_after <= self.max_retry_wait:
            self._sleep(float(retry_after))
            return
        ceiling = min(self.max_retry_wait, self.backoff * 2**attempt)
        self._sleep(random.uniform(0, ceiling))  # noqa: S311 - jitter, not a secret


def solve_altcha(challenge: Mapping[str, Any], timeout: float = 60.0) -> str:
    """Solve an ALTCHA challenge (`ChallengeRequired.altcha_challenge`); the payload for `send_otp(altcha=)`.

    Needs the `altcha` package (`pip install otplogin-client[altcha]`). A browser uses the
    ALTCHA widget instead. Costs the CPU the server asked for: that is the point."""
    try:
        from altcha import Challenge, Payload, solve_challenge
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RuntimeError("solve_altcha needs the altcha package: pip install otplogin-client[altcha]") from exc
    parsed = Challenge.from_dict(dict(challenge))
    solution = solve_challenge(parsed, timeout=timeout)
    if solution is None:
        raise RuntimeError(f"the ALTCHA challenge was not solved within {timeout} s")
    payload: str = Payload(parsed, solution).to_base64()
    return payload


def _never_sent(exc: requests.exceptions.ConnectionError) -> bool:
    """True when urllib3 failed while opening the connection (refused, DNS, connect timeout):
    then no byte of the request reached the server."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, NewConnectionError | ConnectTimeoutError):
            return True
        todo.extend([current.__cause__, current.__context__, getattr(current, "reason", None)])
        todo.extend(arg for arg in current.args if isinstance(arg, BaseException))
    return False


def _may_retry_transport(exc: TransportError, retry: _Retry) -> bool:
    if retry is _Retry.IDEMPOTENT:
        return not isinstance(exc.__cause__, requests.exceptions.SSLError)
    if retry is _Retry.UNSENT:
        return not exc.sent and not isinstance(exc.__cause__, requests.exceptions.SSLError)
    return False


def _is_health_report(response: requests.Response) -> bool:
    try:
        data = response.json()
    except ValueError:
        return False
    return isinstance(data, dict) and "status" in data and "checks" in data


def _retry_after(response: requests.Response) -> int | None:
    raw = response.headers.get("Retry-After", "")
    return int(raw) if raw.isdigit() else None


def _answer(response: requests.Response, *, report_ok: bool) -> dict[str, Any]:
    if response.status_code == 204:  # logout: nothing to say
        return {}
    text = response.text
    try:
        data = response.json()
    except ValueError:
        raise UnexpectedResponse(response.status_code, text) from None
    if not isinstance(data, dict):
        raise UnexpectedResponse(response.status_code, text)
    if 200 <= response.status_code < 300 or (report_ok and response.status_code == 503 and "checks" in data):
        return data
    error = data.get("error")
    if not (isinstance(error, dict) and isinstance(error.get("code"), str)):
        raise UnexpectedResponse(response.status_code, text)
    extra = {k: v for k, v in error.items() if k not in ("code", "message", "retry_after")}
    retry_after = _retry_after(response)
    if retry_after is None and isinstance(error.get("retry_after"), int):
        retry_after = error["retry_after"]
    raise error_for(error["code"], response.status_code, str(error.get("message", "")), extra, retry_after)


def _token(data: Mapping[str, Any]) -> Token:
    return _build(
        lambda: Token(
            access_token=str(data["access_token"]), token_type=str(data["token_type"]), expires_in=int(data["expires_in"]),
            refresh_token=str(data["refresh_token"]), refresh_expires_in=int(data["refresh_expires_in"]),
        ),
        data,
    )


def _build(make: Callable[[], T], data: Mapping[str, Any]) -> T:
    """A success body missing a field the contract requires is an unexpected answer, not a KeyError."""
    try:
        return make()
    except (KeyError, TypeError, ValueError):
        raise UnexpectedResponse(200, json.dumps(data)[:500]) from None


def _drop_none(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if v is not None}

