"""The two scripts the deploy workflow runs around `terraform apply`.

terraform/scripts/deploy_plan.py reads the saved plan (`terraform show -json`)
and says which functions it deploys, refusing a plan that changes anything
else or creates a function (the bootstrap's job, not CI's). Its input here is
the JSON shape Terraform writes; the plan itself cannot be made offline.

terraform/scripts/health_check.py GETs each deployed function and fails with
a message that says what to do, against a real local HTTP server.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.terraform import support as tf

SCRIPTS = tf.TERRAFORM / "scripts"
FUNCTIONS = "send_otp verify_otp login"


def change(address: str, *actions: str) -> dict:
    rtype, rest = address.split(".", 1)
    name, _, index = rest.partition("[")
    return {
        "address": address,
        "type": rtype,
        "name": name,
        "index": index.rstrip("]").strip('"') if index else None,
        "change": {"actions": list(actions)},
    }


def deploy(fn: str, object_actions=("create", "delete"), function_actions=("update",)) -> list[dict]:
    return [
        change(f'google_storage_bucket_object.source["{fn}"]', *object_actions),
        change(f'google_cloudfunctions2_function.function["{fn}"]', *function_actions),
    ]


def plan(tmp_path: Path, changes: list[dict]) -> Path:
    path = tmp_path / "plan.json"
    untouched = [
        change("time_sleep.apis", "no-op"),
        change("data.google_project.this", "read"),
        change('google_service_account.function["login"]', "no-op"),
    ]
    path.write_text(json.dumps({"format_version": "1.2", "resource_changes": untouched + changes}))
    return path


def run_plan(path: Path, functions: str = FUNCTIONS) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPTS / "deploy_plan.py"), str(path), "--functions", functions],
        capture_output=True, text=True, timeout=30,
    )


def test_the_functions_a_plan_deploys(tmp_path):
    done = run_plan(plan(tmp_path, deploy("login") + deploy("send_otp")))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "login send_otp"


def test_a_configuration_only_change_deploys_the_function(tmp_path):
    done = run_plan(plan(tmp_path, [change('google_cloudfunctions2_function.function["verify_otp"]', "update")]))
    assert done.returncode == 0 and done.stdout.strip() == "verify_otp"


def test_an_empty_plan_deploys_nothing(tmp_path):
    done = run_plan(plan(tmp_path, []))
    assert done.returncode == 0 and done.stdout.strip() == ""
    assert "nothing to deploy" in done.stderr


def test_a_plan_that_changes_anything_else_is_refused(tmp_path):
    drift = change('google_secret_manager_secret_iam_member.accessor["login/pii-keyring"]', "delete")
    done = run_plan(plan(tmp_path, deploy("login") + [drift]))
    assert done.returncode == 1
    assert "::error::" in done.stdout and "accessor" in done.stdout and "full" in done.stdout


def test_a_plan_that_creates_a_function_is_refused(tmp_path):
    """A push before the bootstrap finished: CI never creates a function."""
    done = run_plan(plan(tmp_path, deploy("login", ("create",), ("create",))))
    assert done.returncode == 1
    assert "bootstrap" in done.stdout and "docs/deploy.md" in done.stdout


def test_a_plan_that_replaces_or_deletes_a_function_is_refused(tmp_path):
    for actions in (("delete", "create"), ("create", "delete"), ("delete",)):
        done = run_plan(plan(tmp_path, deploy("login", function_actions=actions)))
        assert done.returncode == 1, actions


def test_a_function_outside_the_list_is_refused(tmp_path):
    done = run_plan(plan(tmp_path, deploy("login")), functions="send_otp")
    assert done.returncode == 1


def test_an_unreadable_plan_is_an_error_not_an_empty_deploy(tmp_path):
    path = tmp_path / "plan.json"
    path.write_text("not json")
    done = run_plan(path)
    assert done.returncode == 1 and "::error::" in done.stdout


# --- health check ---------------------------------------------------------------------------


class Health(BaseHTTPRequestHandler):
    answers: dict[str, tuple[int, dict]] = {}

    def do_GET(self):  # noqa: N802 (http.server's name)
        status, body = self.answers[self.path]
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Health)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


OK = {"status": "ok", "checks": {"firestore": "ok", "secrets": {"otp-pepper": "ok"}}}


def run_health(base: str, *functions: str) -> subprocess.CompletedProcess:
    urls = json.dumps({fn: f"{base}/{fn}" for fn in ("send_otp", "verify_otp", "login")})
    return subprocess.run(
        [sys.executable, str(SCRIPTS / "health_check.py"), "--urls", urls, "--attempts", "2", "--delay", "0.1",
         *functions],
        capture_output=True, text=True, timeout=60,
    )


def test_healthy_functions_pass(server):
    Health.answers = {"/login": (200, OK), "/send_otp": (200, OK)}
    done = run_health(server, "login", "send_otp")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "login: ok" in done.stdout and "send_otp: ok" in done.stdout


def test_login_without_the_canary_names_the_bootstrap_step(server):
    """The first failure of a fresh deploy: login's health is 503 until `otplogin-admin init`."""
    body = {"status": "unavailable", "checks": {**OK["checks"], "pii_keyring": "canary_missing"}}
    Health.answers = {"/login": (503, body)}
    done = run_health(server, "login")
    assert done.returncode == 1
    assert "::error::" in done.stdout and "canary_missing" in done.stdout
    assert "otplogin-admin init" in done.stdout and "docs/deploy.md" in done.stdout


def test_a_failing_dependency_is_named(server):
    body = {"status": "unavailable", "checks": {"firestore": "ok", "secrets": {"twilio-auth-token": "permission denied"}}}
    Health.answers = {"/send_otp": (503, body)}
    done = run_health(server, "send_otp")
    assert done.returncode == 1
    assert "secrets.twilio-auth-token: permission denied" in done.stdout


def test_nothing_to_check_is_not_a_failure(server):
    done = run_health(server)
    assert done.returncode == 0
