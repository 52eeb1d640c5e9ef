"""The demo sign-in page in headless Chromium against the real local stack.

The three functions run as real functions-framework processes on free ports, with
the Firestore emulator and the local Secret Manager of the session; the page is
served by `web.devserver.DemoSite` twice: from the one origin CORS_ALLOWED_ORIGINS
lists, and from another loopback port that it does not. Each scenario is a Node
script (`flows.mjs`) driving Debian's Chromium through playwright-core; screenshots
land in test-artifacts/browser/ (gitignored; CI keeps them as artifacts).

Needs `node`, Chromium (`apt-get install chromium`; CHROMIUM_PATH) and
playwright-core (`npm ci`; PLAYWRIGHT_CORE_PATH). Without them the tests fail
wherever REQUIRE_BROWSER=1 (.ci/run sets it) or CI is set, and are skipped elsewhere,
saying what to install.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from otplogin import passwords, runtime, store, users
from tests.support.apps import outbox_codes
from tests.support.functions import FunctionProcess
from tests.support.ports import free_port
from tests.support.stack import local_env
from web.devserver import DemoSite

REPO = Path(__file__).resolve().parents[2]
FLOWS = Path(__file__).with_name("flows.mjs")
ARTIFACTS = Path(os.environ.get("BROWSER_ARTIFACTS", REPO / "test-artifacts" / "browser"))
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
FUNCTIONS = ("send_otp", "verify_otp", "login")

DEMO = {"email": "demo@example.com", "code": "DEM0001KIN", "phone": "+243812345678",
        "address": "12 avenue du Commerce, Kinshasa"}  # fmt: skip
MFA = {"email": "mfa@example.com", "code": "MFA0001KIN", "phone": "+243812345679"}
OTP_PHONE, WRONG_CODE_PHONE, BLOCKED_PHONE = "+243812340001", "+243812340002", "+243812340003"
SESSION_PHONE = "+243812340004"
CHALLENGE_PHONE = "+243899990001"  # block 8999: made to look pumped before the challenge scenario


def _playwright_core() -> Path | None:
    configured = os.environ.get("PLAYWRIGHT_CORE_PATH")
    base = Path(configured) if configured else REPO / "node_modules" / "playwright-core"
    for candidate in (base, base / "playwright-core"):
        if (candidate / "package.json").exists():
            return candidate
    return None


@pytest.fixture(scope="module")
def browser_tools() -> dict[str, str]:
    node, playwright = shutil.which("node"), _playwright_core()
    missing = []
    if not node:
        missing.append("node (Node 20)")
    if not (Path(CHROMIUM).exists() and os.access(CHROMIUM, os.X_OK)):
        missing.append(f"Chromium at {CHROMIUM} (`apt-get install -y chromium`, or set CHROMIUM_PATH)")
    if playwright is None:
        missing.append("playwright-core (`npm ci`, or set PLAYWRIGHT_CORE_PATH)")
    if missing:
        message = "browser tests need " + "; ".join(missing)
        if os.environ.get("REQUIRE_BROWSER") == "1" or os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return {"node": str(node), "PLAYWRIGHT_CORE_PATH": str(playwright), "CHROMIUM_PATH": CHROMIUM}


@dataclass
class BrowserStack:
    tools: dict[str, str]
    site: DemoSite
    other_site: DemoSite
    password: str
    logs: Path
    functions: dict[str, FunctionProcess] = field(default_factory=dict)

    def config(self) -> dict[str, object]:
        return {
            "site": self.site.url,
            "otherSite": self.other_site.url,
            "jwks": self.site.config()["jwks"],
            "artifacts": str(ARTIFACTS),
            "phone": OTP_PHONE,
            "wrongCodePhone": WRONG_CODE_PHONE,
            "blockedPhone": BLOCKED_PHONE,
            "challengePhone": CHALLENGE_PHONE,
            "sessionPhone": SESSION_PHONE,
            "password": self.password,
            "demoEmail": DEMO["email"],
            "demoPhone": DEMO["phone"],
            "demoAddress": DEMO["address"],
            "mfaEmail": MFA["email"],
            "mfaPhone": MFA["phone"],
        }

    def run(self, scenario: str) -> dict:
        """Run one scenario of flows.mjs; its JSON result, or fail with what the browser saw."""
        env = {**os.environ, "PLAYWRIGHT_CORE_PATH": self.tools["PLAYWRIGHT_CORE_PATH"],
               "CHROMIUM_PATH": self.tools["CHROMIUM_PATH"]}  # fmt: skip
        proc = subprocess.run(
            [self.tools["node"], str(FLOWS), scenario], input=json.dumps(self.config()),
            capture_output=True, text=True, timeout=180, env=env, check=False,
        )  # fmt: skip
        lines = proc.stdout.strip().splitlines()
        result = json.loads(lines[-1]) if lines and lines[-1].startswith("{") else {}
        if proc.returncode != 0 or not result.get("ok"):
            logs = "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted(self.logs.glob("*.log")))
            pytest.fail(
                f"browser scenario {scenario} failed:\n{result.get('error') or proc.stderr[-3000:]}\n"
                f"screenshots: {result.get('screenshots')}\nbrowser console: {result.get('console')}\n"
                f"function logs:\n{logs}",
                pytrace=False,
            )
        return result


@pytest.fixture(scope="module")
def browser_stack(browser_tools, firestore_emulator, secret_manager, tmp_path_factory):
    firestore_emulator.clear()
    logs = tmp_path_factory.mktemp("browser-function-logs")
    allowed_port, other_port = free_port(), free_port()
    env = local_env(firestore_emulator, secret_manager) | {
        "CORS_ALLOWED_ORIGINS": f"http://127.0.0.1:{allowed_port}",  # not other_port
        # The send guard may answer a proof-of-work challenge (cheap here: a test, not a defence).
        "GUARD_CHALLENGES": "altcha", "GUARD_ALTCHA_COST": "50", "GUARD_ALTCHA_MAX_COUNTER": "200",
    }
    started: list = []
    with pytest.MonkeyPatch.context() as mp:
        for name, value in env.items():
            mp.setenv(name, value)
        runtime.reset()
        try:
            password = secrets.token_urlsafe(12)
            _seed_users(password)
            procs = [FunctionProcess(name, env, log_path=logs / f"{name}.log") for name in FUNCTIONS]
            started += procs
            with ThreadPoolExecutor(len(procs)) as pool:  # three cold starts at once
                list(pool.map(lambda proc: proc.start(), procs))
            urls = {proc.name: proc.url for proc in procs}
            site = DemoSite(urls, port=allowed_port, outbox_emulator=firestore_emulator.host).start()
            started.append(site)
            other = DemoSite(urls, port=other_port, outbox_emulator=firestore_emulator.host).start()
            started.append(other)
            yield BrowserStack(browser_tools, site, other, password, logs, {p.name: p for p in procs})
        finally:
            for service in reversed(started):
                service.stop()
            runtime.reset()


def _seed_users(password: str) -> None:
    """The canary and the two demo accounts `make run` creates, through the library."""
    keyring = runtime.pii_keyring()
    users.write_canary(keyring)
    password_hash = passwords.hash_password(password)
    for account, mfa in ((DEMO, False), (MFA, True)):
        pii = {"phone": account["phone"], "address": account.get("address"), "whatsapp": account["phone"]}
        users.create(code=account["code"], email=account["email"], password_hash=password_hash, role="user",
                     keyring=keyring, pii=pii, mfa_enabled=mfa)  # fmt: skip


def _screenshots_exist(result: dict, count: int) -> None:
    shots = [Path(p) for p in result["screenshots"]]
    assert len(shots) == count and all(p.stat().st_size > 10_000 for p in shots), shots


def test_phone_sign_in_in_french_by_keyboard(browser_stack):
    result = browser_stack.run("otp")
    # The page read the newest code the dev SMS sink recorded, and verify_otp took it.
    assert result["code"] == outbox_codes(store.client(), OTP_PHONE)[-1]
    assert result["claims"]["sub"] == f"phone:{OTP_PHONE}"
    _screenshots_exist(result, 4)


def test_wrong_code_shows_attempts_left_in_english_and_french(browser_stack):
    result = browser_stack.run("wrong_code")
    assert "4 essais" in result["attempts_text"]
    _screenshots_exist(result, 3)


def test_password_sign_in_profile_then_second_factor(browser_stack):
    result = browser_stack.run("login")
    assert result["profile"]["Address"] == DEMO["address"]
    assert result["mfaClaims"]["amr"] == "pwd, otp"
    _screenshots_exist(result, 4)


def test_a_session_survives_reloads_then_signs_out(browser_stack):
    from otplogin.errors import InvalidGrant

    result = browser_stack.run("session")
    assert result["claims"]["sub"] == f"phone:{SESSION_PHONE}"
    # Signed out: the last token the page held is refused by the service, not only forgotten.
    with pytest.raises(InvalidGrant):
        runtime.refresh_tokens().refresh(result["tokens"][-1])
    _screenshots_exist(result, 2)


def test_a_challenge_is_solved_by_the_altcha_widget_then_the_code_is_sent(browser_stack):
    """The number's block has spent its free allowance on codes nobody verified: send_otp asks
    for a challenge, the page's ALTCHA widget solves it, and the same send goes through."""
    service = runtime.otp_service()
    for i in range(service.settings.guard_range_free_per_hour):
        service.send(f"+2438999900{10 + i}", "sms", "en", f"198.51.100.{i + 1}")
    result = browser_stack.run("challenge")
    assert result["code"] == outbox_codes(store.client(), CHALLENGE_PHONE)[-1]
    assert result["claims"]["sub"] == f"phone:{CHALLENGE_PHONE}"
    assert result["challengeShown"] is True
    _screenshots_exist(result, 3)


def test_page_from_a_disallowed_origin_is_refused_by_the_browser(browser_stack):
    result = browser_stack.run("disallowed_origin")
    assert result["jwks"] == "TypeError: Failed to fetch"
    # The preflight was refused, so the POST never left the browser: no code was sent.
    assert outbox_codes(store.client(), BLOCKED_PHONE) == []
    _screenshots_exist(result, 1)
