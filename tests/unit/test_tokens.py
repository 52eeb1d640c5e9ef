"""Access tokens: real Ed25519 keys, verified only through the published JWKS."""

from __future__ import annotations

import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key

from otplogin.tokens import (
    ACCESS_TOKEN_TYPE,
    SECOND_FACTOR_TOKEN_TYPE,
    SigningKeyError,
    TokenSigner,
    generate_signing_key,
    verify_with_jwks,
)

ISS, AUD = "https://otp.example.test", "otplogin-clients"
OLD = generate_signing_key("2025-01")
NEW = generate_signing_key("2026-01")


def secret(*entries: dict[str, str]) -> str:
    return json.dumps({"keys": list(entries)})


def signer(*entries: dict[str, str], **kwargs: object) -> TokenSigner:
    return TokenSigner.from_secret(secret(*entries), issuer=ISS, audience=AUD, **kwargs)  # type: ignore[arg-type]


def verify(token: str, jwks: dict, *, issuer: str = ISS, audience: str = AUD, leeway: float = 0) -> dict:
    return verify_with_jwks(token, jwks, issuer=issuer, audience=audience, leeway=leeway)


def public_only(jwks: dict) -> dict:
    """A JWKS as another backend would receive it: JSON, nothing private."""
    return json.loads(json.dumps(jwks))


def test_issue_and_verify_via_jwks_only() -> None:
    s = signer(OLD)
    token = s.issue("MAN0001RAB", {"role": "user"})
    claims = verify(token, public_only(s.jwks()))
    assert claims["sub"] == "MAN0001RAB"
    assert claims["role"] == "user"
    assert claims["iss"] == ISS and claims["aud"] == AUD
    assert claims["exp"] - claims["iat"] == 3600
    assert claims["nbf"] == claims["iat"]
    assert claims["jti"]
    assert s.verify(token)["sub"] == "MAN0001RAB"


def test_claims_follow_injected_clock_and_jti() -> None:
    now = time.time()
    s = signer(OLD, ttl_seconds=600, clock=lambda: now, new_jti=lambda: "fixed-jti")
    claims = jwt.decode(s.issue("u1"), options={"verify_signature": False})
    assert claims["iat"] == int(now) and claims["exp"] == int(now) + 600
    assert claims["jti"] == "fixed-jti"


def test_jti_is_random() -> None:
    s = signer(OLD)
    a, b = (jwt.decode(s.issue("u1"), options={"verify_signature": False})["jti"] for _ in range(2))
    assert a != b and len(a) >= 16


def test_header_has_kid_and_eddsa() -> None:
    header = jwt.get_unverified_header(signer(OLD).issue("u1"))
    assert header["kid"] == "2025-01"
    assert header["alg"] == "EdDSA"


def test_jwks_shape_has_every_key_and_nothing_private() -> None:
    s = signer(NEW, OLD)
    jwks = s.jwks()
    assert [k["kid"] for k in jwks["keys"]] == ["2026-01", "2025-01"]
    for key in jwks["keys"]:
        assert set(key) == {"kty", "crv", "x", "kid", "alg", "use"}
        assert (key["kty"], key["crv"], key["alg"], key["use"]) == ("OKP", "Ed25519", "EdDSA", "sig")
    assert all("d" not in key for key in jwks["keys"])
    assert "PRIVATE" not in json.dumps(jwks)
    jwks["keys"].clear()  # a copy: the signer's own set is untouched
    assert len(s.jwks()["keys"]) == 2


def test_expired_token_rejected() -> None:
    past = signer(OLD, ttl_seconds=60, clock=lambda: time.time() - 120)
    token = past.issue("u1")
    with pytest.raises(jwt.ExpiredSignatureError):
        verify(token, past.jwks())
    # ...unless the verifier allows that much clock skew.
    assert verify(token, past.jwks(), leeway=90)["sub"] == "u1"


def test_token_from_the_future_rejected() -> None:
    future = signer(OLD, clock=lambda: time.time() + 600)
    with pytest.raises(jwt.ImmatureSignatureError):
        verify(future.issue("u1"), future.jwks())


def test_wrong_audience_or_issuer_rejected() -> None:
    s = signer(OLD)
    token = s.issue("u1")
    with pytest.raises(jwt.InvalidAudienceError):
        verify(token, s.jwks(), audience="someone-else")
    with pytest.raises(jwt.InvalidIssuerError):
        verify(token, s.jwks(), issuer="https://evil.example")


def test_rotation_old_token_verifies_after_new_key_added_first() -> None:
    old_token = signer(OLD).issue("u1")
    rotated = signer(NEW, OLD)
    assert rotated.signing_kid == "2026-01"
    new_token = rotated.issue("u2")
    assert jwt.get_unverified_header(new_token)["kid"] == "2026-01"

    jwks = public_only(rotated.jwks())
    assert verify(old_token, jwks)["sub"] == "u1"
    assert verify(new_token, jwks)["sub"] == "u2"

    # After the old key is dropped, its tokens no longer verify.
    with pytest.raises(jwt.InvalidTokenError, match="2025-01"):
        verify(old_token, signer(NEW).jwks())


def test_kid_swapped_to_another_published_key_fails_signature() -> None:
    s = signer(NEW, OLD)
    token = signer(OLD).issue("u1")
    forged = jwt.encode(
        jwt.decode(token, options={"verify_signature": False}),
        serialization.load_pem_private_key(OLD["private_key_pem"].encode(), None),  # type: ignore[arg-type]
        algorithm="EdDSA",
        headers={"kid": "2026-01", "typ": ACCESS_TOKEN_TYPE},
    )
    with pytest.raises(jwt.InvalidSignatureError):
        verify(forged, s.jwks())


def test_token_without_kid_rejected() -> None:
    key = serialization.load_pem_private_key(OLD["private_key_pem"].encode(), None)
    claims = jwt.decode(signer(OLD).issue("u1"), options={"verify_signature": False})
    token = jwt.encode(claims, key, algorithm="EdDSA", headers={"typ": ACCESS_TOKEN_TYPE})  # type: ignore[arg-type]
    with pytest.raises(jwt.InvalidTokenError, match="kid"):
        verify(token, signer(OLD).jwks())


def test_other_algorithms_not_accepted() -> None:
    # alg "none" and HMAC-with-the-public-key tricks are refused: EdDSA is fixed.
    s = signer(OLD)
    claims = jwt.decode(s.issue("u1"), options={"verify_signature": False})
    unsigned = jwt.encode(claims, None, algorithm="none", headers={"kid": "2025-01"})  # type: ignore[arg-type]
    with pytest.raises(jwt.InvalidTokenError):
        verify(unsigned, s.jwks())
    hs = jwt.encode(claims, s.jwks()["keys"][0]["x"], algorithm="HS256", headers={"kid": "2025-01"})
    with pytest.raises(jwt.InvalidTokenError):
        verify(hs, s.jwks())


def test_the_type_header_is_checked_and_a_second_factor_token_is_refused() -> None:
    mfa = signer(OLD, typ=SECOND_FACTOR_TOKEN_TYPE)
    token = mfa.issue("u1")
    assert jwt.get_unverified_header(token)["typ"] == SECOND_FACTOR_TOKEN_TYPE
    with pytest.raises(jwt.InvalidTokenError, match="token type"):
        verify(token, mfa.jwks())  # same keys, issuer and audience: refused by type alone
    assert mfa.verify(token)["sub"] == "u1"
    access = signer(OLD).issue("u1")
    assert jwt.get_unverified_header(access)["typ"] == "at+jwt"
    with pytest.raises(jwt.InvalidTokenError, match="token type"):
        mfa.verify(access)  # nor the other way round
    claims = jwt.decode(access, options={"verify_signature": False})
    key = serialization.load_pem_private_key(OLD["private_key_pem"].encode(), None)
    for typ, ok in (("AT+JWT", True), ("application/at+jwt", True), ("JWT", False), (None, False)):
        headers = {"kid": "2025-01"} | ({"typ": typ} if typ else {})
        forged = jwt.encode(claims, key, algorithm="EdDSA", headers=headers)  # type: ignore[arg-type]
        if ok:
            assert verify(forged, mfa.jwks())["sub"] == "u1"
        else:
            with pytest.raises(jwt.InvalidTokenError):
                verify(forged, mfa.jwks())


def test_garbage_token_rejected() -> None:
    with pytest.raises(jwt.InvalidTokenError):
        verify("not.a.jwt", signer(OLD).jwks())


def test_reserved_claims_cannot_be_overridden() -> None:
    with pytest.raises(ValueError, match="exp"):
        signer(OLD).issue("u1", {"exp": 9_999_999_999})
    with pytest.raises(ValueError):
        signer(OLD).issue("")


def _ec_pem() -> str:
    key = generate_private_key(SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("{not json", "jwt-signing-keys: not valid JSON (line 1, column 2)"),
        ('{"keys": []}', "expected"),
        ("[]", "expected"),
        (secret({"kid": "a b", "private_key_pem": OLD["private_key_pem"]}), "kid must be"),
        (secret({"private_key_pem": OLD["private_key_pem"]}), "kid must be"),
        (secret({"kid": "k1"}), "key #1 (kid k1): private_key_pem is missing"),
        (secret({"kid": "k1", "private_key_pem": ""}), "key #1 (kid k1): private_key_pem is missing"),
        (secret(OLD, "not an object"), "jwt-signing-keys: key #2 is not an object"),  # type: ignore[arg-type]
        (secret(OLD, {"kid": "2025-01", "private_key_pem": NEW["private_key_pem"]}), "duplicate kid"),
        (
            secret({"kid": "k1", "private_key_pem": OLD["private_key_pem"][:-40] + "\n-----END PRIVATE KEY-----\n"}),
            "not an unencrypted PKCS8 PEM",
        ),
        (secret({"kid": "k1", "private_key_pem": _ec_pem()}), "not Ed25519"),
    ],
)
def test_bad_secret_raises_without_key_material(text: str, fragment: str) -> None:
    with pytest.raises(SigningKeyError) as info:
        TokenSigner.from_secret(text, issuer=ISS, audience=AUD)
    message = str(info.value)
    assert fragment in message
    for pem in (OLD["private_key_pem"], NEW["private_key_pem"]):
        body = "".join(pem.splitlines()[1:-1])
        assert all(body[i : i + 8] not in message for i in range(len(body) - 8))
    # Nothing chained either: a JSON or PEM error could carry the secret.
    assert info.value.__cause__ is None
    assert info.value.__context__ is None or info.value.__suppress_context__


def test_generate_signing_key_round_trips_and_derives_kid() -> None:
    entry = generate_signing_key()
    assert len(entry["kid"]) == 16
    s = signer(entry)
    assert s.verify(s.issue("u1"))["sub"] == "u1"
    with pytest.raises(ValueError):
        generate_signing_key("bad kid")


def test_repr_has_no_key_material() -> None:
    text = repr(signer(NEW, OLD))
    assert "PRIVATE" not in text and "2026-01" in text


def _sign(payload: dict, entry: dict[str, str] = OLD) -> str:
    """A token signed with a published key but built by hand (what a buggy or hostile issuer could send)."""
    key = serialization.load_pem_private_key(entry["private_key_pem"].encode(), password=None)
    headers = {"kid": entry["kid"], "typ": ACCESS_TOKEN_TYPE}
    return jwt.encode(payload, key, algorithm="EdDSA", headers=headers)  # type: ignore[arg-type]


@pytest.mark.parametrize("missing", ["exp", "iat", "iss", "aud", "sub", "jti"])
def test_a_token_missing_a_required_claim_is_refused(missing: str) -> None:
    # Signed by a published key and otherwise valid: without exp it would never expire,
    # without jti it could not be revoked, without sub it names nobody.
    now = int(time.time())
    claims = {"iss": ISS, "aud": AUD, "sub": "u1", "iat": now, "nbf": now, "exp": now + 60, "jti": "j1"}
    jwks = signer(OLD).jwks()
    assert verify(_sign(claims), jwks)["sub"] == "u1"  # the complete token passes: the refusal is the claim
    del claims[missing]
    with pytest.raises(jwt.MissingRequiredClaimError):
        verify(_sign(claims), jwks)


def test_a_published_key_not_meant_for_signatures_is_refused() -> None:
    s = signer(OLD)
    jwks = s.jwks()
    jwks["keys"][0]["use"] = "enc"
    with pytest.raises(jwt.InvalidTokenError, match="not an EdDSA signing key"):
        verify(s.issue("u1"), jwks)
    del jwks["keys"][0]["use"]  # "use" is optional in a JWKS
    assert verify(s.issue("u1"), jwks)["sub"] == "u1"


def test_no_leeway_by_default_a_token_is_expired_at_its_exp() -> None:
    while time.time() % 1 > 0.5:  # room before the next whole second: exp stays within 1 s of now
        time.sleep(0.05)
    at_exp = signer(OLD, ttl_seconds=60, clock=lambda: int(time.time()) - 60)
    token = at_exp.issue("u1")
    with pytest.raises(jwt.ExpiredSignatureError):
        verify_with_jwks(token, at_exp.jwks(), issuer=ISS, audience=AUD)
    with pytest.raises(jwt.ExpiredSignatureError):
        at_exp.verify(token)
    assert verify(token, at_exp.jwks(), leeway=5)["sub"] == "u1"


def test_the_signer_verifies_its_own_issuer() -> None:
    ours = signer(OLD)
    theirs = TokenSigner.from_secret(secret(OLD), issuer="https://other.example", audience=AUD)
    with pytest.raises(jwt.InvalidIssuerError):
        ours.verify(theirs.issue("u1"))


def test_ttl_default_and_bounds() -> None:
    claims = jwt.decode(signer(OLD).issue("u1"), options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 3600
    assert signer(OLD, ttl_seconds=1).ttl_seconds == 1  # the shortest allowed
    for bad in (0, -5):
        with pytest.raises(ValueError, match="ttl_seconds must be positive"):
            signer(OLD, ttl_seconds=bad)


def test_jti_carries_128_random_bits() -> None:
    jti = jwt.decode(signer(OLD).issue("u1"), options={"verify_signature": False})["jti"]
    assert len(jti) == 22  # 16 bytes, URL-safe base64 without padding
