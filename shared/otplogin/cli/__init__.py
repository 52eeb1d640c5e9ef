"""Operator commands: ``otplogin-admin`` (or ``python -m otplogin.cli``).

    otplogin-admin init [--force]
    otplogin-admin create-user --email E --code C [--role user|admin] [--phone +E164]
                               [--address TEXT] [--whatsapp +E164] [--mfa] [--password-stdin]
    otplogin-admin bootstrap-admin --email E --code C
    otplogin-admin rotate-keys [--no-add] [--batch N] [--start-after CODE] [--workers N]
                               [--propagation-wait SECONDS]
    otplogin-admin check-keys [--sample N | --all]
    otplogin-admin rotate-signing-key [--publish-wait SECONDS]
    otplogin-admin set-password (--email E | --code C) [--password-stdin]
    otplogin-admin delete-user (--email E | --code C)
    otplogin-admin revoke-sessions (--email E | --code C)

The commands talk to the Firestore and Secret Manager of ``GOOGLE_CLOUD_PROJECT``
(the emulators when ``FIRESTORE_EMULATOR_HOST`` / ``SECRET_MANAGER_EMULATOR_HOST``
are set), read through the same settings as the functions. They never print a
secret, a password or decrypted PII: key ids (kids), user codes and counts only.

Exit status: 0 done, 1 error (message on stderr, no stack trace), 2 usage, 130 interrupted.
See docs/operations.md. This module parses arguments and maps errors to exit statuses;
the commands are in accounts, rotation and check, what they share in common.
"""

from __future__ import annotations

import argparse
import getpass  # re-exported: tests replace getpass.getpass (read_password looks it up when called)
import sys

from otplogin import users
from otplogin.cli.accounts import (
    cmd_bootstrap_admin,
    cmd_create_user,
    cmd_delete_user,
    cmd_init,
    cmd_revoke_sessions,
    cmd_set_password,
)
from otplogin.cli.check import cmd_check_keys
from otplogin.cli.common import CliError, Context
from otplogin.cli.rotation import ROTATION_LOCK_PATH, cmd_rotate_keys
from otplogin.cli.signing import cmd_rotate_signing_key
from otplogin.config import ConfigError, settings
from otplogin.errors import ApiError

__all__ = ["ROTATION_LOCK_PATH", "build_parser", "getpass", "main"]


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("expected seconds >= 0")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="otplogin-admin",
        description="Operator commands for the OTP and login functions (docs/operations.md). Configuration "
        "comes from GOOGLE_CLOUD_PROJECT, FIRESTORE_EMULATOR_HOST and SECRET_MANAGER_EMULATOR_HOST.",
        allow_abbrev=False,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("init", help="write the PII key canary if absent", allow_abbrev=False)
    p.add_argument("--force", action="store_true", help="replace a canary that does not decrypt (see the docs)")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser(
        "create-user", help="create a user (password from a prompt or stdin, never from arguments)",
        allow_abbrev=False,
    )
    p.add_argument("--email", required=True)
    p.add_argument("--code", required=True, help="user code, 4-32 of A-Z 0-9 (e.g. MAN0001RAB)")
    p.add_argument("--role", choices=users.ROLES, default="user")
    p.add_argument("--phone", help="mobile number in E.164 form (+243...)")
    p.add_argument("--address", help="postal address (free text)")
    p.add_argument("--whatsapp", help="WhatsApp number in E.164 form")
    p.add_argument("--mfa", action="store_true", help="require an SMS code after the password (needs --phone)")
    p.add_argument("--password-stdin", action="store_true", help="read the password from one line of stdin")
    p.set_defaults(func=cmd_create_user)

    p = sub.add_parser(
        "bootstrap-admin", help="create the admin account with the password in secret 'admin-password'",
        allow_abbrev=False,
    )
    p.add_argument("--email", required=True)
    p.add_argument("--code", required=True)
    p.set_defaults(func=cmd_bootstrap_admin)

    p = sub.add_parser(
        "rotate-keys", help="add a new PII key, re-encrypt every user, report which old keys are unused",
        allow_abbrev=False,
    )
    p.add_argument("--no-add", action="store_true", help="do not add a key: finish re-encrypting to the current one")
    p.add_argument("--batch", type=_positive, help="re-encrypt at most N users in this run, then stop")
    p.add_argument("--start-after", metavar="CODE", help="resume after this user code")
    p.add_argument("--workers", type=_positive, default=8, help="parallel user updates (default 8)")
    p.add_argument(
        "--propagation-wait", type=_seconds, metavar="SECONDS",
        help="seconds between adding the key and using it (default SECRETS_REFRESH_SECONDS + 30)",
    )
    p.set_defaults(func=cmd_rotate_keys)

    p = sub.add_parser("check-keys", help="decrypt the canary and a sample of users; report", allow_abbrev=False)
    group = p.add_mutually_exclusive_group()
    group.add_argument("--sample", type=_positive, default=50, help="users to check (default 50)")
    group.add_argument("--all", action="store_true", help="check every user")
    p.set_defaults(func=cmd_check_keys)

    p = sub.add_parser(
        "rotate-signing-key",
        help="publish a new JWT signing key, wait until every verifier has it, then sign with it",
        allow_abbrev=False,
    )
    p.add_argument(
        "--publish-wait", type=_seconds, metavar="SECONDS",
        help="seconds between publishing the key and signing with it "
        "(default SECRETS_REFRESH_SECONDS + 300 s of JWKS caching + 30)",
    )
    p.set_defaults(func=cmd_rotate_signing_key)

    for name, func, text in (
        ("set-password", cmd_set_password, "change a user's password and revoke every session of the user"),
        ("delete-user", cmd_delete_user, "delete a user and revoke every session of the user"),
        ("revoke-sessions", cmd_revoke_sessions, "revoke every refresh token of a user (a stolen device, a lock)"),
    ):
        p = sub.add_parser(name, help=text, allow_abbrev=False)
        p.add_argument("--email")
        p.add_argument("--code")
        if name == "set-password":
            p.add_argument("--password-stdin", action="store_true", help="read the password from one line of stdin")
        p.set_defaults(func=func)
    return parser


def _password_argument(argv: list[str]) -> bool:
    return any(
        arg.startswith(("--password", "--pass", "-p")) and arg != "--password-stdin" for arg in argv if arg != "--"
    )


def main(argv: list[str] | None = None) -> int:
    """Run one operator command; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if _password_argument(argv):
        # Checked before argparse, whose error would echo the value back.
        print(
            "error: passwords are never taken from the command line: type it at the prompt or pipe "
            "one line with --password-stdin",
            file=sys.stderr,
        )
        return 2
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    ctx = None
    try:
        ctx = Context(settings())
        return int(args.func(ctx, args))
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except ConfigError as exc:
        print(f"error: configuration: {exc}", file=sys.stderr)
        return 1
    except ApiError as exc:  # e.g. Firestore unavailable (store.atomic_update)
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # client library errors: short, no stack trace
        from google.api_core import exceptions as gexc
        from google.auth import exceptions as auth_exc

        if isinstance(exc, auth_exc.GoogleAuthError):
            print(
                f"error: no usable Google credentials ({type(exc).__name__}): run "
                "`gcloud auth application-default login`", file=sys.stderr,
            )
            return 1
        if isinstance(exc, gexc.GoogleAPIError):
            print(
                f"error: a Firestore or Secret Manager call failed ({type(exc).__name__}): check "
                "GOOGLE_CLOUD_PROJECT, the emulator hosts and your permissions", file=sys.stderr,
            )
            return 1
        raise
    finally:
        if ctx is not None:
            ctx.close()

