"""verify_otp: check a code atomically; on success answer a signed access token."""

import functions_framework

from otplogin import http, runtime, sessions
from otplogin.http import string_field

SECRETS = (runtime.OTP_PEPPER, runtime.JWT_SIGNING_KEYS)


def _verify(body, ctx):
    phone = string_field(body, "phone", max_length=32)
    code = string_field(body, "code", max_length=16)
    verified = runtime.otp_service().verify(phone, code)
    return 200, sessions.for_verified_phone(verified)


@functions_framework.http
def verify_otp(request):
    return http.handle(request, post=_verify, health=lambda: runtime.health(SECRETS))
