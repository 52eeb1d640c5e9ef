"""PII encryption keyring: Fernet keys from the ``pii-keyring`` secret, first encrypts, all decrypt.

Secret format: ``{"keys": ["<fernet key>", ...]}``. Rotation is "add a new key
first, re-encrypt, then drop the old key": until the old key is dropped, data it
made still decrypts (``MultiFernet``).

Stored ciphertexts are ``"<kid>:<fernet token>"``, where ``kid`` is the first 8
hex characters of SHA-256 over the key's 32 raw bytes. The kid tells an
operator which key a value needs (and when a key can be dropped safely) without
revealing anything about the key. A Fernet token is URL-safe base64 and never
contains ``:``, so the prefix is unambiguous; a value without one (a legacy
raw token) is tried against every key.

Error messages carry kids and positions, never key material.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import time
from collections.abc import Callable, Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

__all__ = [
    "CANARY_PLAINTEXT",
    "KeyMismatch",
    "Keyring",
    "KeyringError",
    "UndecryptableError",
    "generate_key",
    "key_id",
    "stored_kid",
]

#: What a canary decrypts to. A value stored next to the data at setup; if it
#: stops decrypting to this, the deployed keyring is not the one the data needs.
CANARY_PLAINTEXT = "otplogin-pii-keyring-canary-v1"

_KID_RE = re.compile(r"[0-9a-f]{8}")


class KeyringError(Exception):
    """The keyring secret is unusable (bad JSON, no keys, invalid key). Base of this module's errors."""


class UndecryptableError(KeyringError):
    """A stored value cannot be decrypted with the keys in the ring.

    ``kid`` is the key id recorded in the value (None for a legacy value
    without one, or an unparsable value); ``kid_present`` says whether the
    ring holds that key (True means the value itself is corrupted or altered).
    """

    def __init__(self, kid: str | None, kid_present: bool, detail: str | None = None) -> None:
        self.kid = kid
        self.kid_present = kid_present
        if detail is None:
            if kid is None:
                detail = "value has no key id and no key in the ring decrypts it"
            elif kid_present:
                detail = f"key {kid} is in the keyring but rejects the value (corrupted or altered)"
            else:
                detail = f"value was encrypted with key {kid}, which is not in the keyring"
        self.detail = detail
        super().__init__(f"cannot decrypt: {detail}")


class KeyMismatch(UndecryptableError):
    """The canary does not decrypt to :data:`CANARY_PLAINTEXT`: the keyring is not the one the data needs."""


def key_id(key: str | bytes) -> str:
    """Key id of a Fernet key: first 8 hex chars of SHA-256 over its raw 32 bytes."""
    raw = base64.urlsafe_b64decode(key)
    return hashlib.sha256(raw).hexdigest()[:8]


def generate_key() -> str:
    """A new random Fernet key, as text for the ``pii-keyring`` secret."""
    return Fernet.generate_key().decode("ascii")


def stored_kid(stored: str) -> str | None:
    """The kid recorded in a stored value, or None for a legacy value without one."""
    kid, sep, _ = stored.partition(":")
    return kid if sep else None


class Keyring:
    """Fernet keys in priority order: the first encrypts, every one decrypts."""

    def __init__(self, keys: Sequence[str], *, clock: Callable[[], float] = time.time) -> None:
        """Build from Fernet keys (text). Raises :class:`KeyringError` naming the bad position."""
        if not keys:
            raise KeyringError("pii-keyring: no keys (expected at least one Fernet key)")
        fernets: dict[str, Fernet] = {}
        for index, key in enumerate(keys, start=1):
            if not isinstance(key, str):
                raise KeyringError(f"pii-keyring: key #{index} is not a string")
            try:
                fernet = Fernet(key)
                kid = key_id(key)
            except (ValueError, binascii.Error):
                raise KeyringError(
                    f"pii-keyring: key #{index} is not a valid Fernet key (expected 32 bytes, URL-safe base64)"
                ) from None
            if kid in fernets:
                # Most likely the old key pasted where a new one was meant:
                # the rotation the operator intended would silently not happen.
                raise KeyringError(f"pii-keyring: key #{index} duplicates an earlier key (kid {kid})")
            fernets[kid] = fernet
        self._fernets = fernets
        self._kids = tuple(fernets)
        self._all = MultiFernet(list(fernets.values()))
        self._clock = clock

    @classmethod
    def from_secret(cls, text: str | bytes, *, clock: Callable[[], float] = time.time) -> Keyring:
        """Parse the ``pii-keyring`` secret value; raises :class:`KeyringError` without key material."""
        try:
            data = json.loads(text)
        except (ValueError, TypeError) as exc:
            # The JSON error object keeps the whole document: do not chain it.
            where = f" (line {exc.lineno}, column {exc.colno})" if isinstance(exc, json.JSONDecodeError) else ""
            raise KeyringError(f"pii-keyring: not valid JSON{where}") from None
        if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
            raise KeyringError('pii-keyring: expected {"keys": ["<fernet key>", ...]}')
        return cls(data["keys"], clock=clock)

    def __repr__(self) -> str:
        return f"Keyring(kids={list(self._kids)!r})"

    @property
    def primary_kid(self) -> str:
        """Id of the key that encrypts."""
        return self._kids[0]

    @property
    def kids(self) -> tuple[str, ...]:
        """Ids of every key, in priority order."""
        return self._kids

    def encrypt(self, plaintext: str) -> str:
        """Encrypt with the primary key; returns ``"<kid>:<token>"``."""
        token = self._fernets[self.primary_kid].encrypt_at_time(plaintext.encode("utf-8"), int(self._clock()))
        return f"{self.primary_kid}:{token.decode('ascii')}"

    def decrypt(self, stored: str) -> str:
        """Decrypt a stored value; raises :class:`UndecryptableError` naming the value's kid."""
        if not isinstance(stored, str):
            raise UndecryptableError(None, False, "value is not a string")
        kid = stored_kid(stored)
        token = stored.partition(":")[2] if kid is not None else stored
        if kid is None:
            fernet: Fernet | MultiFernet = self._all
        elif not _KID_RE.fullmatch(kid):
            raise UndecryptableError(None, False, "value has a malformed key id prefix")
        elif kid in self._fernets:
            fernet = self._fernets[kid]
        else:
            raise UndecryptableError(kid, False)
        try:
            return fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError):
            raise UndecryptableError(kid, kid is not None) from None

    def kid_of(self, stored: object) -> str | None:
        """The kid of the key a stored value needs, or None when no one can tell.

        A value's recorded kid is taken as is (the ring may lack it). A legacy
        value without one is tried against each key alone, so a report can say
        which key it still needs; None if none decrypts it (or it is malformed).
        """
        if not isinstance(stored, str):
            return None
        kid = stored_kid(stored)
        if kid is not None:
            return kid if _KID_RE.fullmatch(kid) else None
        for candidate, fernet in self._fernets.items():
            try:
                fernet.decrypt(stored.encode("ascii"))
            except (InvalidToken, UnicodeError):
                continue
            return candidate
        return None

    def needs_reencrypt(self, stored: str) -> bool:
        """True when the value was not made by the primary key (including legacy values)."""
        return stored_kid(stored) != self.primary_kid

    def rotate(self, stored: str) -> str:
        """Re-encrypt a stored value with the primary key (decrypt, then encrypt)."""
        return self.encrypt(self.decrypt(stored))

    def make_canary(self) -> str:
        """A stored value of :data:`CANARY_PLAINTEXT`, to keep beside the data."""
        return self.encrypt(CANARY_PLAINTEXT)

    def check_canary(self, stored: str) -> None:
        """Raise :class:`KeyMismatch` unless ``stored`` decrypts to :data:`CANARY_PLAINTEXT`."""
        try:
            plaintext = self.decrypt(stored)
        except UndecryptableError as exc:
            raise KeyMismatch(exc.kid, exc.kid_present, f"canary: {exc.detail}") from None
        if plaintext != CANARY_PLAINTEXT:
            raise KeyMismatch(stored_kid(stored), True, "canary decrypts to an unexpected value")
