"""PII keyring: real Fernet keys, rotation, kids, canary, and errors that never leak keys."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
from cryptography.fernet import Fernet

from otplogin.keyring import (
    CANARY_PLAINTEXT,
    KeyMismatch,
    Keyring,
    KeyringError,
    UndecryptableError,
    generate_key,
    key_id,
    stored_kid,
)

OLD = generate_key()
NEW = generate_key()


def secret(*keys: str) -> str:
    return json.dumps({"keys": list(keys)})


def assert_no_key_material(text: str, *keys: str) -> None:
    for key in keys:
        # Neither the key nor any sizeable piece of it (nor of its raw bytes).
        for i in range(0, len(key) - 8):
            assert key[i : i + 8] not in text
        assert base64.urlsafe_b64decode(key).hex()[:16] not in text


def test_key_id_is_sha256_prefix_of_raw_key() -> None:
    raw = base64.urlsafe_b64decode(OLD)
    assert key_id(OLD) == hashlib.sha256(raw).hexdigest()[:8]
    assert key_id(OLD) != key_id(NEW)


def test_generate_key_is_a_fernet_key() -> None:
    Fernet(generate_key())


def test_encrypt_decrypt_round_trip_with_kid_prefix() -> None:
    ring = Keyring.from_secret(secret(OLD))
    stored = ring.encrypt("+243812345678")
    assert stored.startswith(f"{key_id(OLD)}:")
    assert stored_kid(stored) == ring.primary_kid == key_id(OLD)
    assert ring.decrypt(stored) == "+243812345678"
    assert (
        ring.decrypt(ring.encrypt("Rue 12, Gombe, Kinshasa — côté fleuve")) == "Rue 12, Gombe, Kinshasa — côté fleuve"
    )


def test_clock_is_injectable() -> None:
    ring = Keyring.from_secret(secret(OLD), clock=lambda: 1_000_000)
    token = ring.encrypt("x").partition(":")[2]
    assert Fernet(OLD).extract_timestamp(token.encode()) == 1_000_000


def test_rotation_old_ciphertext_decrypts_after_new_key_added_first() -> None:
    old_ring = Keyring.from_secret(secret(OLD))
    stored = old_ring.encrypt("a@example.com")

    ring = Keyring.from_secret(secret(NEW, OLD))
    assert ring.primary_kid == key_id(NEW)
    assert ring.kids == (key_id(NEW), key_id(OLD))
    assert ring.decrypt(stored) == "a@example.com"
    assert ring.needs_reencrypt(stored)

    rotated = ring.rotate(stored)
    assert stored_kid(rotated) == key_id(NEW)
    assert not ring.needs_reencrypt(rotated)
    assert ring.decrypt(rotated) == "a@example.com"

    # Once every value is rotated, the old key can go.
    assert Keyring.from_secret(secret(NEW)).decrypt(rotated) == "a@example.com"


def test_unknown_kid_names_the_kid() -> None:
    stored = Keyring.from_secret(secret(OLD)).encrypt("x")
    ring = Keyring.from_secret(secret(NEW))
    with pytest.raises(UndecryptableError) as info:
        ring.decrypt(stored)
    assert info.value.kid == key_id(OLD)
    assert info.value.kid_present is False
    assert key_id(OLD) in str(info.value)
    assert "not in the keyring" in str(info.value)
    assert_no_key_material(str(info.value), OLD, NEW)


def test_known_kid_but_altered_token_says_kid_present() -> None:
    ring = Keyring.from_secret(secret(OLD))
    stored = ring.encrypt("x")
    kid, _, token = stored.partition(":")
    altered = f"{kid}:{token[:-6]}AAAAAA"
    with pytest.raises(UndecryptableError) as info:
        ring.decrypt(altered)
    assert info.value.kid == kid
    assert info.value.kid_present is True


def test_kid_prefix_from_another_key_does_not_decrypt() -> None:
    # A value whose prefix was swapped is caught, not silently decrypted.
    ring = Keyring.from_secret(secret(NEW, OLD))
    token = Keyring.from_secret(secret(OLD)).encrypt("x").partition(":")[2]
    with pytest.raises(UndecryptableError) as info:
        ring.decrypt(f"{key_id(NEW)}:{token}")
    assert info.value.kid == key_id(NEW) and info.value.kid_present


def test_legacy_value_without_prefix_tries_every_key() -> None:
    legacy = Fernet(OLD).encrypt(b"legacy@example.com").decode()
    ring = Keyring.from_secret(secret(NEW, OLD))
    assert stored_kid(legacy) is None
    assert ring.decrypt(legacy) == "legacy@example.com"
    assert ring.needs_reencrypt(legacy)
    assert stored_kid(ring.rotate(legacy)) == key_id(NEW)

    with pytest.raises(UndecryptableError) as info:
        Keyring.from_secret(secret(NEW)).decrypt(legacy)
    assert info.value.kid is None and info.value.kid_present is False


@pytest.mark.parametrize("stored", ["", "garbage", "zz:gAAAAA", "ABCDEF12:gAAAAA", None])
def test_malformed_values_raise_undecryptable(stored: str) -> None:
    with pytest.raises(UndecryptableError):
        Keyring.from_secret(secret(OLD)).decrypt(stored)


def test_kid_of_finds_the_key_a_legacy_value_needs() -> None:
    ring = Keyring([NEW, OLD])
    legacy = Fernet(OLD).encrypt(b"+243812345678").decode()
    assert ring.kid_of(legacy) == key_id(OLD)  # tried key by key, not just "some key"
    assert ring.kid_of(Keyring([OLD]).encrypt("x")) == key_id(OLD)
    assert ring.kid_of("0123abcd:whatever") == "0123abcd"  # a recorded kid is taken as is
    assert ring.kid_of(Fernet(generate_key()).encrypt(b"x").decode()) is None  # no key decrypts it
    assert ring.kid_of("NOTAKID!:x") is None and ring.kid_of(42) is None


def test_canary_passes_with_the_right_ring_and_through_rotation() -> None:
    canary = Keyring.from_secret(secret(OLD)).make_canary()
    Keyring.from_secret(secret(OLD)).check_canary(canary)
    Keyring.from_secret(secret(NEW, OLD)).check_canary(canary)
    assert Keyring.from_secret(secret(NEW, OLD)).decrypt(canary) == CANARY_PLAINTEXT


def test_canary_mismatch_detected() -> None:
    canary = Keyring.from_secret(secret(OLD)).make_canary()
    with pytest.raises(KeyMismatch) as info:
        Keyring.from_secret(secret(NEW)).check_canary(canary)
    assert info.value.kid == key_id(OLD)
    assert not info.value.kid_present
    assert isinstance(info.value, UndecryptableError)
    assert_no_key_material(str(info.value), OLD, NEW)


def test_canary_with_wrong_plaintext_detected() -> None:
    ring = Keyring.from_secret(secret(OLD))
    with pytest.raises(KeyMismatch):
        ring.check_canary(ring.encrypt("not the canary"))


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("", "not valid JSON"),
        ('{"keys": ["' + OLD + '"', "not valid JSON"),
        ("[]", "expected"),
        ('{"keys": "' + OLD + '"}', "expected"),
        ('{"keys": []}', "no keys"),
        ('{"keys": [42]}', "key #1 is not a string"),
        ('{"keys": ["' + OLD + '", "' + OLD[:-2] + '"]}', "key #2 is not a valid Fernet key"),
        ('{"keys": ["' + OLD + '", "' + OLD + '"]}', "key #2 duplicates"),
        ('{"keys": ["' + OLD.replace("-", "!").replace("_", "!")[:-3] + '!!="]}', "key #1 is not a valid Fernet key"),
    ],
)
def test_bad_secret_raises_keyring_error_without_key_material(text: str, fragment: str) -> None:
    with pytest.raises(KeyringError) as info:
        Keyring.from_secret(text)
    message = str(info.value)
    assert fragment in message
    assert_no_key_material(message, OLD)
    # Nothing chained either: a JSON error would carry the whole document.
    assert info.value.__cause__ is None
    assert info.value.__context__ is None or info.value.__suppress_context__


def test_repr_shows_kids_only() -> None:
    ring = Keyring.from_secret(secret(NEW, OLD))
    assert repr(ring) == f"Keyring(kids={[key_id(NEW), key_id(OLD)]!r})"
    assert_no_key_material(repr(ring), OLD, NEW)


def _altered(ring: Keyring) -> str:
    kid, _, token = ring.encrypt("x").partition(":")
    return f"{kid}:{token[:-6]}AAAAAA"


@pytest.mark.parametrize(
    "make, kid_present, detail",
    [
        (lambda ring: None, False, "value is not a string"),
        (lambda ring: "NOTAKID!:gAAAAA", False, "value has a malformed key id prefix"),
        (lambda ring: Fernet(NEW).encrypt(b"x").decode(), False, "value has no key id and no key in the ring decrypts it"),
        (_altered, True, "key {kid} is in the keyring but rejects the value (corrupted or altered)"),
    ],
)
def test_each_undecryptable_value_says_which_case_it_is(make, kid_present: bool, detail: str) -> None:
    # An operator acts on kid / kid_present / detail: "restore the key" and "the data is damaged" differ.
    ring = Keyring.from_secret(secret(OLD))
    stored = make(ring)
    with pytest.raises(UndecryptableError) as info:
        ring.decrypt(stored)
    assert info.value.kid_present is kid_present
    assert info.value.kid == (key_id(OLD) if kid_present else None)
    assert info.value.detail == detail.format(kid=key_id(OLD))
    assert str(info.value) == f"cannot decrypt: {info.value.detail}"


def test_text_slipped_in_after_the_kid_is_caught_not_skipped() -> None:
    # "<kid>:<junk>:<token>": the kid is the text before the FIRST colon and the token all after it,
    # so the inserted text makes the value fail as altered instead of being silently dropped.
    ring = Keyring.from_secret(secret(OLD))
    kid, _, token = ring.encrypt("x").partition(":")
    tampered = f"{kid}:junk:{token}"
    assert stored_kid(tampered) == kid
    with pytest.raises(UndecryptableError) as info:
        ring.decrypt(tampered)
    assert info.value.kid == kid and info.value.kid_present is True


def test_canary_errors_keep_the_kid_and_say_canary() -> None:
    ring = Keyring.from_secret(secret(OLD))
    with pytest.raises(KeyMismatch) as info:
        ring.check_canary(ring.encrypt("not the canary"))
    # Decrypted fine, so the key is present: the canary itself is wrong.
    assert info.value.kid == key_id(OLD) and info.value.kid_present is True
    assert info.value.detail == "canary decrypts to an unexpected value"

    with pytest.raises(KeyMismatch) as info:
        ring.check_canary(_altered(ring))
    assert info.value.kid == key_id(OLD) and info.value.kid_present is True
    assert info.value.detail.startswith("canary: key ") and "corrupted or altered" in info.value.detail


def test_bad_json_names_the_position_but_not_the_document() -> None:
    second_line = '  "' + OLD + '",'
    with pytest.raises(KeyringError) as info:
        Keyring.from_secret('{"keys": [\n' + second_line)  # ends where a value should start
    assert str(info.value) == f"pii-keyring: not valid JSON (line 2, column {len(second_line) + 1})"
    with pytest.raises(KeyringError) as info:
        Keyring.from_secret(42)  # type: ignore[arg-type]  # not text at all: no position to give
    assert str(info.value) == "pii-keyring: not valid JSON"
