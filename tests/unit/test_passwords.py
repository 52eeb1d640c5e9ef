"""Argon2id hashing: real hashes, cheap parameters except where the defaults themselves matter."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from otplogin import passwords
from otplogin.passwords import (
    DEFAULT_PARAMS,
    MAX_ITERATIONS,
    MAX_MEMORY_KIB,
    MAX_PASSWORD_BYTES,
    MINIMUM_PARAMS,
    Argon2Params,
    MalformedHashError,
    hash_password,
    needs_rehash,
    parse_phc,
    rehash_params,
    verify_against_dummy,
    verify_password,
)

# Real Argon2id, tiny cost: keeps the suite fast while exercising the same code.
CHEAP = Argon2Params(memory_kib=64, iterations=1, lanes=1)


def test_defaults_are_at_least_the_owasp_minimum() -> None:
    assert MINIMUM_PARAMS == Argon2Params(memory_kib=19456, iterations=2, lanes=1)
    assert not DEFAULT_PARAMS.weaker_than(MINIMUM_PARAMS)


def test_hash_is_argon2id_phc_with_the_default_params() -> None:
    phc = hash_password("correct horse battery staple")
    assert phc.startswith("$argon2id$v=19$m=19456,t=3,p=1$")
    assert parse_phc(phc) == DEFAULT_PARAMS
    assert verify_password("correct horse battery staple", phc)


def test_wrong_password_is_false() -> None:
    phc = hash_password("s3cret-Pass", CHEAP)
    assert verify_password("s3cret-Pass", phc)
    assert not verify_password("s3cret-pass", phc)
    assert not verify_password("s3cret-Pass ", phc)


def test_salt_is_random_and_injectable() -> None:
    assert hash_password("pw", CHEAP) != hash_password("pw", CHEAP)
    fixed = lambda n: b"\x01" * n  # noqa: E731
    assert hash_password("pw", CHEAP, random_bytes=fixed) == hash_password("pw", CHEAP, random_bytes=fixed)


def test_unicode_forms_are_normalized() -> None:
    composed, decomposed = "caf\u00e9-\u00e9t\u00e9", "cafe\u0301-e\u0301te\u0301"
    phc = hash_password(composed, CHEAP)
    assert verify_password(decomposed, phc)


@pytest.mark.parametrize("bad", ["", "x" * (MAX_PASSWORD_BYTES + 1), "\u00e9" * (MAX_PASSWORD_BYTES // 2 + 1)])
def test_hash_rejects_empty_and_too_long(bad: str) -> None:
    with pytest.raises(ValueError):
        hash_password(bad, CHEAP)


def test_longest_allowed_password_hashes() -> None:
    pw = "x" * MAX_PASSWORD_BYTES
    assert verify_password(pw, hash_password(pw, CHEAP))


def test_verify_too_long_or_empty_is_false_not_an_error() -> None:
    phc = hash_password("pw", CHEAP)
    assert verify_password("", phc) is False
    assert verify_password("x" * 100_000, phc) is False
    assert verify_password(None, phc) is False  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "phc",
    [
        "",
        "not a hash",
        "$2b$12$abcdefghijklmnopqrstuuJ0kQ4bXh7l2e6Y6m3cS7nQdJ2WkK1e",  # bcrypt
        "$argon2i$v=19$m=64,t=1,p=1$c29tZXNhbHQ$aGFzaGhhc2hoYXNo",
        "$argon2id$v=16$m=64,t=1,p=1$c29tZXNhbHQ$aGFzaGhhc2hoYXNo",
        "$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHQ",
        "$argon2id$v=19$m=64,t=0,p=1$c29tZXNhbHQ$aGFzaGhhc2hoYXNo",
        "$argon2id$v=19$m=9999999999,t=1,p=1$c29tZXNhbHQ$aGFzaGhhc2hoYXNo",  # would exhaust memory
        "$argon2id$v=19$m=64,t=9999999999,p=1$c29tZXNhbHQ$aGFzaGhhc2hoYXNo",  # would run for hours
        None,
    ],
)
def test_malformed_hash_is_false_and_parse_says_why(phc: str) -> None:
    assert verify_password("pw", phc) is False
    with pytest.raises(MalformedHashError):
        parse_phc(phc)
    assert needs_rehash(phc)


def test_truncated_or_altered_hash_is_false() -> None:
    phc = hash_password("pw", CHEAP)
    assert not verify_password("pw", phc[:-4])
    flipped = phc[:-1] + ("A" if phc[-1] != "A" else "B")
    assert not verify_password("pw", flipped)


def test_needs_rehash_when_params_rise() -> None:
    phc = hash_password("pw", CHEAP)
    assert not needs_rehash(phc, CHEAP)
    assert needs_rehash(phc, Argon2Params(memory_kib=128, iterations=1, lanes=1))
    assert needs_rehash(phc, Argon2Params(memory_kib=64, iterations=2, lanes=1))
    assert needs_rehash(phc, Argon2Params(memory_kib=64, iterations=1, lanes=2))


def test_stronger_hash_is_not_downgraded() -> None:
    phc = hash_password("pw", Argon2Params(memory_kib=128, iterations=2, lanes=1))
    assert not needs_rehash(phc, CHEAP)


def test_a_rehash_raises_the_weaker_cost_and_keeps_the_stronger_one() -> None:
    # More memory than the target but one pass fewer: the rehash adds the pass, keeps the memory.
    phc = hash_password("pw", Argon2Params(memory_kib=256, iterations=1, lanes=1))
    target = Argon2Params(memory_kib=64, iterations=2, lanes=1)
    assert needs_rehash(phc, target)
    assert rehash_params(phc, target) == Argon2Params(memory_kib=256, iterations=2, lanes=1)
    assert rehash_params(phc, Argon2Params(memory_kib=64, iterations=1, lanes=1)) is None
    assert rehash_params("not a hash", target) == target


def test_old_owasp_minimum_hash_needs_rehash_under_defaults() -> None:
    phc = hash_password("pw", MINIMUM_PARAMS)
    assert verify_password("pw", phc)  # still verifies...
    assert needs_rehash(phc)  # ...and is upgraded at the next login


_REAL_ARGON2ID = passwords.Argon2id


class _SpyArgon2id:
    """Stands in for Argon2id, recording which hashes were verified, then doing the real work."""

    verified: ClassVar[list[str]] = []

    def __init__(self, **kwargs: Any) -> None:
        self._real = _REAL_ARGON2ID(**kwargs)

    def derive_phc_encoded(self, key_material: bytes) -> str:
        return self._real.derive_phc_encoded(key_material)

    @classmethod
    def verify_phc_encoded(cls, key_material: bytes, phc: str) -> None:
        cls.verified.append(phc)
        _REAL_ARGON2ID.verify_phc_encoded(key_material, phc)


def test_dummy_verify_runs_a_real_argon2_verify_with_the_current_params(monkeypatch: pytest.MonkeyPatch) -> None:
    # Timing itself is left to bench/: here, check the dummy path does the same work.
    _SpyArgon2id.verified = []
    monkeypatch.setattr(passwords, "Argon2id", _SpyArgon2id)
    passwords._dummy_hash.cache_clear()
    try:
        assert verify_against_dummy("anything", CHEAP) is False
        assert verify_against_dummy("anything else", CHEAP) is False
    finally:
        passwords._dummy_hash.cache_clear()
    assert len(_SpyArgon2id.verified) == 2
    # Same dummy both times (computed once), with the params asked for.
    assert _SpyArgon2id.verified[0] == _SpyArgon2id.verified[1]
    assert parse_phc(_SpyArgon2id.verified[0]) == CHEAP


def test_dummy_verify_with_defaults_is_false() -> None:
    assert verify_against_dummy("correct horse battery staple") is False
    assert passwords._dummy_hash(DEFAULT_PARAMS) is passwords._dummy_hash(DEFAULT_PARAMS)
    assert parse_phc(passwords._dummy_hash(DEFAULT_PARAMS)) == DEFAULT_PARAMS


def test_params_out_of_range_rejected() -> None:
    with pytest.raises(ValueError):
        Argon2Params(memory_kib=4, iterations=1, lanes=1)
    with pytest.raises(ValueError):
        Argon2Params(memory_kib=64, iterations=0, lanes=1)
    with pytest.raises(ValueError):
        Argon2Params(memory_kib=MAX_MEMORY_KIB + 1, iterations=1, lanes=1)
    with pytest.raises(ValueError):
        Argon2Params(memory_kib=64, iterations=MAX_ITERATIONS + 1, lanes=1)
