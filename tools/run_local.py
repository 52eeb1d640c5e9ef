"""`make run`: the whole product on this machine, offline.

Starts the Firestore emulator, a local Secret Manager holding freshly
generated development secrets, and the three functions with the development
SMS sink (codes land in the emulator's `dev_outbox` collection and in this
terminal), and the demo sign-in page (web/) on http://127.0.0.1:8088, the one
origin CORS allows by default. Ctrl-C stops everything, the emulator's Java
process included.
"""

from __future__ import annotations

import os
import secrets as token_source
import signal
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.firestore import FirestoreEmulator  # noqa: E402
from tests.support.functions import FunctionProcess  # noqa: E402
from tests.support.secret_manager import LocalSecretManager  # noqa: E402
from web.devserver import DemoSite  # noqa: E402

PROJECT = "demo-otp"  # the demo- prefix marks an emulator-only project
PORTS = {
    "firestore": int(os.environ.get("FIRESTORE_PORT", 8080)),
    "send_otp": int(os.environ.get("SEND_OTP_PORT", 8081)),
    "verify_otp": int(os.environ.get("VERIFY_OTP_PORT", 8082)),
    "login": int(os.environ.get("LOGIN_PORT", 8083)),
    "secret_manager": int(os.environ.get("SECRET_MANAGER_PORT", 8090)),
    "web": int(os.environ.get("WEB_PORT", 8088)),
}
FUNCTIONS = [name for name in ("send_otp", "verify_otp", "login") if (REPO / "functions" / name / "main.py").exists()]


def main() -> int:
    stopping: list[object] = []
    for sig in (signal.SIGINT, signal.SIGTERM):  # also when started in the background with SIGINT ignored
        signal.signal(sig, _interrupt)
    try:
        print(f"starting the Firestore emulator on 127.0.0.1:{PORTS['firestore']} ...", flush=True)
        firestore = FirestoreEmulator(PORTS["firestore"], PROJECT).start()
        stopping.append(firestore)
        secrets = LocalSecretManager(PROJECT, seed_dev_secrets=True, start=False)
        secrets.port, secrets.host = PORTS["secret_manager"], f"127.0.0.1:{PORTS['secret_manager']}"
        secrets.start()
        stopping.append(secrets)
        env = {
            "GOOGLE_CLOUD_PROJECT": PROJECT,
            "FIRESTORE_EMULATOR_HOST": firestore.host,
            "SECRET_MANAGER_EMULATOR_HOST": secrets.host,
            "SMS_PROVIDER": "dev_outbox",
            "CORS_ALLOWED_ORIGINS": os.environ.get("CORS_ALLOWED_ORIGINS", f"http://127.0.0.1:{PORTS['web']}"),
        }
        for name in FUNCTIONS:
            stopping.append(FunctionProcess(name, env, PORTS[name]).start())
        function_urls = {name: f"http://127.0.0.1:{PORTS[name]}" for name in ("send_otp", "verify_otp", "login")}
        stopping.append(DemoSite(function_urls, port=PORTS["web"], outbox_emulator=firestore.host, project=PROJECT).start())
        demo_password = _seed_accounts(env)
        print(_banner(env, demo_password), flush=True)
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        print("\nstopping ...", flush=True)
        for service in reversed(stopping):
            (getattr(service, "close", None) or service.stop)()
    return 0


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt  # SIGTERM cleans up exactly like Ctrl-C


DEMO_USERS = [  # (email, code, extra create-user options)
    ("demo@example.com", "DEM0001KIN",
     ["--phone", "+243812345678", "--address", "12 avenue du Commerce, Kinshasa", "--whatsapp", "+243812345678"]),
    ("mfa@example.com", "MFA0001KIN", ["--phone", "+243812345679", "--mfa"]),
]


def _seed_accounts(env: dict[str, str]) -> str | None:
    """Canary, admin and demo users through the operator CLI; the demo password, or None if a step failed."""
    password = token_source.token_urlsafe(12)  # development only: printed in the banner
    steps = [
        (["init"], None),
        (["bootstrap-admin", "--email", "admin@example.com", "--code", "ADM0001KIN"], None),
    ] + [
        (["create-user", "--email", email, "--code", code, *extra, "--password-stdin"], password + "\n")
        for email, code, extra in DEMO_USERS
    ]
    ok = True
    for argv, stdin in steps:
        result = subprocess.run(
            [sys.executable, "-m", "otplogin.cli", *argv], input=stdin, capture_output=True, text=True,
            env={**os.environ, **env}, timeout=120, check=False,
        )
        if result.returncode != 0:
            ok = False
            print(f"setup step `otplogin-admin {argv[0]}` failed:\n{result.stderr.strip()}", flush=True)
    return password if ok else None


def _banner(env: dict[str, str], demo_password: str | None) -> str:
    lines = ["", "local stack ready (project demo-otp, development secrets, SMS to dev_outbox):"]
    lines += [f"  {name:<11} http://127.0.0.1:{PORTS[name]}" for name in FUNCTIONS]
    lines += [
        f"  firestore   {env['FIRESTORE_EMULATOR_HOST']} (emulator)",
        f"  secrets     {env['SECRET_MANAGER_EMULATOR_HOST']} (local Secret Manager, fresh dev values)",
        f"  demo page   http://127.0.0.1:{PORTS['web']}/ (sign-in page; open this exact address: CORS allows "
        f"{env['CORS_ALLOWED_ORIGINS'] or 'no origin'})",
        "",
        "Try it (README.md, 'Local mode'):",
        f"  curl -s -X POST http://127.0.0.1:{PORTS['send_otp']} -H 'Content-Type: application/json' \\",
        "       -d '{\"phone\": \"+243812345678\", \"channel\": \"sms\", \"locale\": \"fr\"}'",
        "  make outbox            # the messages the dev SMS sink received",
    ]
    if demo_password and "login" in FUNCTIONS:
        lines += [
            f"Demo accounts (development only), password {demo_password}:",
            "  demo@example.com (DEM0001KIN); mfa@example.com (MFA0001KIN) also needs an SMS code (make outbox)",
            "  admin@example.com (ADM0001KIN) has the local admin-password secret as password",
            f"  curl -s -X POST http://127.0.0.1:{PORTS['login']} -H 'Content-Type: application/json' \\",
            f"       -d '{{\"email\": \"demo@example.com\", \"password\": \"{demo_password}\"}}'",
        ]
    lines.append("Ctrl-C stops everything.")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
