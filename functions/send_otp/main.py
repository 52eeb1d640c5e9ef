"""send_otp: validate a phone, apply abuse limits, store a hashed code, deliver it."""

from collections.abc import Mapping
from typing import Any

import flask
import functions_framework

from otplogin import http, runtime
from otplogin.http import string_field

SECRETS = (runtime.OTP_PEPPER, *runtime.TWILIO_SECRETS)


def _send(body: Mapping[str, Any], ctx: http.Context) -> tuple[int, dict[str, Any]]:
    phone = string_field(body, "phone", max_length=32)
    channel = string_field(body, "channel", max_length=16, required=False)
    locale = string_field(body, "locale", max_length=16, required=False)
    sent = runtime.otp_service().send(phone, "sms" if channel is None else channel, locale, ctx.client_ip)
    return 202, {"status": "sent", "expires_in": sent.expires_in, "resend_after": sent.resend_after}


@functions_framework.http
def send_otp(request: flask.Request) -> flask.Response:
    return http.handle(request, post=_send, health=lambda: runtime.health(SECRETS))
