"""Challenges a client can pass instead of being refused: ALTCHA proof of work, app attestation.

- ALTCHA (the open protocol; `altcha` on PyPI, its widget on npm): the server
  signs a PBKDF2 puzzle with a key derived from the OTP pepper; the client finds
  the counter and sends back the payload. The challenge is made for one phone
  (an HMAC prefix of it in the signed data) and expires, so a solution buys
  nothing but what the per-phone limits already allow for that phone: no
  replay store is needed. Deterministic mode with a key signature makes the
  check one HMAC, not a re-derivation.
- App attestation (Firebase App Check style): a JWT signed by the attestation
  service, checked against its JWKS (fetched, cached), issuer and audience.

A passed challenge makes a send "proven": it skips the range and country
conversion checks and draws on its own share of the project cap.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from typing import Any

from msgspec import Struct

from otplogin.config import Settings

ALTCHA = "altcha"
ATTESTATION = "attestation"
_ATTESTATION_ALGORITHMS = ["RS256", "ES256", "EdDSA"]


class ProofCheck(Struct, frozen=True):
    passed: str | None  # "altcha" or "attestation"
    failure: str | None  # why a proof that was sent did not pass: a stable reason for the logs


class Challenges:
    def __init__(self, settings: Settings, pepper: Callable[[], str]) -> None:
        self.settings = settings
        self._pepper = pepper
        self._jwks: Any = None

    @property
    def kinds(self) -> frozenset[str]:
        return self.settings.guard_challenges

    def _key(self, purpose: str) -> str:
        return hmac.new(self._pepper().encode(), f"altcha:{purpose}".encode(), hashlib.sha256).hexdigest()

    @staticmethod
    def _binding(phone_key: str) -> str:
        return phone_key[:16]

    # -- issue ----------------------------------------------------------------------------
    def issue(self, phone_key: str, now: float) -> dict[str, Any]:
        """What a `challenge_required` answer offers: an ALTCHA challenge and/or attestation."""
        offer: dict[str, Any] = {}
        if ALTCHA in self.kinds:
            from altcha import create_challenge

            cfg = self.settings
            low = max(1, cfg.guard_altcha_max_counter // 2)
            challenge = create_challenge(
                algorithm=cfg.guard_altcha_algorithm,
                cost=cfg.guard_altcha_cost,
                counter=low + secrets.randbelow(cfg.guard_altcha_max_counter - low + 1),
                # Expiry is checked here against the service's clock, so it travels in the signed data.
                data={"p": self._binding(phone_key), "e": int(now + cfg.guard_challenge_ttl_seconds)},
                hmac_secret=self._key("challenge"),
                hmac_key_secret=self._key("solution"),
            )
            offer[ALTCHA] = challenge.to_dict()
        if ATTESTATION in self.kinds:
            offer[ATTESTATION] = True
        return offer

    # -- check ----------------------------------------------------------------------------
    def check(self, altcha: str | None, attestation: str | None, phone_key: str, now: float) -> ProofCheck:
        failure = None
        if attestation and ATTESTATION in self.kinds:
            failure = self._check_attestation(attestation)
            if failure is None:
                return ProofCheck(ATTESTATION, None)
        if altcha and ALTCHA in self.kinds:
            failure = self._check_altcha(altcha, phone_key, now)
            if failure is None:
                return ProofCheck(ALTCHA, None)
        elif (altcha or attestation) and failure is None:
            failure = "challenge_not_enabled"
        return ProofCheck(None, failure)

    def _check_altcha(self, payload_b64: str, phone_key: str, now: float) -> str | None:
        from altcha import Payload, verify_solution

        try:
            payload = Payload.from_base64(payload_b64)
            data = payload.challenge.parameters.data or {}
        except Exception:  # malformed input of any shape: not a solution
            return "altcha_malformed"
        if not isinstance(data, dict) or not hmac.compare_digest(str(data.get("p", "")), self._binding(phone_key)):
            return "altcha_other_phone"
        expires = data.get("e")
        if not isinstance(expires, int) or expires < now:
            return "altcha_expired"
        try:
            result = verify_solution(payload, self._key("challenge"), hmac_key_secret=self._key("solution"))
        except Exception:
            return "altcha_malformed"
        if not result.verified:
            return "altcha_invalid"
        return None

    def _check_attestation(self, token: str) -> str | None:
        import jwt

        cfg = self.settings
        if self._jwks is None:
            self._jwks = jwt.PyJWKClient(str(cfg.guard_attestation_jwks_url), cache_keys=True, lifespan=300)
        try:
            key = self._jwks.get_signing_key_from_jwt(token)
        except jwt.PyJWKClientConnectionError:
            return "attestation_jwks_unavailable"
        except jwt.PyJWTError:
            return "attestation_unknown_key"
        try:
            jwt.decode(
                token,
                key.key,
                algorithms=_ATTESTATION_ALGORITHMS,
                audience=cfg.guard_attestation_audience,
                issuer=cfg.guard_attestation_issuer,
                options={"require": ["exp", "aud"] + (["iss"] if cfg.guard_attestation_issuer else [])},
            )
        except jwt.ExpiredSignatureError:
            return "attestation_expired"
        except jwt.PyJWTError:
            return "attestation_invalid"
        return None
