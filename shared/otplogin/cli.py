"""Operator commands: ``otplogin-admin`` (or ``python -m otplogin.cli``).

    otplogin-admin init [--force]
    otplogin-admin create-user --email E --code C [--role user|admin] [--phone +E164]
                               [--address TEXT] [--whatsapp +E164] [--mfa] [--password-stdin]
    otplogin-admin bootstrap-admin --email E --code C
    otplogin-admin rotate-keys [--no-add] [--batch N] [--start-after CODE] [--workers N]
                               [--propagation-wait SECONDS]
    otplogin-admin check-keys [--sample N | --all]

The commands talk to the Firestore and Secret Manager of ``GOOGLE_CLOUD_PROJECT``
(the emulators when ``FIRESTORE_EMULATOR_HOST`` / ``SECRET_MANAGER_EMULATOR_HOST``
are set), read through the same settings as the functions. They never print a
secret, a password or decrypted PII: key ids (kids), user codes and counts only.

Exit status: 0 done, 1 error (message on stderr, no stack trace), 2 usage, 130 interrupted.
See docs/operations.md.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import random
import socket
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TextIO, cast

from otplogin import passwords, phone, runtime, store, users
from otplogin.config import ConfigError, Settings, settings
from otplogin.errors import ApiError, SecretUnavailable
from otplogin.keyring import KeyMismatch, Keyring, KeyringError, UndecryptableError, generate_key, key_id, stored_kid

__all__ = ["main"]

MIN_PASSWORD_LENGTH = 8
MAX_ADDRESS_LENGTH = 500
ROTATION_LOCK_PATH = "system/pii_rotation"
LOCK_TTL_SECONDS = 120.0
LOCK_RENEW_SECONDS = 30.0
PROPAGATION_MARGIN_SECONDS = 30  # a failed refresh retries after 30 s (secrets.SecretStore)
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


# -- small helpers ---------------------------------------------------------------


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


def _read_password(from_stdin: bool) -> str:
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
    _check_password(password, "the password")
    return password


def _check_password(password: str, what: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise CliError(f"{what} is shorter than {MIN_PASSWORD_LENGTH} characters")
    if len(password.encode("utf-8", "surrogatepass")) > passwords.MAX_PASSWORD_BYTES:
        raise CliError(f"{what} is longer than {passwords.MAX_PASSWORD_BYTES} bytes")


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"




@dataclass(frozen=True)
class CanaryState:
    status: str  # "ok" | "canary_missing" | "encryption_key_mismatch"
    kid: str | None = None  # the key the stored canary was made with
    detail: str | None = None


def _canary_state(doc: dict | None, ring: Keyring) -> CanaryState:
    if doc is None:
        return CanaryState("canary_missing")
    value = doc.get("value")
    kid = stored_kid(value) if isinstance(value, str) else None
    try:
        ring.check_canary(cast(str, value))  # a non-string is reported as a mismatch
    except KeyMismatch as exc:
        return CanaryState("encryption_key_mismatch", exc.kid or kid, exc.detail.removeprefix("canary: "))
    return CanaryState("ok", kid)


def _read_canary(ring: Keyring) -> CanaryState:
    snap = store.client().document(users.CANARY_PATH).get()
    return _canary_state(snap.to_dict() if snap.exists else None, ring)


def _count_users(start_after: str | None = None) -> int | None:
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


# -- init ------------------------------------------------------------------------


def cmd_init(ctx: Context, args: argparse.Namespace) -> int:
    ring, _ = ctx.keyring()
    path = users.CANARY_PATH

    def decide(docs: Mapping[str, dict | None]) -> store.Plan[tuple[str, CanaryState]]:
        state = _canary_state(docs[path], ring)
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
    password = _read_password(args.password_stdin)
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
    _check_password(password, f"secret '{runtime.ADMIN_PASSWORD}'")
    if password != password.strip():
        ctx.note(
            f"note: secret '{runtime.ADMIN_PASSWORD}' starts or ends with whitespace (a newline from `echo`?): "
            "it is part of the password as stored"
        )
    _create(ctx, code=code, email=email, role="admin", password=password, pii={}, mfa=False)
    ctx.say(f"created admin {code} ({email}) with the password of secret '{runtime.ADMIN_PASSWORD}'")
    return 0


# -- rotation lock -----------------------------------------------------------------


class RotationLock:
    """A lease in ``system/pii_rotation``: one rotate-keys at a time, project-wide.

    Two concurrent rotations could each add a key while reading the same old
    version, and the later version would lack the other's key. Taken and
    renewed by atomic read-check-writes; a crashed holder's lease expires.
    """

    def __init__(self, ttl: float = LOCK_TTL_SECONDS) -> None:
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.ttl = ttl
        self._renewed = 0.0

    def acquire(self) -> None:
        path = ROTATION_LOCK_PATH

        def decide(docs: Mapping[str, dict | None]) -> store.Plan[dict | None]:
            doc, now = docs[path], time.time()
            if doc and doc.get("owner") != self.owner and doc.get("expires_at", 0) > now:
                return store.Plan(doc)
            return store.Plan(None, {path: {"owner": self.owner, "started_at": now, "expires_at": now + self.ttl}})

        holder = store.atomic_update([path], decide)
        if holder is not None:
            started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(holder.get("started_at", 0)))
            left = max(0, int(holder.get("expires_at", 0) - time.time()))
            raise CliError(
                f"another rotate-keys is running (owner {holder.get('owner')}, started {started}; its lease "
                f"expires in {left} s unless renewed): wait for it to finish, then run `rotate-keys --no-add`"
            )
        self._renewed = time.monotonic()

    def renew(self, force: bool = False) -> None:
        if not force and time.monotonic() - self._renewed < LOCK_RENEW_SECONDS:
            return
        path = ROTATION_LOCK_PATH

        def decide(docs: Mapping[str, dict | None]) -> store.Plan[bool]:
            doc, now = docs[path], time.time()
            if doc and doc.get("owner") != self.owner:
                return store.Plan(False)
            return store.Plan(True, {path: {"owner": self.owner, "expires_at": now + self.ttl}})

        if not store.atomic_update([path], decide):
            raise CliError("the rotation lock was taken by another run (this one paused too long): stopping")
        self._renewed = time.monotonic()

    def release(self) -> None:
        path = ROTATION_LOCK_PATH

        def decide(docs: Mapping[str, dict | None]) -> store.Plan[None]:
            doc = docs[path]
            return store.Plan(None, {path: store.DELETE} if doc and doc.get("owner") == self.owner else {})

        store.atomic_update([path], decide)


# -- rotate-keys -------------------------------------------------------------------


@dataclass
class UserOutcome:
    code: str
    rotated: int = 0
    failures: list[tuple[str, UndecryptableError | str]] = field(default_factory=list)
    gone: bool = False


def _fields_to_rotate(doc: dict, ring: Keyring) -> list[str]:
    names = []
    for name in users.PII_FIELDS:
        stored = doc.get(f"{name}_enc")
        if stored and (not isinstance(stored, str) or ring.needs_reencrypt(stored)):
            names.append(name)
    return names


def _rotate_user(code: str, ring: Keyring) -> UserOutcome:
    """Re-read the user, re-encrypt only the fields not on the primary key, write under a precondition.

    A concurrent write to the document (a login counting a failure, say) makes
    the batch fail its precondition; the decision is then made again on the
    fresh document, so nothing the other writer did is lost.
    """
    path = f"{users.USERS}/{code}"

    def decide(docs: Mapping[str, dict | None]) -> store.Plan[UserOutcome]:
        doc = docs[path]
        if doc is None:
            return store.Plan(UserOutcome(code, gone=True))
        updates: dict[str, str] = {}
        failures: list[tuple[str, UndecryptableError | str]] = []
        for name in _fields_to_rotate(doc, ring):
            try:
                updates[f"{name}_enc"] = ring.rotate(doc[f"{name}_enc"])
            except UndecryptableError as exc:
                failures.append((name, exc))
        return store.Plan(UserOutcome(code, len(updates), failures), {path: updates} if updates else {})

    try:
        return store.atomic_update([path], decide, max_attempts=16)
    except ApiError as exc:  # busy or unavailable: reported, the run goes on
        return UserOutcome(code, failures=[("*", f"not updated: {exc.message}")])


def _chunks(
    items: Iterator[users.User], ring: Keyring, size: int, limit: int | None
) -> Iterator[tuple[list[str], int, str | None, bool]]:
    """Groups of user codes needing work: (codes, users seen, last code seen, limit reached)."""
    codes: list[str] = []
    seen, last, submitted = 0, None, 0
    for user in items:
        seen += 1
        last = user.code
        if _fields_to_rotate(user.data, ring):
            codes.append(user.code)
            submitted += 1
        if len(codes) >= size or (limit is not None and submitted >= limit):
            yield codes, seen, last, limit is not None and submitted >= limit
            codes, seen = [], 0
            if limit is not None and submitted >= limit:
                return
    yield codes, seen, last, False


def _wait_for_propagation(ctx: Context, created: float, wait: float, lock: RotationLock) -> None:
    """Let every running function's secret cache load the new keyring before data depends on it."""
    until = created + wait
    if until <= time.time():
        return
    ctx.note(
        f"waiting {int(until - time.time())} s so running functions load the new keyring before any value "
        f"needs it (they cache secrets for SECRETS_REFRESH_SECONDS; change with --propagation-wait). "
        "Interrupting is safe: continue with `rotate-keys --no-add`."
    )
    while (left := until - time.time()) > 0:
        if ctx.err.isatty():
            ctx.err.write(f"\r  {int(left):4d} s left ")
            ctx.err.flush()
        time.sleep(min(1.0, left))
        lock.renew()
    if ctx.err.isatty():
        ctx.err.write("\r" + " " * 20 + "\r")


def _latest_version_created(ctx: Context) -> float:
    name = f"projects/{ctx.cfg.project}/secrets/{runtime.PII_KEYRING}/versions/latest"
    try:
        version = ctx.sm_client.get_secret_version(request={"name": name})
    except Exception:  # noqa: BLE001 (without it, wait the whole period: the safe side)
        return time.time()
    return version.create_time.timestamp()


def _add_key(ctx: Context, text: str) -> tuple[str, float]:
    """Add a pii-keyring version: a new key first, every current key after. Returns (kid, created)."""
    from otplogin.secrets import crc32c

    new_key = generate_key()
    data = json.loads(text)
    data["keys"] = [new_key, *data["keys"]]
    payload = json.dumps(data).encode("utf-8")
    parent = f"projects/{ctx.cfg.project}/secrets/{runtime.PII_KEYRING}"
    try:
        version = ctx.sm_client.add_secret_version(
            request={"parent": parent, "payload": {"data": payload, "data_crc32c": crc32c(payload)}}
        )
    except Exception as exc:  # noqa: BLE001 (reported by type only: a message could echo the payload)
        from google.api_core import exceptions as gexc

        if isinstance(exc, (gexc.PermissionDenied, gexc.Unauthenticated)):
            hint = "the operator needs roles/secretmanager.secretVersionAdder on it. Nothing was changed"
        else:
            hint = "check access to Secret Manager. Running rotate-keys again is safe even if the version was added"
        raise CliError(f"could not add a version to pii-keyring ({type(exc).__name__}): {hint}.") from None
    created = version.create_time.timestamp() if version.create_time else time.time()
    number = version.name.rsplit("/", 1)[-1]
    ctx.say(f"added pii-keyring version {number}: new primary key {key_id(new_key)}, {len(data['keys'])} keys in all")
    return key_id(new_key), created


def cmd_rotate_keys(ctx: Context, args: argparse.Namespace) -> int:
    ctx.note(f"rotate-keys on {ctx.target()}")
    lock = RotationLock()
    lock.acquire()
    try:
        return _rotate(ctx, args, lock)
    finally:
        try:
            lock.release()
        except Exception:  # noqa: BLE001 (the lease expires by itself; keep the original outcome)
            ctx.note(f"note: could not release the rotation lock; it expires within {int(LOCK_TTL_SECONDS)} s")


def _rotate(ctx: Context, args: argparse.Namespace, lock: RotationLock) -> int:
    try:
        start_after = users.normalize_code(args.start_after) if args.start_after else None
    except ApiError as exc:
        raise CliError(f"--start-after: {exc.message}") from None
    ring, text = ctx.keyring()
    canary = _read_canary(ring)
    if canary.status == "encryption_key_mismatch":
        raise CliError(
            f"the stored canary does not decrypt with the current pii-keyring ({canary.detail}): rotating now "
            f"would hide that. Put the missing key back first ({DOCS}, 'encryption_key_mismatch')."
        )
    wait = args.propagation_wait
    if wait is None:
        wait = ctx.cfg.secrets_refresh_seconds + PROPAGATION_MARGIN_SECONDS
    if args.no_add:
        created = _latest_version_created(ctx)
    else:
        new_kid, created = _add_key(ctx, text)
        ctx.note("if this run stops before the end, continue with: otplogin-admin rotate-keys --no-add")
        ring, _ = ctx.keyring()  # read back, fresh: what the functions will load
        if ring.primary_kid != new_kid:
            raise CliError(
                f"pii-keyring changed while rotating (primary is {ring.primary_kid}, not the new {new_kid}): "
                "another change was made at the same time. Check the secret's versions, then run "
                "`rotate-keys --no-add`."
            )
    _wait_for_propagation(ctx, created, wait, lock)

    canary = _read_canary(ring)
    if canary.status != "ok" or canary.kid != ring.primary_kid:
        users.write_canary(ring)
        ctx.say(f"canary re-written with key {ring.primary_kid}")

    progress = Progress(_count_users(start_after))
    rotated_users = rotated_fields = skipped = 0
    failures: list[tuple[str, str, UndecryptableError | str]] = []
    resume_after: str | None = start_after
    stopped_by_batch = False
    workers = max(1, args.workers)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rotate") as pool:
        try:
            for codes, seen, last, limit_reached in _chunks(
                users.iter_all(start_after=start_after), ring, workers * 8, args.batch
            ):
                for outcome in pool.map(lambda code: _rotate_user(code, ring), codes):
                    rotated_fields += outcome.rotated
                    rotated_users += 1 if outcome.rotated else 0
                    failures += [(outcome.code, name, error) for name, error in outcome.failures]
                skipped += seen - len(codes)
                progress.advance(seen)
                resume_after = last or resume_after
                lock.renew()
                if limit_reached:
                    stopped_by_batch = True
        except KeyboardInterrupt:
            progress.finish()
            ctx.note(
                "interrupted: nothing is half-written. Continue with `otplogin-admin rotate-keys --no-add"
                + (f" --start-after {resume_after}`" if resume_after else "`")
            )
            raise
    progress.finish()

    ctx.say(
        f"re-encrypted {_n(rotated_fields, 'value')} of {_n(rotated_users, 'user')} with key {ring.primary_kid}; "
        f"{_n(skipped, 'user')} had nothing to re-encrypt"
    )
    for code, name, error in failures:
        if isinstance(error, UndecryptableError):
            kid = error.kid or "(none)"
            ctx.say(f"  cannot re-encrypt user {code} field {name} (key {kid}): {error.detail}")
        else:
            ctx.say(f"  user {code}: {error}")
    if stopped_by_batch:
        ctx.say(
            f"stopped after --batch {args.batch} users: continue with `otplogin-admin rotate-keys --no-add"
            f" --start-after {resume_after}` (or without --start-after: users already done are skipped)"
        )
    _usage_report(ctx, ring)
    if failures:
        ctx.say(f"{len(failures)} values were not re-encrypted: see above and {DOCS}")
        return 1
    return 0


def _usage_report(ctx: Context, ring: Keyring) -> None:
    """Scan every user: ciphertexts per key id; say which old keys nothing needs any more."""
    counts: Counter[str] = Counter()
    total_users = 0
    for user in users.iter_all():
        total_users += 1
        for name in users.PII_FIELDS:
            stored = user.data.get(f"{name}_enc")
            if stored:
                kid = stored_kid(stored) if isinstance(stored, str) else None
                counts[kid or "(no key id)"] += 1
    ctx.say(f"key usage ({total_users} users, values per key):")
    for kid in ring.kids:
        mark = "primary" if kid == ring.primary_kid else ""
        ctx.say(f"  {kid}  {mark:<8} {counts.get(kid, 0)}")
    for kid in sorted(set(counts) - set(ring.kids)):
        ctx.say(f"  {kid}  {'missing':<8} {counts[kid]}   not in pii-keyring: these values cannot be decrypted")
    for kid in ring.kids[1:]:
        if counts.get(kid, 0) == 0:
            ctx.say(
                f"key {kid} is no longer used by any user: it can be removed from pii-keyring by adding a new "
                "version without it"
            )
        else:
            ctx.say(f"key {kid} is still used by {counts[kid]} values: keep it (run `rotate-keys --no-add` again)")
    if any(counts.get(kid, 0) == 0 for kid in ring.kids[1:]):
        ctx.say(f"  (keep the older secret versions until backups older than this rotation expire: {DOCS})")


# -- check-keys --------------------------------------------------------------------


def _sample(size: int | None) -> Iterator[users.User]:
    """`size` users from a random position in code order (wrapping round), or all of them."""
    if size is None:
        yield from users.iter_all()
        return
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    start = "".join(random.choice(alphabet) for _ in range(8))  # noqa: S311 (a sample, not a secret)
    taken = 0
    for user in users.iter_all(page_size=min(max(size, 1), 200), start_after=start):
        if taken >= size:
            return
        yield user
        taken += 1
    for user in users.iter_all(page_size=min(max(size, 1), 200)):
        if taken >= size or user.code > start:
            return
        yield user
        taken += 1


def cmd_check_keys(ctx: Context, args: argparse.Namespace) -> int:
    ctx.note(f"check-keys on {ctx.target()}")
    ring, _ = ctx.keyring()
    ctx.say(f"pii-keyring: {len(ring.kids)} key{'s' if len(ring.kids) > 1 else ''}")
    for kid in ring.kids:
        ctx.say(f"  {kid}{'  primary (encrypts)' if kid == ring.primary_kid else ''}")
    ok = True
    canary = _read_canary(ring)
    if canary.status == "ok":
        ctx.say(f"canary: ok (made with key {canary.kid})")
    elif canary.status == "canary_missing":
        ok = False
        ctx.say("canary: MISSING: run `otplogin-admin init`")
    else:
        ok = False
        ctx.say(f"canary: FAILED: {canary.detail}")

    size = None if args.all else args.sample
    checked = 0
    good: Counter[str] = Counter()
    empty: Counter[str] = Counter()
    bad: dict[str, Counter[tuple[str, bool]]] = {name: Counter() for name in users.PII_FIELDS}
    per_kid: Counter[str] = Counter()
    failing_users: list[str] = []
    for user in _sample(size):
        checked += 1
        _, failures = users.decrypt_pii(user, ring)
        for name in users.PII_FIELDS:
            stored = user.data.get(f"{name}_enc")
            if not stored:
                empty[name] += 1
                continue
            per_kid[(stored_kid(stored) if isinstance(stored, str) else None) or "(no key id)"] += 1
            error = failures.get(name)
            if error is not None:
                bad[name][(error.kid or "(no key id)", error.kid_present)] += 1
            else:
                good[name] += 1
        if failures and len(failing_users) < 10:
            failing_users.append(user.code)

    scope = "every user" if size is None else f"a sample of up to {size} from a random position"
    ctx.say(f"users: {checked} checked ({scope})")
    ctx.say(f"  {'field':<9} {'ok':>6} {'failed':>7} {'empty':>6}")
    for name in users.PII_FIELDS:
        failed = sum(bad[name].values())
        ctx.say(f"  {name:<9} {good[name]:>6} {failed:>7} {empty[name]:>6}")
        for (kid, present), count in sorted(bad[name].items()):
            why = "in the keyring but rejects the value (corrupted)" if present else "not in pii-keyring"
            ctx.say(f"    {count} failed: key {kid} {why}")
    if per_kid:
        marks = {ring.primary_kid: " (primary)"} | {k: " (not in pii-keyring)" for k in per_kid if k not in ring.kids}
        usage = ", ".join(f"{kid} {count}{marks.get(kid, '')}" for kid, count in per_kid.most_common())
        ctx.say(f"  values per key: {usage}")
    missing = sorted({kid for counter in bad.values() for (kid, present) in counter if not present})
    if canary.status == "encryption_key_mismatch" and canary.kid and canary.kid not in ring.kids:
        missing = sorted(set(missing) | {canary.kid})
    if failing_users:
        ctx.say(f"  users with a failing field: {', '.join(failing_users)}{' ...' if len(failing_users) == 10 else ''}")
    ok = ok and not failing_users
    if ok:
        ctx.say("result: ok")
        return 0
    advice = (
        f"add key(s) {', '.join(missing)} back to pii-keyring as non-primary keys"
        if missing
        else "see the lines above"
    )
    ctx.say(f"result: FAILED: {advice} ({DOCS}, 'encryption_key_mismatch')")
    return 1


# -- entry point ---------------------------------------------------------------------


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


if __name__ == "__main__":
    sys.exit(main())
