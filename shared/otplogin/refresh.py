"""Refresh tokens: one family per sign-in, rotated on every use, revoked on reuse. Plain Python.

A token is `<family id>.<secret>` (128 + 256 random bits from `secrets`). The
family document `refresh_families/{HMAC(family id)}` holds only HMACs of the
current and the previous token, the claims to re-issue encrypted under a key
derived from the family id (which only the token carries), and the family's
clock: created, last used, revoked. So Firestore holds no token, no phone and no
email in plaintext.

A refresh is one `store.atomic_update` over the family and the subject's
marker (`refresh_subjects/{HMAC(subject)}`, whose `revoked_before` signs a
subject out everywhere with one write): one read, one commit, no query.

- The current token rotates: the successor is answered, the old one is spent.
- The previous token, within `refresh_reuse_grace_seconds` of its rotation,
  gets the same successor again (a client that lost the answer and retries);
  that successor is stored encrypted under a key derived from the previous
  token, so only its holder can have it back.
- Any other token of the family (spent, or the previous one after the grace)
  is reuse: the family is revoked, the newest token with it, and
  `refresh_token_reused` is logged.
- Idle timeout and absolute lifetime are checked here; `expires_at` is for
  Firestore's TTL cleanup only.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import math
import re
import secrets
import time
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from msgspec import Struct

from otplogin import log, store
from otplogin.config import Settings
from otplogin.errors import InvalidGrant
from otplogin.limits import timestamp

FAMILIES = "refresh_families"
SUBJECTS = "refresh_subjects"
# `<subject key>.<family id>.<secret>`: the subject key (an HMAC) names the sign-out-everywhere
# marker, so a refresh reads the family and the marker in one round trip.
TOKEN_PATTERN = re.compile(r"^([0-9a-f]{40})\.([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{43})$")
MAX_TOKEN_LENGTH = 128  # what a handler accepts before the pattern refuses it


class Issued(Struct, frozen=True):
    """A refresh token and the claims of the access token that goes with it."""

    refresh_token: str
    expires_in: int  # seconds until the family's idle or absolute limit, whichever comes first
    subject: str
    claims: dict[str, Any]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii")


class RefreshTokens:
    def __init__(self, settings: Settings, *, pepper: Callable[[], str], clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self._pepper = pepper
        self._clock = clock

    # -- keys -----------------------------------------------------------------------------------
    def _mac(self, purpose: str, value: str) -> bytes:
        return hmac.new(self._pepper().encode(), f"{purpose}:{value}".encode(), hashlib.sha256).digest()

    def family_path(self, family_id: str) -> str:
        return f"{FAMILIES}/{self._mac('refresh_family', family_id).hex()[:40]}"

    def subject_path(self, subject: str) -> str:
        return f"{SUBJECTS}/{self._mac('refresh_subject', subject).hex()[:40]}"

    def _token_hash(self, token: str) -> str:
        return self._mac("refresh_token", token).hex()

    def _seal(self, key_purpose: str, key_value: str, plaintext: bytes) -> str:
        nonce = secrets.token_bytes(12)
        return _b64(nonce + AESGCM(self._mac(key_purpose, key_value)).encrypt(nonce, plaintext, None))

    def _open(self, key_purpose: str, key_value: str, sealed: str) -> bytes:
        raw = base64.urlsafe_b64decode(sealed)
        return AESGCM(self._mac(key_purpose, key_value)).decrypt(raw[:12], raw[12:], None)

    # -- lifetimes ------------------------------------------------------------------------------
    def _ends_at(self, created_at: float, last_used: float) -> float:
        cfg = self.settings
        return min(last_used + cfg.refresh_idle_seconds, created_at + cfg.refresh_lifetime_seconds)

    def _expires_in(self, created_at: float, last_used: float, now: float) -> int:
        return max(0, math.floor(self._ends_at(created_at, last_used) - now))

    # -- issue ----------------------------------------------------------------------------------
    def new_family(self, subject: str, claims: dict[str, Any], *, user: str | None = None) -> tuple[Issued, str, dict[str, Any]]:
        """A new family's first token, its document path and contents (the caller commits them)."""
        now = self._clock()
        family_id = secrets.token_urlsafe(16)
        subject_key = self.subject_path(subject).partition("/")[2]
        token = f"{subject_key}.{family_id}.{secrets.token_urlsafe(32)}"
        sealed = self._seal("refresh_claims", family_id, json.dumps({"sub": subject, "claims": claims}).encode())
        # `previous`, `successor_enc`, `rotated_at` and `revoked_at` are absent until a rotation or a
        # revocation writes them (readers use .get): each field a create carries costs its encoding.
        doc: dict[str, Any] = {
            "subject_key": subject_key,
            "claims_enc": sealed,
            "current": self._token_hash(token),
            "created_at": now,
            "last_used": now,
            "expires_at": timestamp(self._ends_at(now, now)),
        }
        if user:
            doc["user"] = user  # a user code (as the logs name users), so reuse alerts say whose session
        issued = Issued(token, self._expires_in(now, now, now), subject, claims)
        return issued, self.family_path(family_id), doc

    def issue(self, subject: str, claims: dict[str, Any], *, user: str | None = None) -> Issued:
        """Start a family for a sign-in: one commit (a create, no read)."""
        issued, path, doc = self.new_family(subject, claims, user=user)
        store.atomic_update([], lambda _docs: store.Plan(issued, {path: doc}))
        return issued

    # -- refresh --------------------------------------------------------------------------------
    def refresh(self, token: str) -> Issued:
        """Rotate `token`, or raise `InvalidGrant` (401) for anything not current or within grace."""
        parsed = self._parse(token)
        if parsed is None:
            raise InvalidGrant()
        subject_key, family_id, path = parsed
        marker_path = f"{SUBJECTS}/{subject_key}"
        presented = self._token_hash(token)

        def decide(docs: store.Docs) -> store.Plan[Issued | _Refused]:
            now = self._clock()
            family = docs[path]
            refused = self._refusal(family, docs[marker_path], now)
            if refused or family is None:
                return store.Plan(_Refused(refused or "unknown"))
            opened = json.loads(self._open("refresh_claims", family_id, family["claims_enc"]))
            created = family["created_at"]
            if hmac.compare_digest(presented, family["current"]):
                successor = f"{subject_key}.{family_id}.{secrets.token_urlsafe(32)}"
                writes = {path: {
                    "current": self._token_hash(successor),
                    "previous": presented,
                    "successor_enc": self._seal("refresh_successor", token, successor.encode()),
                    "rotated_at": now,
                    "last_used": now,
                    "expires_at": timestamp(self._ends_at(created, now)),
                }}
                return store.Plan(Issued(successor, self._expires_in(created, now, now), opened["sub"], opened["claims"]),
                                  writes)
            previous, rotated_at = family.get("previous"), family.get("rotated_at")
            grace = self.settings.refresh_reuse_grace_seconds
            if previous and rotated_at is not None and hmac.compare_digest(presented, previous) and now < rotated_at + grace:
                # A retry of the last rotation (its answer was lost): the same successor, nothing written.
                successor = self._open("refresh_successor", token, family["successor_enc"]).decode()
                expires_in = self._expires_in(created, family["last_used"], now)
                return store.Plan(Issued(successor, expires_in, opened["sub"], opened["claims"]))
            # A spent token: whoever holds the newest one may be a thief, or the victim. Revoke both.
            return store.Plan(_Refused("reuse", family.get("user")), {path: {"revoked_at": now, "revoked_reason": "reuse"}})

        outcome = store.atomic_update([path, marker_path], decide)
        if isinstance(outcome, _Refused):
            if outcome.reason == "reuse":
                who = {"user": outcome.user} if outcome.user else {}
                log.event("refresh_token_reused", "a spent refresh token was presented: its session family is revoked",
                          severity=logging.WARNING, family=path.partition("/")[2][:12], **who)
            else:
                log.event("refresh_refused", f"refresh refused: {outcome.reason}", reason=outcome.reason)
            raise InvalidGrant()
        return outcome

    def _refusal(self, family: store.Doc | None, marker: store.Doc | None, now: float) -> str | None:
        """Why a family cannot refresh (checked before its tokens), or None.

        The marker read is the one the token's subject part names. A token whose subject part was
        altered (to read another subject's marker) never matches the family's HMACs, which cover
        the whole token: it is taken for reuse and revokes the family."""
        if family is None:
            return "unknown"
        if family.get("revoked_at") is not None:
            return "revoked"
        if marker is not None and family["created_at"] <= float(marker.get("revoked_before", 0)):
            return "revoked"
        if now >= self._ends_at(family["created_at"], family["last_used"]):
            return "expired"
        return None

    def _parse(self, token: object) -> tuple[str, str, str] | None:
        """(subject key, family id, family path) of a well-formed token, else None."""
        match = TOKEN_PATTERN.fullmatch(token) if isinstance(token, str) else None
        if not match:
            return None
        return match.group(1), match.group(2), self.family_path(match.group(2))

    # -- revoke ---------------------------------------------------------------------------------
    def revoke(self, token: str, reason: str = "logout") -> bool:
        """Revoke the family `token` belongs to (any of its tokens). False if there is none."""
        parsed = self._parse(token)
        if parsed is None:
            return False
        subject_key, _, path = parsed

        def decide(docs: store.Docs) -> store.Plan[bool]:
            family = docs[path]
            if family is None or family.get("subject_key") != subject_key:
                return store.Plan(False)
            if family.get("revoked_at") is not None:
                return store.Plan(True)
            return store.Plan(True, {path: {"revoked_at": self._clock(), "revoked_reason": reason}})

        done = store.atomic_update([path], decide)
        if done:
            log.event("session_revoked", f"session family revoked: {reason}", reason=reason, scope="family")
        return done

    def revoke_subject_writes(self, subject: str) -> dict[str, Any]:
        """The write that revokes every family `subject` has now (for a caller's own atomic update)."""
        now = self._clock()
        marker = {"revoked_before": now, "expires_at": timestamp(now + self.settings.refresh_lifetime_seconds)}
        return {self.subject_path(subject): marker}

    def revoke_subject(self, subject: str, reason: str) -> None:
        """Sign `subject` out everywhere: one write, whatever the number of families."""
        writes = self.revoke_subject_writes(subject)
        store.atomic_update([], lambda _docs: store.Plan(None, {p: store.Merge(d) for p, d in writes.items()}))
        log.event("session_revoked", f"every session of a subject revoked: {reason}", reason=reason, scope="subject")


class _Refused(Struct, frozen=True):
    reason: str  # "unknown" | "revoked" | "expired" | "reuse": for the log line only, never the answer
    user: str | None = None
