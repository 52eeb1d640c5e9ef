"""send_otp: validate a phone, apply abuse limits, store a hashed code, deliver it."""

from collections.abc import Mapping
from typing import Any

import flask
import functions_framework

from otplogin import http, runtime
from otplogin.guard import Proof
from otplogin.http import string_field

SECRETS = (runtime.OTP_PEPPER, *runtime.TWILIO_SECRETS)
runtime.load_before_fork("phones", "sms")


def _send(body: Mapping[str, Any], ctx: http.Context) -> tuple[int, dict[str, Any]]:
    phone = string_field(body, "phone", max_length=32)
    channel = string_field(body, "channel", max_length=16, required=False)
    locale = string_field(body, "locale", max_length=16, required=False)
    # A passed challenge (403 challenge_required offered it): ALTCHA's payload, or an app attestation token.
    proof = Proof(string_field(body, "altcha", max_length=4096, required=False),
                  string_field(body, "attestation", max_length=4096, required=False))
    sent = runtime.otp_service().send(phone, "sms" if channel is None else channel, locale, ctx.client_ip, proof=proof)
    return 202, {"status": "sent", "expires_in": sent.expires_in, "resend_after": sent.resend_after}


@functions_framework.http
def send_otp(request: flask.Request) -> flask.Response:
    return http.handle(request, post=_send, health=lambda: runtime.health(SECRETS))
