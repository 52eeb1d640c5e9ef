"""terraform/scripts/add-secret-values.sh against a stand-in gcloud."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from tests.terraform import support as tf

SCRIPT = tf.TERRAFORM / "scripts" / "add-secret-values.sh"

# Records each call; keeps versions as files <state>/<secret>.<n>.
FAKE_GCLOUD = r"""#!/usr/bin/env bash
set -eu
printf '%s\n' "$*" >> "$STATE/calls.log"
if [ "$1 $2 $3" = "secrets versions list" ]; then
  ls "$STATE/$4".* >/dev/null 2>&1 && echo "projects/p/secrets/$4/versions/1"
  exit 0
fi
if [ "$1 $2 $3" = "secrets versions add" ]; then
  n=$(ls "$STATE/$4".* 2>/dev/null | wc -l)
  cat > "$STATE/$4.$((n + 1))"
  exit 0
fi
echo "unexpected gcloud call: $*" >&2
exit 3
"""


@pytest.fixture
def state(tmp_path):
    gcloud = tmp_path / "gcloud"
    gcloud.write_text(FAKE_GCLOUD)
    gcloud.chmod(0o755)
    (tmp_path / "state").mkdir()
    return tmp_path


def run(state: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    env = {"PATH": os.environ["PATH"], "GCLOUD": str(state / "gcloud"), "STATE": str(state / "state")}
    return subprocess.run(
        ["bash", str(SCRIPT), "--project", "demo-project", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def versions(state: Path, secret: str) -> list[bytes]:
    return [p.read_bytes() for p in sorted((state / "state").glob(f"{secret}.*"))]


def test_generates_a_pepper_of_32_random_bytes(state):
    done = run(state, "--secret", "otp-pepper")
    assert done.returncode == 0, done.stderr
    [value] = versions(state, "otp-pepper")
    raw = base64.urlsafe_b64decode(value + b"=" * (-len(value) % 4))
    assert len(raw) == 32
    assert value.decode() not in (state / "state" / "calls.log").read_text()


def test_generates_an_ed25519_signing_keyring(state):
    assert run(state, "--secret", "jwt-signing-keys").returncode == 0
    [value] = versions(state, "jwt-signing-keys")
    keys = json.loads(value)["keys"]
    assert len(keys) == 1 and keys[0]["kid"].startswith("ed25519-")
    key = load_pem_private_key(keys[0]["private_key_pem"].encode(), password=None)
    assert isinstance(key, Ed25519PrivateKey)


def test_generates_a_fernet_pii_keyring(state):
    assert run(state, "--secret", "pii-keyring").returncode == 0
    [value] = versions(state, "pii-keyring")
    keys = json.loads(value)["keys"]
    assert len(keys) == 1
    assert Fernet(keys[0]).decrypt(Fernet(keys[0]).encrypt(b"x")) == b"x"


def test_reads_a_value_from_stdin_and_never_passes_it_as_an_argument(state):
    token = "f" * 32
    done = run(state, "--secret", "twilio-auth-token", stdin=token + "\n")
    assert done.returncode == 0, done.stderr
    assert versions(state, "twilio-auth-token") == [token.encode()]
    calls = (state / "state" / "calls.log").read_text()
    assert token not in calls and "--data-file=-" in calls


def test_rejects_a_malformed_sender_and_stores_nothing(state):
    done = run(state, "--secret", "twilio-sender", stdin="0812345678\n")
    assert done.returncode != 0 and "E.164" in done.stderr
    assert versions(state, "twilio-sender") == []
    assert run(state, "--secret", "twilio-sender", stdin="+15005550006\n").returncode == 0
    assert versions(state, "twilio-sender") == [b"+15005550006"]


def test_never_replaces_a_keyring_even_with_force(state):
    assert run(state, "--secret", "pii-keyring").returncode == 0
    first = versions(state, "pii-keyring")
    done = run(state, "--secret", "pii-keyring", "--force")
    assert done.returncode == 0 and "rotate" in done.stderr
    assert versions(state, "pii-keyring") == first


def test_text_secrets_are_replaced_only_with_force(state):
    assert run(state, "--secret", "twilio-auth-token", stdin="a" * 32).returncode == 0
    assert run(state, "--secret", "twilio-auth-token", stdin="b" * 32).returncode == 0
    assert versions(state, "twilio-auth-token") == [b"a" * 32]
    assert run(state, "--secret", "twilio-auth-token", "--force", stdin="b" * 32).returncode == 0
    assert versions(state, "twilio-auth-token") == [b"a" * 32, b"b" * 32]


def test_rejects_an_unknown_secret(state):
    done = run(state, "--secret", "jwt-key")
    assert done.returncode != 0 and "unknown secret" in done.stderr


def test_script_knows_exactly_the_terraform_secrets():
    text = SCRIPT.read_text()
    line = next(row for row in text.splitlines() if row.startswith("SECRETS=("))
    listed = set(line[len("SECRETS=(") : -1].split())
    local = tf.locals_()
    from tests.terraform.test_structure import literal_set

    assert listed == literal_set(local["other_secrets"]) | {local["pii_keyring_secret"]}


# --- key generation does not depend on an OpenSSL build -------------------------------

BROKEN_OPENSSL = """#!/usr/bin/env bash
echo "openssl: called with $*" >> "$STATE/openssl.log"
echo "Algorithm ed25519 not found" >&2
exit 1
"""


def with_broken_openssl(state: Path) -> dict[str, str]:
    """An `openssl` first on PATH that fails as LibreSSL / old OpenSSL builds do for Ed25519."""
    bin_dir = state / "bin"
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / "openssl"
    fake.write_text(BROKEN_OPENSSL)
    fake.chmod(0o755)
    return {"PATH": f"{bin_dir}:{os.environ['PATH']}"}


def run_env(state: Path, extra: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    env = {"PATH": os.environ["PATH"], "GCLOUD": str(state / "gcloud"), "STATE": str(state / "state"), **extra}
    return subprocess.run(
        ["bash", str(SCRIPT), "--project", "demo-project", *args],
        input=stdin, capture_output=True, text=True, env=env, timeout=60,
    )


@pytest.mark.parametrize("secret", ["jwt-signing-keys", "pii-keyring", "otp-pepper"])
def test_keys_are_generated_without_openssl(state, secret):
    done = run_env(state, with_broken_openssl(state), "--secret", secret)
    assert done.returncode == 0, done.stderr
    assert not (state / "state" / "openssl.log").exists(), "the script still calls openssl"
    [value] = versions(state, secret)
    if secret == "jwt-signing-keys":
        [key] = json.loads(value)["keys"]
        assert re.fullmatch(r"ed25519-\d{8}-[0-9a-f]{8}", key["kid"]), key["kid"]
        assert isinstance(load_pem_private_key(key["private_key_pem"].encode(), password=None), Ed25519PrivateKey)
    elif secret == "pii-keyring":
        [key] = json.loads(value)["keys"]
        assert len(base64.urlsafe_b64decode(key)) == 32
    else:
        assert len(base64.urlsafe_b64decode(value + b"=" * (-len(value) % 4))) == 32


def test_two_generated_signing_keys_differ(state):
    """Generated, never a fixed value: two projects never share a key."""
    other = state / "other"
    other.mkdir()
    assert run(state, "--secret", "jwt-signing-keys").returncode == 0
    assert run_env(state, {"STATE": str(other)}, "--secret", "jwt-signing-keys").returncode == 0
    first = json.loads(versions(state, "jwt-signing-keys")[0])["keys"][0]
    second = json.loads((other / "jwt-signing-keys.1").read_bytes())["keys"][0]
    assert first["private_key_pem"] != second["private_key_pem"] and first["kid"] != second["kid"]


@pytest.mark.parametrize("secret", ["jwt-signing-keys", "pii-keyring", "otp-pepper"])
def test_a_python_without_cryptography_is_refused_before_anything_is_stored(state, tmp_path, secret):
    """No silent fallback to a weaker generator, and a failed generation stores nothing
    (the old pipe into gcloud stored a broken jwt-signing-keys version)."""
    bare = tmp_path / "bare-python"
    bare.write_text(f"#!/usr/bin/env bash\nexec {shutil.which('python3')} -S -I \"$@\"\n")
    bare.chmod(0o755)
    done = run_env(state, {"PYTHON": str(bare)}, "--secret", secret)
    assert done.returncode != 0
    assert "cryptography" in done.stderr and "PYTHON=" in done.stderr
    assert versions(state, secret) == []
    assert "secrets versions add" not in (state / "state" / "calls.log").read_text()
