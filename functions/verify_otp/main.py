"""verify_otp: check a code atomically; on success answer a signed access token.

`{"phone", "code"}` proves a phone; `{"mfa_token", "code"}` completes a login's second factor.
"""

from collections.abc import Mapping
from typing import Any

import flask
import functions_framework

from otplogin import http, runtime, sessions
from otplogin.http import string_field

SECRETS = (runtime.OTP_PEPPER, runtime.JWT_SIGNING_KEYS)
runtime.load_before_fork("tokens")


def _verify(body: Mapping[str, Any], ctx: http.Context) -> tuple[int, dict[str, Any]]:
    code = string_field(body, "code", max_length=16)
    mfa_token = string_field(body, "mfa_token", max_length=2048, required=False)
    runtime.token_signer()  # before the code is consumed: a key problem answers 503 and the code stays usable
    if mfa_token:
        return 200, sessions.complete_second_factor(mfa_token, code, ctx.client_ip)
    phone = string_field(body, "phone", max_length=32)
    return 200, sessions.sign_in_with_phone(phone, code, ctx.client_ip)


@functions_framework.http
def verify_otp(request: flask.Request) -> flask.Response:
    return http.handle(request, post=_verify, health=lambda: runtime.health(SECRETS))
