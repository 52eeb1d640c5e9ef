"""login: email or user code + password; decrypted profile and a token, or a second factor."""

from collections.abc import Mapping
from typing import Any

import flask
import functions_framework

from otplogin import http, runtime, sessions, users
from otplogin.errors import InvalidRequest
from otplogin.http import string_field
from otplogin.signin import SecondFactorSent

SECRETS = (runtime.OTP_PEPPER, runtime.JWT_SIGNING_KEYS, runtime.PII_KEYRING, *runtime.TWILIO_SECRETS)


def _login(body: Mapping[str, Any], ctx: http.Context) -> tuple[int, dict[str, Any]]:
    email = string_field(body, "email", max_length=320, required=False)
    code = string_field(body, "code", max_length=32, required=False)
    if bool(email) == bool(code):
        raise InvalidRequest("Give either email or code.", field="email")
    password = string_field(body, "password", max_length=1024)
    locale = string_field(body, "locale", max_length=16, required=False)
    runtime.token_signer(), runtime.mfa_signer()  # before any text is sent: a key problem answers 503 first
    result = runtime.signin().login(email=email, code=code, password=password, client_ip=ctx.client_ip, locale=locale)
    if isinstance(result, SecondFactorSent):
        return 200, sessions.second_factor_response(result)
    answer = sessions.for_user(result.user, ["pwd"]) | {"user": sessions.user_profile(result.user, result.pii)}
    if result.unavailable_fields:
        answer["unavailable_fields"] = result.unavailable_fields
    return 200, answer


def _health() -> dict[str, Any]:
    return runtime.health(SECRETS, {"pii_keyring": lambda: users.canary_status(runtime.pii_keyring())})


@functions_framework.http
def login(request: flask.Request) -> flask.Response:
    return http.handle(
        request, post=_login, health=_health, get_routes={"/.well-known/jwks.json": lambda: runtime.token_signer().jwks()}
    )
