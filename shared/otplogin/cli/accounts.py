"""Commands that write accounts and the canary: ``init``, ``create-user``, ``bootstrap-admin``,
``set-password``, ``delete-user`` and ``revoke-sessions`` (the last three sign the user out everywhere).

They make one-off changes an operator types by hand, apart from the long
key rotation and the read-only check.
"""

from __future__ import annotations

import argparse
from typing import cast

from otplogin import passwords, phone, runtime, store, users
from otplogin.cli.common import DOCS, CanaryState, CliError, Context, canary_state, check_password, read_password
from otplogin.errors import ApiError
from otplogin.keyring import Keyring
from otplogin.refresh import RefreshTokens

MAX_ADDRESS_LENGTH = 500


def _api_message(exc: ApiError) -> str:
    field_name = exc.data.get("field")
    return f"--{field_name}: {exc.message}" if field_name else exc.message


def _normalize_phone(option: str, raw: str | None) -> str | None:
    if raw is None or not raw.strip():
        return None
    try:
        return phone.normalize(raw)
    except ApiError as exc:
        raise CliError(f"--{option}: {exc.message}") from None


# -- init ------------------------------------------------------------------------


def cmd_init(ctx: Context, args: argparse.Namespace) -> int:
    ring, _ = ctx.keyring()
    path = users.CANARY_PATH

    def decide(docs: store.Docs) -> store.Plan[tuple[str, CanaryState]]:
        state = canary_state(docs[path], ring)
        if state.status == "canary_missing":
            return store.Plan(("created", state), {path: users.canary_document(ring)})
        if args.force:
            return store.Plan(("replaced", state), {path: users.canary_document(ring)})
        return store.Plan(("kept", state))

    action, state = store.atomic_update([path], decide)
    if action == "created":
        ctx.say(f"canary written with key {ring.primary_kid} ({path})")
    elif action == "replaced":
        ctx.say(f"canary replaced with key {ring.primary_kid} (--force; it was: {state.status})")
    elif state.status == "ok":
        ctx.say(f"canary present and it decrypts with pii-keyring (key {state.kid}): nothing to do")
    else:
        raise CliError(
            f"the stored canary does not decrypt with pii-keyring ({state.detail}): the keyring is not "
            f"the one the data needs. Not overwritten: see {DOCS}, 'encryption_key_mismatch'. "
            "Use `init --force` only if no stored data needs the missing key."
        )
    return 0


# -- create-user / bootstrap-admin ------------------------------------------------


def _create(
    ctx: Context, *, code: str, email: str, role: str, password: str, pii: dict[str, str | None], mfa: bool
) -> users.User:
    ring = ctx.keyring()[0] if any(pii.values()) else cast(Keyring, None)  # no PII: the ring is never used
    password_hash = passwords.hash_password(password)
    try:
        return users.create(
            code=code, email=email, password_hash=password_hash, role=role, keyring=ring, pii=pii, mfa_enabled=mfa
        )
    except users.UserExists:
        raise CliError(f"a user with code {code} or email {email} already exists: nothing was changed") from None


def cmd_create_user(ctx: Context, args: argparse.Namespace) -> int:
    try:
        email, code = users.normalize_email(args.email), users.normalize_code(args.code)
    except ApiError as exc:
        raise CliError(_api_message(exc)) from None
    mobile = _normalize_phone("phone", args.phone)
    whatsapp = _normalize_phone("whatsapp", args.whatsapp)
    address = (args.address or "").strip() or None
    if address and len(address) > MAX_ADDRESS_LENGTH:
        raise CliError(f"--address is longer than {MAX_ADDRESS_LENGTH} characters")
    if args.mfa:
        if not mobile:
            raise CliError("--mfa needs --phone: the second factor is a code sent to that number")
        try:
            phone.validate_for_delivery(mobile, ctx.cfg.allowed_countries)
        except ApiError as exc:
            raise CliError(f"--phone cannot receive the second factor: {exc.message}") from None
    if users.get_by_code(code) or users.get_by_email(email):
        raise CliError(f"a user with code {code} or email {email} already exists: nothing was changed")
    pii = {"phone": mobile, "address": address, "whatsapp": whatsapp}
    if any(pii.values()):
        ctx.keyring()  # fail on a missing keyring before asking for the password
    password = read_password(args.password_stdin)
    user = _create(ctx, code=code, email=email, role=args.role, password=password, pii=pii, mfa=args.mfa)
    fields = ", ".join(name for name, value in pii.items() if value) or "none"
    ctx.say(
        f"created user {user.code} ({user.email}, role {user.role}, second factor "
        f"{'on' if args.mfa else 'off'}, encrypted fields: {fields})"
    )
    return 0


def cmd_bootstrap_admin(ctx: Context, args: argparse.Namespace) -> int:
    try:
        email, code = users.normalize_email(args.email), users.normalize_code(args.code)
    except ApiError as exc:
        raise CliError(_api_message(exc)) from None
    by_code, by_email = users.get_by_code(code), users.get_by_email(email)
    if by_code and by_code.email == email and by_code.role == "admin":
        ctx.say(f"admin {code} ({email}) already exists: not changed")
        return 0
    if by_code or by_email:
        raise CliError(
            f"a user with code {code} or email {email} exists but is not this admin account: nothing was changed"
        )
    password = ctx.secret(runtime.ADMIN_PASSWORD)
    check_password(password, f"secret '{runtime.ADMIN_PASSWORD}'")
    if password != password.strip():
        ctx.note(
            f"note: secret '{runtime.ADMIN_PASSWORD}' starts or ends with whitespace (a newline from `echo`?): "
            "it is part of the password as stored"
        )
    _create(ctx, code=code, email=email, role="admin", password=password, pii={}, mfa=False)
    ctx.say(f"created admin {code} ({email}) with the password of secret '{runtime.ADMIN_PASSWORD}'")
    return 0


# -- set-password / delete-user / revoke-sessions -----------------------------------
# Each revokes every refresh-token family of the user in the same atomic write as its change:
# one marker document, whatever the number of sessions.


def _find_user(args: argparse.Namespace) -> users.User:
    if bool(args.email) == bool(args.code):
        raise CliError("give either --email or --code")
    try:
        user = users.get_by_email(users.normalize_email(args.email)) if args.email else \
            users.get_by_code(users.normalize_code(args.code))
    except ApiError as exc:
        raise CliError(_api_message(exc)) from None
    if user is None:
        raise CliError(f"no user with {'email ' + args.email if args.email else 'code ' + args.code}")
    return user


def _sign_out_writes(ctx: Context, user: users.User) -> dict[str, store.Merge]:
    pepper = ctx.secret(runtime.OTP_PEPPER)
    writes = RefreshTokens(ctx.cfg, pepper=lambda: pepper).revoke_subject_writes(user.id)
    return {path: store.Merge(doc) for path, doc in writes.items()}


def _apply(user: users.User, writes: dict[str, object], paths: list[str]) -> None:
    def decide(docs: store.Docs) -> store.Plan[bool]:
        current = docs[user.path]
        if current is None or current.get("id") != user.id:
            return store.Plan(CliError(f"user {user.code} changed meanwhile: nothing was changed"))
        return store.Plan(True, dict(writes))

    store.atomic_update(paths, decide)


def cmd_set_password(ctx: Context, args: argparse.Namespace) -> int:
    user = _find_user(args)
    password = read_password(args.password_stdin)
    check_password(password, "the password")
    writes = {user.path: {"password_hash": passwords.hash_password(password)}, **_sign_out_writes(ctx, user)}
    _apply(user, writes, [user.path])
    ctx.say(f"password of user {user.code} changed; every session of the user is revoked")
    return 0


def cmd_delete_user(ctx: Context, args: argparse.Namespace) -> int:
    user = _find_user(args)
    email_path = f"{users.EMAILS}/{user.email}"
    _apply(user, {user.path: store.DELETE, email_path: store.DELETE, **_sign_out_writes(ctx, user)},
           [user.path, email_path])
    ctx.say(f"user {user.code} deleted; every session of the user is revoked")
    return 0


def cmd_revoke_sessions(ctx: Context, args: argparse.Namespace) -> int:
    user = _find_user(args)
    _apply(user, dict(_sign_out_writes(ctx, user)), [user.path])
    ctx.say(f"every session of user {user.code} is revoked (access tokens already issued expire within their lifetime)")
    return 0
