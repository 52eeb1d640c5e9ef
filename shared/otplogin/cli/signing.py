"""``rotate-signing-key``: publish a new JWT signing key, wait until every verifier has it, then sign with it.

The order is what makes it safe. A token signed with a key that a verifier has
not fetched yet fails there, and verifiers hold the JWKS for up to
`JWKS_CACHE_SECONDS` after a function instance served it, while instances hold
the secret for up to `SECRETS_REFRESH_SECONDS`. So:

1. add a version of ``jwt-signing-keys`` with the new key *last*: published in
   every JWKS once the instances refresh, signing nothing;
2. wait ``SECRETS_REFRESH_SECONDS + JWKS_CACHE_SECONDS + 30`` seconds from then;
3. add a version with the new key *first*: it signs; the old keys stay
   published so the tokens they signed keep verifying until they expire.

The new key's entry records ``published_at`` (epoch seconds), so an interrupted
run is resumed by running the command again: a key published after the signing
key is the pending one, and the wait counts from its publication.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from typing import Any

from otplogin import runtime
from otplogin.cli.common import DOCS, CliError, Context, add_secret_version, wait_until
from otplogin.cli.rotation import RotationLock
from otplogin.tokens import SigningKeyError, TokenSigner, generate_signing_key

SIGNING_LOCK_PATH = "system/jwt_rotation"
#: How long a verifier may keep a JWKS: the max-age `otplogin.http.PUBLIC_CACHE` announces.
JWKS_CACHE_SECONDS = 300
MARGIN_SECONDS = 30  # a failed secret refresh retries after 30 s (secrets.SecretStore)


def _published_at(entry: dict[str, Any]) -> float:
    value = entry.get("published_at")
    return float(value) if isinstance(value, int | float) else 0.0


def _when(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(epoch))


def _read(ctx: Context) -> dict[str, Any]:
    """The secret as JSON, after checking the functions would accept it."""
    text = ctx.secret(runtime.JWT_SIGNING_KEYS)
    try:
        TokenSigner.from_secret(text, issuer="check", audience="check")
    except SigningKeyError as exc:
        raise CliError(f"{exc}: fix the secret first ({DOCS}, 'JWT signing key rotation')") from None
    data: dict[str, Any] = json.loads(text)
    return data


def _pending(keys: list[dict[str, Any]]) -> dict[str, Any] | None:
    """A key published after the one that signs: a rotation that has not promoted it yet."""
    signing_since = _published_at(keys[0])
    newer = [k for k in keys[1:] if _published_at(k) > signing_since]
    return max(newer, key=_published_at) if newer else None


def cmd_rotate_signing_key(ctx: Context, args: argparse.Namespace) -> int:
    ctx.note(f"rotate-signing-key on {ctx.target()}")
    lock = RotationLock(path=SIGNING_LOCK_PATH, command="rotate-signing-key", resume="`rotate-signing-key`")
    lock.acquire()
    try:
        return _rotate(ctx, args, lock)
    finally:
        try:
            lock.release()
        except Exception:  # noqa: BLE001 (the lease expires by itself; keep the original outcome)
            ctx.note("note: could not release the rotation lock; it expires within 2 minutes")


def _rotate(ctx: Context, args: argparse.Namespace, lock: RotationLock) -> int:
    cfg = ctx.cfg
    wait = args.publish_wait
    if wait is None:
        wait = cfg.secrets_refresh_seconds + JWKS_CACHE_SECONDS + MARGIN_SECONDS
    data = _read(ctx)
    pending: dict[str, Any] | None = _pending(data["keys"])
    if pending is None:
        pending = {**generate_signing_key(), "published_at": math.ceil(time.time())}  # rounded up: never waits less
        if pending["kid"] in {k["kid"] for k in data["keys"]}:
            raise CliError("the generated key id is already in jwt-signing-keys: run the command again")
        data["keys"] = [*data["keys"], pending]
        number, _ = add_secret_version(ctx, runtime.JWT_SIGNING_KEYS, json.dumps(data))
        ctx.say(f"added jwt-signing-keys version {number}: key {pending['kid']} published, not signing yet")
        ctx.note("if this run stops before the end, run `otplogin-admin rotate-signing-key` again to continue")
    else:
        ctx.note(
            f"resuming: key {pending['kid']} was published at {_when(_published_at(pending))}; "
            "it signs once the wait from then is over"
        )
    wait_until(
        ctx, _published_at(pending) + wait, lock.renew,
        "so every function instance publishes the new key (SECRETS_REFRESH_SECONDS) and every cached JWKS "
        "has it before any token needs it (change with --publish-wait). Interrupting is safe: run "
        "`rotate-signing-key` again",
    )

    data = _read(ctx)  # fresh: someone may have changed the secret during the wait
    kid = pending["kid"]
    entry = next((k for k in data["keys"] if k.get("kid") == kid), None)
    if entry is None:
        raise CliError(f"key {kid} is no longer in jwt-signing-keys (changed during the wait): run the command again")
    old = [k for k in data["keys"] if k is not entry]
    if data["keys"][0] is not entry:
        data["keys"] = [entry, *old]
        number, _ = add_secret_version(ctx, runtime.JWT_SIGNING_KEYS, json.dumps(data))
        ctx.say(f"added jwt-signing-keys version {number}: key {kid} now signs new tokens")
    else:
        ctx.say(f"key {kid} already signs new tokens")
    if old:
        # Instances may sign with an old key until they refresh; its last token then lives one TTL.
        safe = time.time() + cfg.secrets_refresh_seconds + MARGIN_SECONDS + cfg.jwt_ttl_seconds
        kids = ", ".join(k["kid"] for k in old)
        ctx.say(
            f"remove key{'s' if len(old) > 1 else ''} {kids} after {_when(safe)} (their last tokens have expired then) by adding a version "
            f"without them; until then they only verify ({DOCS}, 'JWT signing key rotation')"
        )
    return 0
