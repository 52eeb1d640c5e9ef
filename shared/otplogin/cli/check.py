"""``check-keys``: read-only proof that the canary and stored PII decrypt with pii-keyring.

Separate from rotation because it changes nothing and is safe to run any time.
"""

from __future__ import annotations

import argparse
import random
from collections import Counter
from collections.abc import Iterator

from otplogin import users
from otplogin.cli.common import DOCS, Context, read_canary
from otplogin.keyring import stored_kid


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
    canary = read_canary(ring)
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
