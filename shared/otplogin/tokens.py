"""Access tokens: short-lived JWTs signed with Ed25519 (EdDSA), each naming its key in ``kid``.

Secret ``jwt-signing-keys``: ``{"keys": [{"kid": "...", "private_key_pem": "..."}]}``
(Ed25519, PKCS8 PEM). The first key signs; every key's public half is published
in the JWKS, so other backends verify without the secret. Rotation
(``otplogin-admin rotate-signing-key``): add the new key *last*, so it is
published but does not sign; once every instance and every JWKS cache has it,
move it first; drop the old key once its tokens have expired.

Every token names its kind in the ``typ`` header: access tokens are ``at+jwt``
(RFC 9068), second-factor tokens :data:`SECOND_FACTOR_TOKEN_TYPE`, with an
issuer and an audience of their own. :func:`verify_with_jwks` accepts only the
type it is asked for (access tokens by default).
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
from collections.abc import Callable, Mapping
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm
from msgspec import Struct

__all__ = [
    "ACCESS_TOKEN_TYPE",
    "ALGORITHM",
    "RESERVED_CLAIMS",
    "SECOND_FACTOR_TOKEN_TYPE",
    "SigningKeyError",
    "TokenSigner",
    "generate_signing_key",
    "verify_with_jwks",
]

ALGORITHM = "EdDSA"
#: Claims the signer sets itself; callers' extra claims may not override them.
RESERVED_CLAIMS = frozenset({"iss", "aud", "sub", "iat", "nbf", "exp", "jti"})
#: The ``typ`` header of an access token (RFC 9068, JWT access tokens).
ACCESS_TOKEN_TYPE = "at+jwt"  # noqa: S105 (a header value, not a secret)
#: The ``typ`` header of the token linking a password step to its second factor:
#: a verifier that checks the type (or the issuer) never takes it for an access token.
SECOND_FACTOR_TOKEN_TYPE = "otplogin-mfa+jwt"  # noqa: S105 (a header value, not a secret)

_KID_RE = re.compile(r"[A-Za-z0-9._-]{1,64}")


class SigningKeyError(Exception):
    """The signing-key secret is unusable. Messages name kids and positions, never key material."""


class _SigningKey(Struct, frozen=True):
    kid: str
    private_key: Ed25519PrivateKey

    def __repr__(self) -> str:
        return f"_SigningKey(kid={self.kid!r})"


def _new_jti() -> str:
    return secrets.token_urlsafe(16)


class TokenSigner:
    """Issues tokens of one type (access tokens by default) with the first key; publishes every key as a JWKS."""

    def __init__(
        self,
        keys: list[tuple[str, Ed25519PrivateKey]],
        *,
        issuer: str,
        audience: str,
        ttl_seconds: int = 3600,
        typ: str = ACCESS_TOKEN_TYPE,
        clock: Callable[[], float] = time.time,
        new_jti: Callable[[], str] = _new_jti,
    ) -> None:
        if not keys:
            raise SigningKeyError("jwt-signing-keys: no keys")
        if ttl_seconds <= 0:
            raise ValueError("ttl_seconds must be positive")
        self._keys = tuple(_SigningKey(kid, key) for kid, key in keys)
        self.issuer = issuer
        self.audience = audience
        self.ttl_seconds = ttl_seconds
        self.typ = typ
        self._clock = clock
        self._new_jti = new_jti
        # Public keys never change for an instance: build the JWKS once.
        self._jwks = {"keys": [_public_jwk(k.kid, k.private_key) for k in self._keys]}

    @classmethod
    def from_secret(
        cls,
        text: str | bytes,
        *,
        issuer: str,
        audience: str,
        ttl_seconds: int = 3600,
        typ: str = ACCESS_TOKEN_TYPE,
        clock: Callable[[], float] = time.time,
        new_jti: Callable[[], str] = _new_jti,
    ) -> TokenSigner:
        """Parse the ``jwt-signing-keys`` secret; raises :class:`SigningKeyError` without key material."""
        return cls(
            _parse_secret(text),
            issuer=issuer,
            audience=audience,
            ttl_seconds=ttl_seconds,
            typ=typ,
            clock=clock,
            new_jti=new_jti,
        )

    def __repr__(self) -> str:
        return f"TokenSigner(kids={list(self.kids)!r}, issuer={self.issuer!r}, audience={self.audience!r})"

    @property
    def kids(self) -> tuple[str, ...]:
        """Key ids in priority order; the first signs."""
        return tuple(k.kid for k in self._keys)

    @property
    def signing_kid(self) -> str:
        """Id of the key that signs new tokens."""
        return self._keys[0].kid

    def issue(self, subject: str, claims: Mapping[str, Any] | None = None) -> str:
        """Sign a token for ``subject`` valid for ``ttl_seconds`` from now.

        Sets iss, aud, sub, iat, nbf, exp and a random jti; ``claims`` adds
        others (e.g. ``role``) but may not override those.
        """
        if not isinstance(subject, str) or not subject:
            raise ValueError("subject must be a non-empty string")
        extra = dict(claims or {})
        clash = RESERVED_CLAIMS.intersection(extra)
        if clash:
            raise ValueError(f"claims may not set reserved claims: {sorted(clash)}")
        now = int(self._clock())
        payload = {
            **extra,
            "iss": self.issuer,
            "aud": self.audience,
            "sub": subject,
            "iat": now,
            "nbf": now,
            "exp": now + self.ttl_seconds,
            "jti": self._new_jti(),
        }
        key = self._keys[0]
        return jwt.encode(payload, key.private_key, algorithm=ALGORITHM, headers={"kid": key.kid, "typ": self.typ})

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """The public JWKS (RFC 7517) of every key, safe to publish."""
        return {"keys": [dict(k) for k in self._jwks["keys"]]}

    def verify(self, token: str, *, leeway: float = 0) -> dict[str, Any]:
        """Verify a token against this signer's own keys, issuer, audience and type (see :func:`verify_with_jwks`)."""
        return verify_with_jwks(
            token, self._jwks, issuer=self.issuer, audience=self.audience, typ=self.typ, leeway=leeway
        )


def _public_jwk(kid: str, private_key: Ed25519PrivateKey) -> dict[str, str]:
    jwk = OKPAlgorithm.to_jwk(private_key.public_key(), as_dict=True)
    return {"kty": jwk["kty"], "crv": jwk["crv"], "x": jwk["x"], "kid": kid, "alg": ALGORITHM, "use": "sig"}


def _parse_secret(text: str | bytes) -> list[tuple[str, Ed25519PrivateKey]]:
    try:
        data = json.loads(text)
    except (ValueError, TypeError) as exc:
        # The JSON error keeps the whole document (private keys): do not chain it.
        where = f" (line {exc.lineno}, column {exc.colno})" if isinstance(exc, json.JSONDecodeError) else ""
        raise SigningKeyError(f"jwt-signing-keys: not valid JSON{where}") from None
    entries = data.get("keys") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not entries:
        raise SigningKeyError('jwt-signing-keys: expected {"keys": [{"kid": ..., "private_key_pem": ...}, ...]}')
    keys: list[tuple[str, Ed25519PrivateKey]] = []
    seen: set[str] = set()
    for index, entry in enumerate(entries, start=1):
        where = f"jwt-signing-keys: key #{index}"
        if not isinstance(entry, dict):
            raise SigningKeyError(f"{where} is not an object")
        kid = entry.get("kid")
        if not isinstance(kid, str) or not _KID_RE.fullmatch(kid):
            raise SigningKeyError(f"{where}: kid must be 1-64 characters of A-Z a-z 0-9 . _ -")
        where = f"{where} (kid {kid})"
        if kid in seen:
            raise SigningKeyError(f"{where}: duplicate kid")
        seen.add(kid)
        pem = entry.get("private_key_pem")
        if not isinstance(pem, str) or not pem:
            raise SigningKeyError(f"{where}: private_key_pem is missing")
        try:
            private_key = serialization.load_pem_private_key(pem.encode("utf-8"), password=None)
        except (ValueError, TypeError, UnicodeError):
            raise SigningKeyError(f"{where}: private_key_pem is not an unencrypted PKCS8 PEM private key") from None
        if not isinstance(private_key, Ed25519PrivateKey):
            raise SigningKeyError(f"{where}: private key is not Ed25519")
        keys.append((kid, private_key))
    return keys


def verify_with_jwks(
    token: str,
    jwks: Mapping[str, Any],
    *,
    issuer: str,
    audience: str,
    typ: str = ACCESS_TOKEN_TYPE,
    leeway: float = 0,
) -> dict[str, Any]:
    """Verify an EdDSA token of type ``typ`` with the key its ``kid`` names in ``jwks``; return its claims.

    Needs only the public JWKS, so any backend can use it. The algorithm is
    fixed to EdDSA whatever the header says; the ``typ`` header must be ``typ``
    (an access token by default: a second-factor token is refused even where
    its audience would be accepted); exp, iat, iss, aud, sub and jti are
    required. Raises ``jwt.InvalidTokenError`` (or a subclass) on any failure.
    """
    header = jwt.get_unverified_header(token)
    if _media_type(header.get("typ")) != _media_type(typ):
        raise jwt.InvalidTokenError(f"token type is not {typ!r}")
    kid = header.get("kid")
    if not isinstance(kid, str):
        raise jwt.InvalidTokenError("token has no kid header")
    try:
        key_set = jwt.PyJWKSet.from_dict(dict(jwks))
        key = key_set[kid]
    except (jwt.PyJWKSetError, KeyError):
        raise jwt.InvalidTokenError(f"no published key with kid {kid!r}") from None
    if key.algorithm_name != ALGORITHM or key.public_key_use not in (None, "sig"):
        raise jwt.InvalidTokenError(f"published key {kid!r} is not an EdDSA signing key")
    return jwt.decode(
        token,
        key,
        algorithms=[ALGORITHM],
        issuer=issuer,
        audience=audience,
        leeway=leeway,
        options={"require": ["exp", "iat", "iss", "aud", "sub", "jti"]},
    )


def _media_type(value: object) -> str | None:
    """``typ`` compared as RFC 8725 says: case-insensitive, ``application/`` optional."""
    if not isinstance(value, str):
        return None
    value = value.lower()
    return value.removeprefix("application/")


def generate_signing_key(kid: str | None = None) -> dict[str, str]:
    """A new Ed25519 key as one entry of the ``jwt-signing-keys`` secret.

    Without ``kid``, one is derived from the public key (16 hex chars of its
    SHA-256), so it is stable and reveals nothing.
    """
    private_key = Ed25519PrivateKey.generate()
    if kid is None:
        raw_public = private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        kid = hashlib.sha256(raw_public).hexdigest()[:16]
    elif not _KID_RE.fullmatch(kid):
        raise ValueError("kid must be 1-64 characters of A-Z a-z 0-9 . _ -")
    pem = private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")
    return {"kid": kid, "private_key_pem": pem}
