"""What the ``otplogin-admin`` commands share, so each command module holds only its command.

The invocation context (settings, fresh secret reads, output), the error the
operator sees, password input, the key canary state and the progress bar.
"""

from __future__ import annotations

import getpass
import math
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO, cast

from msgspec import Struct

from otplogin import passwords, runtime, store, users
from otplogin.config import Settings
from otplogin.errors import SecretUnavailable
from otplogin.keyring import KeyMismatch, Keyring, KeyringError, stored_kid

MIN_PASSWORD_LENGTH = 8
DOCS = "docs/operations.md"


class CliError(Exception):
    """An error the operator can act on: printed as ``error: <message>``, exit status 1."""


# -- context: settings, one Secret Manager client, fresh reads ------------------


class Context:
    """What one command invocation uses. Secrets are read fresh (no process cache)."""

    def __init__(self, cfg: Settings) -> None:
        self.cfg = cfg
        self._sm_client: Any = None

    @property
    def out(self) -> TextIO:
        return sys.stdout

    @property
    def err(self) -> TextIO:
        return sys.stderr

    def say(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def note(self, text: str) -> None:
        print(text, file=self.err, flush=True)

    def target(self) -> str:
        cfg = self.cfg
        fs = f"Firestore emulator {cfg.firestore_emulator}" if cfg.firestore_emulator else "Firestore"
        sm = (
            f"local Secret Manager {cfg.secret_manager_emulator}"
            if cfg.secret_manager_emulator
            else "Secret Manager"
        )
        return f"project {cfg.project} ({fs}, {sm})"

    @property
    def sm_client(self) -> Any:
        if self._sm_client is None:
            from otplogin.secrets import make_client

            self._sm_client = make_client(self.cfg.secret_manager_emulator)
        return self._sm_client

    def secret(self, secret_id: str) -> str:
        """The latest value, read now (a new SecretStore each time: never a cached value)."""
        from otplogin.secrets import SecretStore

        try:
            return SecretStore(self.cfg.project, client=self.sm_client).get(secret_id)
        except SecretUnavailable as exc:
            raise CliError(_secret_problem(self.cfg, secret_id, exc.reason)) from None

    def keyring(self) -> tuple[Keyring, str]:
        """The PII keyring from the ``pii-keyring`` secret, and the secret's text."""
        text = self.secret(runtime.PII_KEYRING)
        try:
            return Keyring.from_secret(text), text
        except KeyringError as exc:
            raise CliError(f"{exc} (fix the secret: see {DOCS})") from None

    def close(self) -> None:
        if self._sm_client is not None:
            self._sm_client.transport.close()
            self._sm_client = None


def _secret_problem(cfg: Settings, secret_id: str, reason: str) -> str:
    head = f"secret '{secret_id}' is not available ({reason})"
    add = (
        f"printf %s \"$VALUE\" | gcloud secrets versions add {secret_id} --data-file=- --project={cfg.project}"
    )
    if cfg.secret_manager_emulator:
        add += f" (local mode: `make run` seeds it in the local Secret Manager at {cfg.secret_manager_emulator})"
    if reason in ("not found", "empty"):
        return f"{head}: add it with {add}"
    if reason in ("disabled", "destroyed"):
        return f"{head}: its newest version is {reason}; add a new version with {add}"
    if reason in ("permission denied", "unauthenticated", "no credentials", "credentials error"):
        return (
            f"{head}: run `gcloud auth application-default login` with an account that has "
            f"roles/secretmanager.secretAccessor on {secret_id}"
        )
    return f"{head}: check SECRET_MANAGER_EMULATOR_HOST / network access to Secret Manager"


def add_secret_version(ctx: Context, secret_id: str, text: str) -> tuple[str, float]:
    """Add a version holding `text` to `secret_id`; returns (version number, creation time). Errors name no payload."""
    from otplogin.secrets import crc32c

    payload = text.encode("utf-8")
    parent = f"projects/{ctx.cfg.project}/secrets/{secret_id}"
    try:
        version = ctx.sm_client.add_secret_version(
            request={"parent": parent, "payload": {"data": payload, "data_crc32c": crc32c(payload)}}
        )
    except Exception as exc:  # noqa: BLE001 (reported by type only: a message could echo the payload)
        from google.api_core import exceptions as gexc

        if isinstance(exc, (gexc.PermissionDenied, gexc.Unauthenticated)):
            hint = "the operator needs roles/secretmanager.secretVersionAdder on it. Nothing was changed"
        else:
            hint = "check access to Secret Manager. Running the command again is safe even if the version was added"
        raise CliError(f"could not add a version to {secret_id} ({type(exc).__name__}): {hint}.") from None
    created = version.create_time.timestamp() if version.create_time else time.time()
    return str(version.name).rsplit("/", 1)[-1], float(created)


def wait_until(ctx: Context, until: float, renew: Callable[[], None], why: str) -> None:
    """Sleep until the epoch time `until` (a countdown on a terminal), calling `renew` on the way."""
    if until <= time.time():
        return
    ctx.note(f"waiting {math.ceil(until - time.time())} s {why}.")
    while (left := until - time.time()) > 0:
        if ctx.err.isatty():
            ctx.err.write(f"\r  {int(left):4d} s left ")
            ctx.err.flush()
        time.sleep(min(1.0, left))
        renew()
    if ctx.err.isatty():
        ctx.err.write("\r" + " " * 20 + "\r")


# -- password input ---------------------------------------------------------------


def read_password(from_stdin: bool) -> str:
    """One line of stdin, or a hidden prompt asked twice. Never argv, never echoed."""
    if from_stdin:
        line = sys.stdin.readline()
        if not line:
            raise CliError("--password-stdin: nothing on standard input")
        password = line.removesuffix("\n").removesuffix("\r")
    else:
        try:
            password = getpass.getpass("Password: ")
            again = getpass.getpass("Repeat the password: ")
        except EOFError:
            raise CliError("no password entered (pipe one line with --password-stdin instead)") from None
        if password != again:
            raise CliError("the two passwords differ: nothing was created")
    check_password(password, "the password")
    return password


def check_password(password: str, what: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise CliError(f"{what} is shorter than {MIN_PASSWORD_LENGTH} characters")
    if len(password.encode("utf-8", "surrogatepass")) > passwords.MAX_PASSWORD_BYTES:
        raise CliError(f"{what} is longer than {passwords.MAX_PASSWORD_BYTES} bytes")


# -- canary state and progress -----------------------------------------------------


class CanaryState(Struct, frozen=True):
    status: str  # "ok" | "canary_missing" | "encryption_key_mismatch"
    kid: str | None = None  # the key the stored canary was made with
    detail: str | None = None


def canary_state(doc: store.Doc | None, ring: Keyring) -> CanaryState:
    if doc is None:
        return CanaryState("canary_missing")
    value = doc.get("value")
    kid = stored_kid(value) if isinstance(value, str) else None
    try:
        ring.check_canary(cast(str, value))  # a non-string is reported as a mismatch
    except KeyMismatch as exc:
        return CanaryState("encryption_key_mismatch", exc.kid or kid, exc.detail.removeprefix("canary: "))
    return CanaryState("ok", kid)


def read_canary(ring: Keyring) -> CanaryState:
    snap = store.client().document(users.CANARY_PATH).get()
    return canary_state(snap.to_dict() if snap.exists else None, ring)


def count_users(start_after: str | None = None) -> int | None:
    """Number of users (after `start_after`) with one aggregation query; None if unsupported."""
    try:
        from google.cloud.firestore_v1.field_path import FieldPath

        query: Any = store.client().collection(users.USERS)
        if start_after:
            ref = store.client().document(f"{users.USERS}/{start_after}")
            query = query.order_by(FieldPath.document_id()).start_after({FieldPath.document_id(): ref})
        return int(query.count().get()[0][0].value)
    except Exception:  # noqa: BLE001 (progress is cosmetic: fall back to no total)
        return None


class Progress:
    """``[#####.....] 120/500 users`` on stderr: redrawn in place on a terminal, every 10% otherwise."""

    WIDTH = 30

    def __init__(self, total: int | None, label: str = "users") -> None:
        self.total, self.label, self.done = total, label, 0
        self._stream = sys.stderr
        self._tty = self._stream.isatty()
        self._last_draw = 0.0
        self._last_step = -1
        self._drawn = -1

    def advance(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if self._tty:
            if now - self._last_draw >= 0.1:
                self._draw("\r", "")
                self._last_draw = now
        elif self.total:
            step = self.done * 10 // self.total
            if step != self._last_step:
                self._last_step = step
                self._draw("", "\n")

    def finish(self) -> None:
        if self._tty:
            self._draw("\r", "\n")
        elif self._drawn != self.done:
            self._draw("", "\n")

    def _draw(self, head: str, tail: str) -> None:
        self._drawn = self.done
        if self.total:
            filled = min(self.WIDTH, self.done * self.WIDTH // max(self.total, 1))
            bar = f"[{'#' * filled}{'.' * (self.WIDTH - filled)}] {self.done}/{self.total} {self.label}"
        else:
            bar = f"{self.done} {self.label}"
        self._stream.write(f"{head}{bar}{tail}")
        self._stream.flush()
