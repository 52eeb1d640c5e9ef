"""``rotate-keys``: add a PII key, re-encrypt every user to it, report the old keys still needed.

The longest and riskiest command, so it stands alone: a project-wide lease,
the propagation wait and per-user re-encryption under a precondition.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

from msgspec import Struct, field

from otplogin import runtime, store, users
from otplogin.cli.common import (
    DOCS,
    CliError,
    Context,
    Progress,
    add_secret_version,
    count_users,
    read_canary,
    wait_until,
)
from otplogin.errors import ApiError
from otplogin.keyring import Keyring, UndecryptableError, generate_key, key_id, stored_kid

ROTATION_LOCK_PATH = "system/pii_rotation"
LOCK_TTL_SECONDS = 120.0
LOCK_RENEW_SECONDS = 30.0
PROPAGATION_MARGIN_SECONDS = 30  # a failed refresh retries after 30 s (secrets.SecretStore)


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


# -- rotation lock -----------------------------------------------------------------


class RotationLock:
    """A lease in ``system/pii_rotation`` (or ``path``): one rotation of a secret at a time, project-wide.

    Two concurrent rotations could each add a key while reading the same old
    version, and the later version would lack the other's key. Taken and
    renewed by atomic read-check-writes; a crashed holder's lease expires.
    """

    def __init__(
        self, ttl: float = LOCK_TTL_SECONDS, *, path: str = ROTATION_LOCK_PATH, command: str = "rotate-keys",
        resume: str = "`rotate-keys --no-add`",
    ) -> None:
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.ttl = ttl
        self.path, self.command, self.resume = path, command, resume
        self._renewed = 0.0

    def acquire(self) -> None:
        path = self.path

        def decide(docs: store.Docs) -> store.Plan[store.Doc | None]:
            doc, now = docs[path], time.time()
            if doc and doc.get("owner") != self.owner and doc.get("expires_at", 0) > now:
                return store.Plan(doc)
            return store.Plan(None, {path: {"owner": self.owner, "started_at": now, "expires_at": now + self.ttl}})

        holder = store.atomic_update([path], decide)
        if holder is not None:
            started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(holder.get("started_at", 0)))
            left = max(0, int(holder.get("expires_at", 0) - time.time()))
            raise CliError(
                f"another {self.command} is running (owner {holder.get('owner')}, started {started}; its lease "
                f"expires in {left} s unless renewed): wait for it to finish, then run {self.resume}"
            )
        self._renewed = time.monotonic()

    def renew(self, force: bool = False) -> None:
        if not force and time.monotonic() - self._renewed < LOCK_RENEW_SECONDS:
            return
        path = self.path

        def decide(docs: store.Docs) -> store.Plan[bool]:
            doc, now = docs[path], time.time()
            if doc and doc.get("owner") != self.owner:
                return store.Plan(False)
            return store.Plan(True, {path: {"owner": self.owner, "expires_at": now + self.ttl}})

        if not store.atomic_update([path], decide):
            raise CliError("the rotation lock was taken by another run (this one paused too long): stopping")
        self._renewed = time.monotonic()

    def release(self) -> None:
        path = self.path

        def decide(docs: store.Docs) -> store.Plan[None]:
            doc = docs[path]
            return store.Plan(None, {path: store.DELETE} if doc and doc.get("owner") == self.owner else {})

        store.atomic_update([path], decide)


# -- rotate-keys -------------------------------------------------------------------


class UserOutcome(Struct):
    code: str
    rotated: int = 0
    failures: list[tuple[str, UndecryptableError | str]] = field(default_factory=list)
    gone: bool = False


def _fields_to_rotate(doc: store.Doc, ring: Keyring) -> list[str]:
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

    def decide(docs: store.Docs) -> store.Plan[UserOutcome]:
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
    wait_until(
        ctx, created + wait, lock.renew,
        "so running functions load the new keyring before any value needs it (they cache secrets for "
        "SECRETS_REFRESH_SECONDS; change with --propagation-wait). Interrupting is safe: continue with "
        "`rotate-keys --no-add`",
    )


def _latest_version_created(ctx: Context) -> float:
    name = f"projects/{ctx.cfg.project}/secrets/{runtime.PII_KEYRING}/versions/latest"
    try:
        version = ctx.sm_client.get_secret_version(request={"name": name})
    except Exception:  # noqa: BLE001 (without it, wait the whole period: the safe side)
        return time.time()
    return float(version.create_time.timestamp())


def _add_key(ctx: Context, text: str) -> tuple[str, float]:
    """Add a pii-keyring version: a new key first, every current key after. Returns (kid, created)."""
    new_key = generate_key()
    data = json.loads(text)
    data["keys"] = [new_key, *data["keys"]]
    number, created = add_secret_version(ctx, runtime.PII_KEYRING, json.dumps(data))
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
    canary = read_canary(ring)
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

    canary = read_canary(ring)
    if canary.status != "ok" or canary.kid != ring.primary_kid:
        users.write_canary(ring)
        ctx.say(f"canary re-written with key {ring.primary_kid}")

    progress = Progress(count_users(start_after))
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
    """Scan every user: values per key; say which old keys nothing needs any more.

    A legacy value (no key id) is attributed to the key that decrypts it. A value
    whose key nobody can tell (no key id, and no key in the ring decrypts it)
    might need any key that was ever removed or is still here: while one exists,
    no key is advised for removal."""
    counts: Counter[str] = Counter()
    legacy: Counter[str] = Counter()
    unknown = 0
    total_users = 0
    for user in users.iter_all():
        total_users += 1
        for name in users.PII_FIELDS:
            stored = user.data.get(f"{name}_enc")
            if not stored:
                continue
            kid = ring.kid_of(stored)
            if kid is None:
                unknown += 1
                continue
            counts[kid] += 1
            if isinstance(stored, str) and stored_kid(stored) is None:
                legacy[kid] += 1
    ctx.say(f"key usage ({total_users} users, values per key):")
    for kid in ring.kids:
        mark = "primary" if kid == ring.primary_kid else ""
        note = f"   ({legacy[kid]} without a key id, found by trying each key)" if legacy[kid] else ""
        ctx.say(f"  {kid}  {mark:<8} {counts.get(kid, 0)}{note}")
    for kid in sorted(set(counts) - set(ring.kids)):
        ctx.say(f"  {kid}  {'missing':<8} {counts[kid]}   not in pii-keyring: these values cannot be decrypted")
    if unknown:
        ctx.say(
            f"  {_n(unknown, 'value')} {'has' if unknown == 1 else 'have'} no key id and no key in pii-keyring "
            "decrypts it: its key is unknown, so no key may leave pii-keyring until it is found "
            f"(try the keys of older pii-keyring versions: {DOCS}, 'encryption_key_mismatch')"
        )
    removable = False
    for kid in ring.kids[1:]:
        if counts.get(kid, 0):
            ctx.say(f"key {kid} is still used by {_n(counts[kid], 'value')}: keep it (run `rotate-keys --no-add` again)")
        elif unknown:
            ctx.say(f"key {kid} is used by no value whose key is known, but keep it: it may be the unknown one")
        else:
            removable = True
            ctx.say(
                f"key {kid} is no longer used by any user: it can be removed from pii-keyring by adding a new "
                "version without it"
            )
    if removable:
        ctx.say(f"  (keep the older secret versions until backups older than this rotation expire: {DOCS})")
