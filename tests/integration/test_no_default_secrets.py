"""No secret has a built-in value: with Secret Manager empty, nothing resolves and nothing serves.

The seed shipped defaults for SECRET_KEY, ENCRYPTION_KEY and ADMIN_PASSWORD;
these tests fail if any secret id resolves without Secret Manager holding it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from otplogin import runtime
from otplogin.errors import SecretUnavailable
from tests.support.apps import app_client
from tests.support.secret_manager import LocalSecretManager
from tools.dev_secrets import SECRET_IDS

REPO = Path(__file__).resolve().parents[2]
TEMPTING_ENV = {
    name: "value-from-the-environment"
    for name in ("SECRET_KEY", "ENCRYPTION_KEY", "ADMIN_PASSWORD", "OTP_PEPPER", "JWT_SIGNING_KEYS", "PII_KEYRING",
                 "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_SENDER")
}


@pytest.fixture
def empty_secret_manager(stack, monkeypatch):
    with LocalSecretManager("demo-otp") as empty:
        monkeypatch.setenv("SECRET_MANAGER_EMULATOR_HOST", empty.host)
        for name, value in TEMPTING_ENV.items():
            monkeypatch.setenv(name, value)
        runtime.reset()
        yield empty
        runtime.reset()


def test_every_secret_id_is_known_to_the_runtime():
    runtime_ids = {runtime.OTP_PEPPER, runtime.JWT_SIGNING_KEYS, runtime.PII_KEYRING, runtime.ADMIN_PASSWORD,
                   *runtime.TWILIO_SECRETS}
    assert runtime_ids == set(SECRET_IDS)


@pytest.mark.parametrize("secret_id", sorted(SECRET_IDS))
def test_no_secret_resolves_without_secret_manager(empty_secret_manager, secret_id):
    with pytest.raises(SecretUnavailable) as err:
        runtime.secret(secret_id)
    assert err.value.secret_id == secret_id and err.value.reason == "not found"


@pytest.mark.parametrize(
    "function,body",
    [
        ("send_otp", {"phone": "+243812345678"}),
        ("verify_otp", {"phone": "+243812345678", "code": "123456"}),
        ("login", {"email": "ana@example.com", "password": "whatever"}),
    ],
)
def test_functions_refuse_to_serve_without_their_secrets(empty_secret_manager, function, body):
    client = app_client(function)
    r = client.post("/", data=json.dumps(body), content_type="application/json")
    assert r.status_code == 503 and r.get_json()["error"]["code"] == "unavailable"
    health = client.get("/healthz")
    assert health.status_code == 503
    assert all(reason == "not found" for reason in health.get_json()["checks"]["secrets"].values())


def test_twilio_secrets_are_required_for_twilio_delivery(empty_secret_manager, monkeypatch):
    monkeypatch.setenv("SMS_PROVIDER", "twilio")
    runtime.reset()
    health = app_client("send_otp").get("/healthz").get_json()
    assert set(health["checks"]["secrets"]) == {"otp-pepper", "twilio-account-sid", "twilio-auth-token", "twilio-sender"}


SOURCE = [p for d in ("shared/otplogin", "functions") for p in (REPO / d).rglob("*.py")]
ENV_READ = re.compile(r"""(?:environ(?:\.get)?\s*[\[(]|getenv\s*\()\s*["']([A-Z0-9_]+)["']""")


def test_code_reads_no_secret_from_the_environment():
    allowed = {"SECRET_MANAGER_EMULATOR_HOST"}
    offenders = []
    for path in SOURCE:
        for name in ENV_READ.findall(path.read_text()):
            if re.search(r"SECRET|KEY|PASSWORD|TOKEN|PEPPER|SID", name) and name not in allowed:
                offenders.append(f"{path.relative_to(REPO)}: {name}")
    assert SOURCE and offenders == []


def test_no_key_material_in_the_source():
    fernet_key = re.compile(r"['\"][A-Za-z0-9_-]{43}=['\"]")
    pem = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")
    found = [str(p) for p in SOURCE if fernet_key.search(p.read_text()) or pem.search(p.read_text())]
    assert found == []
