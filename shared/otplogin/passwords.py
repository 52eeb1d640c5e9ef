"""Argon2id password hashing with PHC strings (``$argon2id$v=19$m=..,t=..,p=..$salt$hash``).

Default parameters: m=19456 KiB (19 MiB), t=3, p=1.

* Memory stays at the OWASP floor (19 MiB) on purpose: each hash in flight
  adds ~19 MiB to the instance's peak (measured VmHWM delta), and
  ``19 MiB x per-instance concurrency`` must fit the function's memory next to
  Python and the client libraries (e.g. concurrency 8 is ~150 MiB of hashes).
  Past ~19 MiB the cost also grows faster than linearly on this hardware
  (m=32 MiB, t=2: 51 ms against 18 ms for m=19 MiB, t=2).
* One pass more than the OWASP minimum (t=3 instead of 2) gives 1.5x the
  attacker's work per guess for ~12 ms more per login: ~30 ms per hash or
  verify on the 2.6 GHz EPYC measured here. Cloud Functions often run on a
  fraction of a vCPU (1/3 at 512 MiB), where that becomes ~90 ms; t=4 would
  be ~120 ms there for only 1.33x more.
* p=1: an instance has one vCPU or less, so more lanes would only add overhead.

Raise the parameters by passing a stronger :class:`Argon2Params`; existing
hashes keep verifying, and :func:`rehash_params` tells the login path what to
re-hash them with after the next successful verification: each cost raised to
the target, none ever lowered (a 64 MiB hash stays at 64 MiB when the default
asks for more passes).
"""

from __future__ import annotations

import functools
import re
import secrets
import unicodedata
from collections.abc import Callable

from cryptography.exceptions import InvalidKey
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
from msgspec import Struct

__all__ = [
    "DEFAULT_PARAMS",
    "MAX_ITERATIONS",
    "MAX_LANES",
    "MAX_MEMORY_KIB",
    "MAX_PASSWORD_BYTES",
    "MINIMUM_PARAMS",
    "Argon2Params",
    "MalformedHashError",
    "hash_password",
    "needs_rehash",
    "parse_phc",
    "rehash_params",
    "verify_against_dummy",
    "verify_password",
]

#: Longer inputs are refused before any hashing: no real password is this long,
#: and it keeps a huge request body from costing more than a normal attempt.
MAX_PASSWORD_BYTES = 1024

#: Upper bounds on accepted costs. A stored hash above them is treated as
#: malformed rather than verified: Argon2 spends whatever memory and passes the
#: PHC string asks for, so a corrupted or planted user document must not be
#: able to exhaust an instance. hash_password refuses them too, so nothing it
#: writes is later unverifiable.
MAX_MEMORY_KIB = 256 * 1024
MAX_ITERATIONS = 64
MAX_LANES = 16

SALT_BYTES = 16
HASH_BYTES = 32


class Argon2Params(Struct, frozen=True):
    """Argon2id cost parameters; the defaults are the OWASP minimum (m=19 MiB, t=2, p=1)."""

    memory_kib: int = 19456
    iterations: int = 2
    lanes: int = 1

    def __post_init__(self) -> None:
        if not (
            1 <= self.lanes <= MAX_LANES
            and 1 <= self.iterations <= MAX_ITERATIONS
            and 8 * self.lanes <= self.memory_kib <= MAX_MEMORY_KIB
        ):
            raise ValueError(
                f"Argon2 parameters out of range (1<=p<={MAX_LANES}, 1<=t<={MAX_ITERATIONS}, 8p<=m<={MAX_MEMORY_KIB})"
            )

    def weaker_than(self, other: Argon2Params) -> bool:
        """True when any cost is below ``other``'s (so a re-hash would raise it)."""
        return self.memory_kib < other.memory_kib or self.iterations < other.iterations or self.lanes < other.lanes

    def at_least(self, other: Argon2Params) -> Argon2Params:
        """Each cost the larger of the two: raises what is below ``other``, keeps what is above."""
        return Argon2Params(
            max(self.memory_kib, other.memory_kib), max(self.iterations, other.iterations), max(self.lanes, other.lanes)
        )


#: The floor below which nothing should be hashed (OWASP Password Storage Cheat Sheet).
MINIMUM_PARAMS = Argon2Params()
#: What new hashes use; see the module docstring for why.
DEFAULT_PARAMS = Argon2Params(memory_kib=19456, iterations=3, lanes=1)


class MalformedHashError(ValueError):
    """A stored string is not an Argon2id v19 PHC string this module accepts."""


_PHC_RE = re.compile(
    r"\$argon2id\$v=19\$m=(?P<m>[0-9]{1,10}),t=(?P<t>[0-9]{1,10}),p=(?P<p>[0-9]{1,3})"
    r"\$(?P<salt>[A-Za-z0-9+/]+)\$(?P<hash>[A-Za-z0-9+/]+)"
)


def parse_phc(phc: str) -> Argon2Params:
    """Return the cost parameters of an Argon2id PHC string, or raise :class:`MalformedHashError`.

    Callers use it to log *why* a stored hash is unusable; :func:`verify_password`
    itself only answers False.
    """
    match = _PHC_RE.fullmatch(phc) if isinstance(phc, str) else None
    if match is None:
        raise MalformedHashError("not an argon2id v=19 PHC string")
    try:
        return Argon2Params(int(match["m"]), int(match["t"]), int(match["p"]))
    except ValueError as exc:
        raise MalformedHashError(str(exc)) from None


def _encode(password: str) -> bytes | None:
    """NFKC-normalize and UTF-8 encode, or None when empty or too long.

    NFKC (as NIST SP 800-63B advises) makes the same password typed on
    different keyboards (composed vs decomposed accents) hash the same.
    The character count is checked first so normalization never runs on a
    huge input.
    """
    if not isinstance(password, str) or not password or len(password) > MAX_PASSWORD_BYTES:
        return None
    encoded = unicodedata.normalize("NFKC", password).encode("utf-8", "surrogatepass")
    if len(encoded) > MAX_PASSWORD_BYTES:
        return None
    return encoded


def hash_password(
    password: str,
    params: Argon2Params = DEFAULT_PARAMS,
    *,
    random_bytes: Callable[[int], bytes] = secrets.token_bytes,
) -> str:
    """Hash ``password`` into an Argon2id PHC string with a fresh 16-byte salt.

    Raises ValueError for an empty password or one over MAX_PASSWORD_BYTES
    (after NFKC normalization, UTF-8 encoded).
    """
    encoded = _encode(password)
    if encoded is None:
        raise ValueError(f"password must be 1 to {MAX_PASSWORD_BYTES} bytes")
    kdf = Argon2id(
        salt=random_bytes(SALT_BYTES),
        length=HASH_BYTES,
        iterations=params.iterations,
        lanes=params.lanes,
        memory_cost=params.memory_kib,
    )
    return kdf.derive_phc_encoded(encoded)


def verify_password(password: str, phc: str) -> bool:
    """True only if ``password`` matches ``phc``; False on mismatch, bad input or malformed hash.

    Never raises for bad data, so one comparison path serves every failure.
    An empty or over-long password returns False at once: that shortcut only
    depends on the caller's own input, not on whether the account exists.
    """
    encoded = _encode(password)
    if encoded is None:
        return False
    try:
        parse_phc(phc)
        Argon2id.verify_phc_encoded(encoded, phc)
    except (InvalidKey, ValueError):
        return False
    return True


def rehash_params(phc: str, params: Argon2Params = DEFAULT_PARAMS) -> Argon2Params | None:
    """What to re-hash ``phc`` with after a successful :func:`verify_password`, or None to keep it.

    A cost below ``params`` is raised to it; a cost above is kept, so a re-hash
    never makes a stored hash cheaper to attack in any dimension. An
    unparsable hash (it cannot have verified) gets ``params``.
    """
    try:
        stored = parse_phc(phc)
    except MalformedHashError:
        return params
    return stored.at_least(params) if stored.weaker_than(params) else None


def needs_rehash(phc: str, params: Argon2Params = DEFAULT_PARAMS) -> bool:
    """True when some cost of ``phc`` is below ``params`` (see :func:`rehash_params`), or it cannot be parsed."""
    return rehash_params(phc, params) is not None


@functools.lru_cache(maxsize=4)
def _dummy_hash(params: Argon2Params) -> str:
    # Computed on first use, not at import: a cold start that never sees an
    # unknown user should not pay for it. A random password that is thrown
    # away means nothing can ever match the dummy.
    return hash_password(secrets.token_urlsafe(32), params)


def verify_against_dummy(password: str, params: Argon2Params = DEFAULT_PARAMS) -> bool:
    """Spend the same work as :func:`verify_password` on a real hash, then return False.

    Use it when the user does not exist, so "unknown user" and "wrong
    password" take the same time. ``params`` should be the ones new hashes
    use, since most stored hashes will have them.
    """
    verify_password(password, _dummy_hash(params))
    return False
