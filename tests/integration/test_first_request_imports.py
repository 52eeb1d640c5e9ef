"""A new instance's first requests import nothing: main.py loaded it all before the fork.

functions-framework loads main.py in gunicorn's master process, then forks the worker
that serves. A library first imported by a request is imported in that forked worker,
where it costs far more than before the fork (verify_otp's worker spent 180 ms of
CPU on its first request with lazy imports, 30 ms without; bench/README.md). Each function is
loaded here in a fresh interpreter, as functions-framework loads it; then its first
answered request and its health check must not import a module of the libraries below.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from otplogin import passwords, runtime, store, users
from tests.support.apps import REPO, outbox_codes

# Top-level packages whose import is worth moving before the fork (the standard library's
# small lazy imports are not).
WATCHED = ("google", "grpc", "proto", "twilio", "jwt", "phonenumbers", "cryptography", "otplogin", "argon2", "msgspec")
# Loaded by the first use of what they serve, and small: a country's numbering plan (~1 ms), the
# interceptor module of the first gRPC channel.
LOADED_ON_DEMAND = ("phonenumbers.data.region_", "grpc._interceptor")
PHONE = "+243812345678"
PASSWORD = "first request password"

CHILD = r"""
import json, sys
import functions_framework

name, source, body = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
client = functions_framework.create_app(target=name, source=source).test_client()
loaded = set(sys.modules)
answer = client.post("/", json=body, headers={"X-Forwarded-For": "203.0.113.7"})
health = client.get("/healthz")
new = sorted(m for m in set(sys.modules) - loaded if m.partition(".")[0] in WATCHED)
print(json.dumps({"status": answer.status_code, "body": answer.get_data(as_text=True)[:300],
                  "health": health.status_code, "imported": new}))
""".replace("WATCHED", repr(WATCHED))


def _first_request(name: str, body: dict, env: dict[str, str], source: Path | None = None) -> dict:
    source = source or REPO / "functions" / name / "main.py"
    out = subprocess.run(  # noqa: S603 (our interpreter, our function)
        [sys.executable, "-c", CHILD, name, str(source), json.dumps(body)],
        env={**os.environ, **env}, capture_output=True, text=True, timeout=120, check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def _bodies() -> dict[str, tuple[dict, int]]:
    """Each function's usual first request, answered with success."""
    runtime.otp_service().send(PHONE, "sms", "en", "203.0.113.1")
    code = outbox_codes(store.client(), PHONE)[-1]
    keyring = runtime.pii_keyring()
    assert keyring is not None
    users.write_canary(keyring)
    users.create(code="FRS0001REQ", email="first@example.com", password_hash=passwords.hash_password(PASSWORD),
                 role="user", keyring=keyring, pii={"phone": PHONE, "address": None, "whatsapp": None})
    return {
        "send_otp": ({"phone": "+212612345678", "channel": "sms", "locale": "en"}, 202),
        "verify_otp": ({"phone": PHONE, "code": code}, 200),
        "login": ({"email": "first@example.com", "password": PASSWORD}, 200),
    }


def test_first_requests_import_no_library(stack):
    imported = {}
    for name, (body, expected) in _bodies().items():
        result = _first_request(name, body, stack)
        assert result["status"] == expected, (name, result["body"])
        assert result["health"] == 200, name
        imported[name] = [m for m in result["imported"] if not m.startswith(LOADED_ON_DEMAND)]
    assert imported == {name: [] for name in imported}


def test_the_check_reports_an_import_made_by_a_request(stack, tmp_path):
    """Not vacuous: a function that leaves a library to its first request is caught."""
    source = tmp_path / "main.py"
    source.write_text(
        "import functions_framework\n\n\n@functions_framework.http\ndef probe(request):\n"
        "    import otplogin.cli.accounts  # noqa: F401\n    return {}\n"
    )
    result = _first_request("probe", {}, stack, source=source)
    assert "otplogin.cli.accounts" in result["imported"]
