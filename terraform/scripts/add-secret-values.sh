#!/usr/bin/env bash
# Add the values of the otplogin secrets to Secret Manager, out of band:
# Terraform creates the secrets, never their values (so no value is ever in
# Terraform state, a plan, a CI log or the repository).
#
# Usage:
#   scripts/add-secret-values.sh --project PROJECT_ID            # fill every empty secret
#   scripts/add-secret-values.sh --project PROJECT_ID --secret ID [--force]
#
# For each secret that has no enabled version yet:
#   otp-pepper          generated: 32 random bytes, URL-safe base64
#   jwt-signing-keys    generated: one Ed25519 key (PKCS8 PEM) with a key id,
#                       as {"keys": [{"kid": ..., "private_key_pem": ...}]}
#   pii-keyring         generated: one Fernet key, as {"keys": ["..."]}
#   twilio-account-sid  read (AC + 32 hex characters)
#   twilio-auth-token   read, hidden
#   twilio-sender       read (E.164 number, e.g. +15005550006)
#   admin-password      read, hidden, twice
# "Read" means: from standard input when it is not a terminal (one value, with
# --secret), else from a prompt. Values reach gcloud on its standard input
# (--data-file=-), never as a command-line argument or a temporary file.
#
# A secret that already has an enabled version is left alone, unless --force
# is given for a text secret (e.g. a new Twilio token). The two keyrings are
# never replaced here: a new version holding only a new key would make every
# earlier ciphertext or token unreadable. Rotate them with the operator CLI
# (otplogin-admin), which adds a key in front of the existing ones.
#
# Keys are generated with the Python `cryptography` package (the library the
# functions use), not with openssl: Ed25519 support differs between OpenSSL and
# LibreSSL builds (macOS ships LibreSSL), and a generator that fails must never
# store a half-made value. A value is generated in full first, then stored.
#
# Needs: gcloud (authenticated, with roles/secretmanager.secretVersionAdder or
# more on the project), and a Python with `cryptography`: $PYTHON, else the
# repository's .venv (`make install`), else python3.
set -euo pipefail

SECRETS=(otp-pepper jwt-signing-keys pii-keyring twilio-account-sid twilio-auth-token twilio-sender admin-password)
GCLOUD="${GCLOUD:-gcloud}"
REPO_VENV_PYTHON="$(cd "$(dirname "$0")/../.." && pwd)/.venv/bin/python"
if [ -z "${PYTHON:-}" ]; then
  if [ -x "$REPO_VENV_PYTHON" ]; then PYTHON="$REPO_VENV_PYTHON"; else PYTHON=python3; fi
fi
project=""
only=""
force=0

die() { echo "add-secret-values: $*" >&2; exit 1; }
usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }

while [ $# -gt 0 ]; do
  case "$1" in
    --project) project="${2:-}"; shift 2 ;;
    --project=*) project="${1#*=}"; shift ;;
    --secret) only="${2:-}"; shift 2 ;;
    --secret=*) only="${1#*=}"; shift ;;
    --force) force=1; shift ;;
    -h|--help) usage 0 ;;
    *) echo "add-secret-values: unknown argument $1" >&2; usage 2 ;;
  esac
done
[ -n "$project" ] || project="${GOOGLE_CLOUD_PROJECT:-}"
[ -n "$project" ] || die "--project PROJECT_ID is required"
if [ -n "$only" ]; then
  known=0
  for s in "${SECRETS[@]}"; do [ "$s" = "$only" ] && known=1; done
  [ "$known" = 1 ] || die "unknown secret '$only' (known: ${SECRETS[*]})"
fi
command -v "$GCLOUD" >/dev/null || die "gcloud not found"

has_version() {
  [ -n "$("$GCLOUD" secrets versions list "$1" --project="$project" --filter="state:ENABLED" --limit=1 --format="value(name)")" ]
}

add_version() {  # value on stdin
  "$GCLOUD" secrets versions add "$1" --project="$project" --data-file=- >/dev/null
  echo "added a version to $1" >&2
}

read_value() {  # $1 prompt, $2 hidden (1/0); prints the value
  local value="" again=""
  if [ ! -t 0 ]; then
    IFS= read -r value || true
  elif [ "$2" = 1 ]; then
    IFS= read -r -s -p "$1: " value; echo >&2
    IFS= read -r -s -p "$1 (again): " again; echo >&2
    [ "$value" = "$again" ] || die "the two entries differ"
  else
    IFS= read -r -p "$1: " value
  fi
  [ -n "$value" ] || die "empty value for $1"
  printf '%s' "$value"
}

need_cryptography() {
  "$PYTHON" -c 'import cryptography' 2>/dev/null \
    || die "generating keys needs a Python with the cryptography package ($PYTHON has none): run \`make install\` (the repository's .venv), or set PYTHON=/path/to/python with \`pip install cryptography\`"
}

# Each generator prints the whole value on stdout (never on the command line).
gen_pepper() {
  "$PYTHON" -c 'import secrets, sys; sys.stdout.write(secrets.token_urlsafe(32))'
}

gen_jwt_keys() {  # one Ed25519 key, PKCS8 PEM, kid ed25519-<UTC date>-<8 hex>
  "$PYTHON" - <<'PY'
import json, secrets, sys, time
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

pem = Ed25519PrivateKey.generate().private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
).decode("ascii")
kid = f"ed25519-{time.strftime('%Y%m%d', time.gmtime())}-{secrets.token_hex(4)}"
sys.stdout.write(json.dumps({"keys": [{"kid": kid, "private_key_pem": pem}]}))
PY
}

gen_pii_keyring() {  # one Fernet key
  "$PYTHON" -c 'import json, sys; from cryptography.fernet import Fernet; sys.stdout.write(json.dumps({"keys": [Fernet.generate_key().decode("ascii")]}))'
}

# Generate in full, then store: a generator that fails stores nothing.
add_generated() {  # $1 secret, $2 generator
  local value
  need_cryptography
  value="$("$2")" || die "could not generate a value for $1: nothing was stored"
  [ -n "$value" ] || die "the generator for $1 produced nothing: nothing was stored"
  printf '%s' "$value" | add_version "$1"
}

fill() {
  local secret="$1" value
  if has_version "$secret"; then
    case "$secret" in
      pii-keyring|jwt-signing-keys)
        echo "$secret already has a value: left alone (rotate it with otplogin-admin, never by replacement)" >&2
        return 0 ;;
    esac
    if [ "$force" != 1 ]; then
      echo "$secret already has a value: left alone (--force to add a new version)" >&2
      return 0
    fi
  fi
  case "$secret" in
    otp-pepper) add_generated "$secret" gen_pepper ;;
    jwt-signing-keys) add_generated "$secret" gen_jwt_keys ;;
    pii-keyring) add_generated "$secret" gen_pii_keyring ;;
    twilio-account-sid)
      value="$(read_value "Twilio account SID" 0)"
      [[ "$value" =~ ^AC[0-9a-fA-F]{32}$ ]] || die "a Twilio account SID is AC followed by 32 hex characters"
      printf '%s' "$value" | add_version "$secret" ;;
    twilio-auth-token)
      value="$(read_value "Twilio auth token" 1)"
      printf '%s' "$value" | add_version "$secret" ;;
    twilio-sender)
      value="$(read_value "Twilio sender number (E.164)" 0)"
      [[ "$value" =~ ^\+[1-9][0-9]{6,14}$ ]] || die "the sender must be an E.164 number such as +15005550006"
      printf '%s' "$value" | add_version "$secret" ;;
    admin-password)
      value="$(read_value "Admin password" 1)"
      [ "${#value}" -ge 12 ] || die "the admin password must have at least 12 characters"
      printf '%s' "$value" | add_version "$secret" ;;
  esac
}

if [ -n "$only" ]; then
  fill "$only"
else
  [ -t 0 ] || die "filling every secret needs a terminal for the prompts; use --secret ID to pipe one value"
  for secret in "${SECRETS[@]}"; do fill "$secret"; done
fi
