"""login: email or user code + password; decrypted profile and tokens, or a second factor.

`{"grant_type": "refresh_token", "refresh_token"}` rotates a refresh token; `POST /logout` signs out."""

from collections.abc import Mapping
from typing import Any

import flask
import functions_framework

from otplogin import http, refresh, runtime, sessions, users
from otplogin.errors import InvalidRequest
from otplogin.http import string_field

SECRETS = (runtime.OTP_PEPPER, runtime.JWT_SIGNING_KEYS, runtime.PII_KEYRING, *runtime.TWILIO_SECRETS)
runtime.load_before_fork("tokens", "sign_in")


def _post(body: Mapping[str, Any], ctx: http.Context) -> tuple[int, dict[str, Any]]:
    if ctx.path.rstrip("/") == "/logout":
        return _logout(body, ctx)
    grant_type = string_field(body, "grant_type", max_length=32, required=False)
    if grant_type is None or grant_type == "password":
        return _login(body, ctx)
    if grant_type != "refresh_token":
        raise InvalidRequest("grant_type must be 'password' or 'refresh_token'.", field="grant_type")
    runtime.token_signer()  # a key problem answers 503 before the token is spent
    return 200, sessions.refresh(string_field(body, "refresh_token", max_length=refresh.MAX_TOKEN_LENGTH))


def _logout(body: Mapping[str, Any], ctx: http.Context) -> tuple[int, dict[str, Any]]:
    token = string_field(body, "refresh_token", max_length=refresh.MAX_TOKEN_LENGTH, required=False)
    everywhere = body.get("all_sessions", False)
    if not isinstance(everywhere, bool):
        raise InvalidRequest("all_sessions must be true or false.", field="all_sessions")
    if not token and not everywhere:
        raise InvalidRequest("Give refresh_token, or all_sessions with a Bearer access token.", field="refresh_token")
    sessions.logout(token, everywhere, ctx.bearer)
    return 204, {}


def _login(body: Mapping[str, Any], ctx: http.Context) -> tuple[int, dict[str, Any]]:
    email = string_field(body, "email", max_length=320, required=False)
    code = string_field(body, "code", max_length=32, required=False)
    if bool(email) == bool(code):
        raise InvalidRequest("Give either email or code.", field="email")
    password = string_field(body, "password", max_length=1024)
    locale = string_field(body, "locale", max_length=16, required=False)
    runtime.token_signer(), runtime.mfa_signer()  # before any text is sent: a key problem answers 503 first
    return 200, sessions.sign_in_with_password(
        email=email, code=code, password=password, client_ip=ctx.client_ip, locale=locale
    )


def _health() -> dict[str, Any]:
    return runtime.health(SECRETS, {"pii_keyring": lambda: users.canary_status(runtime.pii_keyring())})


@functions_framework.http
def login(request: flask.Request) -> flask.Response:
    return http.handle(
        request, post=_post, health=_health, get_routes={"/.well-known/jwks.json": lambda: runtime.token_signer().jwks()}
    )
