"""What a successful sign-in answers: a signed access token, a refresh token and their lifetimes.

Every sign-in starts a refresh-token family (otplogin.refresh); a refresh answers the same shape."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from otplogin import log, runtime, users
from otplogin.errors import CodeExpired, InvalidRequest, InvalidToken
from otplogin.refresh import Issued

if TYPE_CHECKING:  # verify_otp imports this module: keep password hashing out of its cold start
    from otplogin.signin import SecondFactorSent
    from otplogin.users import User


def token_response(subject: str, claims: dict[str, Any], *, user: str | None = None) -> dict[str, Any]:
    """A sign-in's answer: an access token and the first refresh token of a new family."""
    return _render(runtime.refresh_tokens().issue(subject, claims, user=user))


def _render(issued: Issued) -> dict[str, Any]:
    signer = runtime.token_signer()
    return {
        "access_token": signer.issue(issued.subject, issued.claims),
        "token_type": "Bearer",
        "expires_in": signer.ttl_seconds,
        "refresh_token": issued.refresh_token,
        "refresh_expires_in": issued.expires_in,
    }


def refresh(refresh_token: str) -> dict[str, Any]:
    """`grant_type=refresh_token`: the successor and a new access token, or 401 `invalid_grant`."""
    return _render(runtime.refresh_tokens().refresh(refresh_token))


def logout(refresh_token: str | None, all_sessions: bool, bearer: str | None) -> None:
    """Revoke the token's family; with `all_sessions`, every family of the access token's subject.

    An unknown or malformed refresh token is not told apart from a real one (no oracle)."""
    if all_sessions:
        import jwt

        try:
            claims = runtime.token_signer().verify(bearer or "")
        except jwt.InvalidTokenError:
            raise InvalidToken() from None
        runtime.refresh_tokens().revoke_subject(claims["sub"], "logout_all")
    if refresh_token:
        runtime.refresh_tokens().revoke(refresh_token)


def sign_in_with_phone(phone: str, code: str, client_ip: str) -> dict[str, Any]:
    """verify_otp's answer. A phone proves itself: subject `phone:+E164`.

    The session family is created in the code's consume commit (a retried decision makes a new one;
    the one answered is the one committed)."""
    started: list[Issued] = []

    def family(e164: str) -> dict[str, Any]:
        issued, path, doc = runtime.refresh_tokens().new_family(f"phone:{e164}", {"phone_number": e164, "amr": ["otp"]})
        started.append(issued)
        return {path: doc}

    runtime.otp_service().verify(phone, code, client_ip, also_write=family)
    return _render(started[-1])


def _user_claims(user: User, amr: list[str]) -> dict[str, Any]:
    return {"email": user.email, "code": user.code, "role": user.role, "amr": amr}


def sign_in_with_password(
    *, email: str | None, code: str | None, password: str, client_ip: str, locale: str | None
) -> dict[str, Any]:
    """login's answer: the profile and tokens, or the second-factor step.

    The session family is created in the sign-in's own success commit (the one created last is
    the one committed)."""
    from otplogin.signin import SecondFactorSent

    started: list[Issued] = []

    def family(user: User) -> dict[str, Any]:
        issued, path, doc = runtime.refresh_tokens().new_family(user.id, _user_claims(user, ["pwd"]), user=user.code)
        started.append(issued)
        return {path: doc}

    result = runtime.signin().login(
        email=email, code=code, password=password, client_ip=client_ip, locale=locale, also_write=family
    )
    if isinstance(result, SecondFactorSent):
        return second_factor_response(result)
    answer = for_user(result.user, ["pwd"], started[-1]) | {"user": user_profile(result.user, result.pii)}
    if result.unavailable_fields:
        answer["unavailable_fields"] = result.unavailable_fields
    return answer


def for_user(user: User, amr: list[str], issued: Issued | None = None) -> dict[str, Any]:
    """A user's tokens: subject is the stable user id, role and email as claims; a new family
    unless the sign-in already committed one (`issued`).

    `login_succeeded` is logged here, once the token exists, so the metric counts only real sign-ins."""
    if issued is None:
        response = token_response(user.id, _user_claims(user, amr), user=user.code)
    else:
        response = _render(issued)
    log.event("login_succeeded", "login succeeded", user=user.code, mfa="otp" in amr)
    return response


def user_profile(user: User, pii: dict[str, str | None]) -> dict[str, Any]:
    return {"id": user.id, "email": user.email, "code": user.code, "role": user.role, **pii}


def second_factor_response(step: SecondFactorSent) -> dict[str, Any]:
    """The password was right; the login completes at verify_otp with this token and the code."""
    mfa_token = runtime.mfa_signer().issue(step.user.id, {"user": step.user.code, "pk": step.phone_key})
    return {
        "mfa_required": True,
        "mfa_token": mfa_token,
        "channel": "sms",
        "phone_hint": step.phone_hint,
        "expires_in": step.sent.expires_in,
        "resend_after": step.sent.resend_after,
    }


def complete_second_factor(mfa_token: str, code: str, client_ip: str) -> dict[str, Any]:
    """verify_otp's answer for a login's second factor: the user's token, with `amr` pwd + otp."""
    import jwt

    try:
        claims = runtime.mfa_signer().verify(mfa_token)
    except jwt.ExpiredSignatureError:
        raise CodeExpired() from None
    except jwt.InvalidTokenError:
        raise InvalidRequest("mfa_token is not valid.", field="mfa_token") from None
    runtime.otp_service().verify_second_factor(claims["pk"], claims["user"], code, client_ip)
    user = users.get_by_code(claims["user"])
    if user is None:
        raise CodeExpired()
    return for_user(user, ["pwd", "otp"])
