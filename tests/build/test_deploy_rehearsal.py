"""The deploy, rehearsed: pushes on main, through the workflows as written, into one state.

Nothing here reaches GitHub or Google Cloud. What is real: the workflow files
(their push path filters, their concurrency groups, which functions each run
targets), the archives (tools/build.py on a copy of this tree with the change
applied: the object name Terraform compares is their SHA-256), and the plan
check the workflow runs (terraform/scripts/deploy_plan.py). What is modelled:

* GitHub's queue (docs, "Control the concurrency of workflows and jobs"): runs
  in different concurrency groups run at the same time; in one group at most
  one runs and one waits, and a newer waiting run cancels the older waiting one.
* Terraform's saved plans: a plan records the state serial it was made
  against; applying it after another apply changed the state fails with
  "Saved plan is stale". Applies are serialised by the state lock.
* A function's configuration: any change under terraform/*.tf is taken to
  change every function's configuration (the worst case: all at once).

For each change (one function, the shared library, the Terraform, and a burst
of three pushes landing while a deploy runs) the rehearsal checks that every
function whose archive or configuration changed is deployed exactly once per
run that saw the change, from a plan made against the state as it was then,
and that the state ends at the newest commit: no queued change is lost.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from tools import build as build_tool

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = REPO / ".github" / "workflows"
FUNCTIONS = ("send_otp", "verify_otp", "login")
PLAN_SCRIPT = REPO / "terraform" / "scripts" / "deploy_plan.py"


# --- the workflows, as GitHub reads them ---------------------------------------------------


def load(path: Path) -> dict:
    doc = yaml.safe_load(path.read_text())
    doc["on"] = doc.pop(True, doc.get("on"))  # YAML 1.1 reads the key `on` as true
    return doc


def glob_regex(pattern: str) -> re.Pattern[str]:
    """GitHub's filter pattern: `**` any characters, `*` any but `/` (the only two used here)."""
    assert not re.search(r"[?+\[\]!]", pattern), f"{pattern}: a filter character this rehearsal does not model"
    parts = re.split(r"(\*\*|\*)", pattern)
    body = "".join({"**": ".*", "*": "[^/]*"}.get(p, re.escape(p)) for p in parts)
    return re.compile(body)


def triggered(paths: list[str], changed: list[str]) -> bool:
    return any(glob_regex(p).fullmatch(f) for p in paths for f in changed)


def substitute(text: str, context: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        key = match.group(1).strip()
        assert key in context, f"expression {key!r}: not modelled"
        return context[key]

    return re.sub(r"\$\{\{(.*?)\}\}", value, text)


@dataclass
class Workflow:
    file: str
    paths: list[str]
    group: str | None
    cancel_in_progress: bool
    targets: list[str]


def applying_job(doc: dict, inputs: dict[str, str]) -> tuple[dict, dict[str, str]] | None:
    """The job that runs `terraform apply` (following a local reusable workflow), and its env."""
    for job in doc["jobs"].values():
        if job.get("uses", "").startswith("./.github/workflows/"):
            called = load(REPO / job["uses"][2:])
            found = applying_job(called, {k: str(v) for k, v in job.get("with", {}).items()})
            if found:
                return found
        if any("terraform apply" in s.get("run", "") for s in job.get("steps", [])):
            context = {f"inputs.{k}": v for k, v in inputs.items()}
            env = {k: substitute(str(v), context) for k, v in {**doc.get("env", {}), **job.get("env", {})}.items()}
            return job, env
    return None


def workflows() -> list[Workflow]:
    """Every workflow a push to main starts that applies Terraform."""
    found = []
    for path in sorted(WORKFLOWS.glob("*.yml")):
        doc = load(path)
        push = (doc["on"] or {}).get("push") if isinstance(doc["on"], dict) else None
        if push is None or "main" not in push.get("branches", ["main"]):
            continue
        job_env = applying_job(doc, {})
        if job_env is None:
            continue
        job, env = job_env
        concurrency = doc.get("concurrency") or job.get("concurrency")
        context = {"github.workflow": doc.get("name", path.name), "github.ref": "refs/heads/main"}
        if isinstance(concurrency, str):
            concurrency = {"group": concurrency}
        group = substitute(concurrency["group"], context) if concurrency else None
        cancel = bool(concurrency and concurrency.get("cancel-in-progress"))
        targets = env["FUNCTIONS"].split() if "FUNCTIONS" in env else [env["FUNCTION"]]
        found.append(Workflow(path.name, list(push.get("paths", ["**"])), group, cancel, targets))
    assert found, "no workflow deploys on a push to main"
    return found


# --- the tree: what each function's deployment is made of ------------------------------------


@dataclass(frozen=True)
class Commit:
    number: int
    changed: tuple[str, ...]
    desired: dict[str, tuple[str, str]]  # function -> (archive SHA-256, configuration hash)

    def __hash__(self) -> int:
        return self.number


class Tree:
    """A copy of what the archives and the Terraform are made of; each commit edits it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        for part in ("functions", "shared/otplogin", "tools/build.py", "terraform"):
            src, dest = REPO / part, root / part
            dest.parent.mkdir(parents=True, exist_ok=True)
            if src.is_dir():
                shutil.copytree(src, dest, ignore=shutil.ignore_patterns("__pycache__", ".terraform"))
            else:
                shutil.copy2(src, dest)
        self.commits: list[Commit] = []
        self.commits.append(self._snapshot(()))

    def _snapshot(self, changed: tuple[str, ...]) -> Commit:
        out = self.root / "build"
        built = build_tool.build(list(FUNCTIONS), self.root, out)
        config = hashlib.sha256(b"".join(p.read_bytes() for p in sorted((self.root / "terraform").glob("*.tf"))))
        desired = {fn: (digest, config.hexdigest()) for fn, (_, digest) in built.items()}
        return Commit(len(self.commits), changed, desired)

    def push(self, *paths: str) -> Commit:
        for rel in paths:
            with (self.root / rel).open("a", encoding="utf-8") as handle:
                handle.write(f"\n# changed by commit {len(self.commits)}\n")
        commit = self._snapshot(tuple(paths))
        self.commits.append(commit)
        return commit


# --- Terraform state and saved plans ------------------------------------------------------------


@dataclass
class State:
    """The GCS backend: one state, a serial, applies serialised by its lock."""

    deployed: dict[str, tuple[str, str]]
    serial: int = 0
    applies: Counter = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)


@dataclass
class Run:
    workflow: Workflow
    commit: Commit
    plan_serial: int = -1
    plan: dict[str, tuple[str, str]] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.workflow.file} for commit {self.commit.number}"


def plan_json(run: Run, state: State, tmp: Path) -> Path:
    """What `terraform show -json` of the run's targeted plan holds."""
    changes = []
    for fn in run.workflow.targets:
        archive, config = run.commit.desired[fn]
        old_archive, old_config = state.deployed[fn]
        obj = ["create", "delete"] if archive != old_archive else ["no-op"]
        func = ["update"] if (archive, config) != (old_archive, old_config) else ["no-op"]
        changes += [
            {"address": f'google_storage_bucket_object.source["{fn}"]', "change": {"actions": obj}},
            {"address": f'google_cloudfunctions2_function.function["{fn}"]', "change": {"actions": func}},
        ]
    path = tmp / f"plan-{id(run)}.json"
    path.write_text(json.dumps({"format_version": "1.2", "resource_changes": changes}))
    return path


def make_plan(run: Run, state: State, tmp: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(PLAN_SCRIPT), str(plan_json(run, state, tmp)), "--functions", " ".join(run.workflow.targets)],
        capture_output=True, text=True, timeout=30,
    )
    assert done.returncode == 0, f"{run}: the plan check refused the plan: {done.stdout}{done.stderr}"
    run.plan_serial = state.serial
    run.plan = {fn: run.commit.desired[fn] for fn in done.stdout.split()}


def apply(run: Run, state: State) -> None:
    if not run.plan:
        return  # nothing to deploy: the workflow skips the apply
    if run.plan_serial != state.serial:
        state.errors.append(f"{run}: Error: Saved plan is stale (made against serial {run.plan_serial}, "
                            f"state is at {state.serial}): {sorted(run.plan)} not deployed")
        return
    state.deployed.update(run.plan)
    state.serial += 1
    state.applies.update(run.plan.keys())


# --- GitHub's queue ---------------------------------------------------------------------------------


@dataclass
class Rehearsal:
    state: State
    runs: list[Run]  # every run that planned, in order
    cancelled_pending: list[Run]
    cancelled_running: list[Run]


def rehearse(tree: Tree, pushes: list[tuple[str, ...]], tmp: Path) -> Rehearsal:
    """All `pushes` land while the first push's runs are in progress (a burst)."""
    flows = workflows()
    state = State(deployed=dict(tree.commits[0].desired))
    running: dict[str | None, list[Run]] = {}
    pending: dict[str, Run] = {}
    result = Rehearsal(state, [], [], [])
    for paths in pushes:
        commit = tree.push(*paths)
        for flow in flows:
            if not triggered(flow.paths, list(commit.changed)):
                continue
            run = Run(flow, commit)
            group = flow.group
            if group is None:
                running.setdefault(None, []).append(run)
            elif not running.get(group):
                running[group] = [run]
            elif flow.cancel_in_progress:
                result.cancelled_running.extend(running[group])
                running[group] = [run]
            else:
                if group in pending:
                    result.cancelled_pending.append(pending[group])
                pending[group] = run
    while running:
        wave = [run for runs in running.values() for run in runs]
        for run in wave:  # the runs in progress at once all plan before the first applies
            make_plan(run, state, tmp)
            result.runs.append(run)
        for run in wave:
            apply(run, state)
        running = {group: [run] for group, run in pending.items()}
        pending = {}
    return result


# --- the rehearsals -------------------------------------------------------------------------------------


@pytest.fixture
def tree(tmp_path):
    return Tree(tmp_path / "tree")


def changed_functions(before: Commit, after: Commit) -> set[str]:
    return {fn for fn in FUNCTIONS if before.desired[fn] != after.desired[fn]}


def assert_deployed_once_each(result: Rehearsal, expected: set[str]) -> None:
    assert result.state.errors == [], "\n".join(result.state.errors)
    assert result.cancelled_running == [], f"cancelled while deploying: {[str(r) for r in result.cancelled_running]}"
    assert dict(result.state.applies) == {fn: 1 for fn in expected}, dict(result.state.applies)


CHANGES = {
    "one function": ("functions/login/main.py",),
    "the shared library": ("shared/otplogin/errors.py",),
    "the Terraform": ("terraform/functions.tf",),
}


@pytest.mark.parametrize("what", CHANGES)
def test_a_change_deploys_each_function_it_touches_exactly_once(tree, tmp_path, what):
    before = tree.commits[0]
    result = rehearse(tree, [CHANGES[what]], tmp_path)
    after = tree.commits[-1]
    expected = changed_functions(before, after)
    assert expected == ({"login"} if what == "one function" else set(FUNCTIONS)), expected
    assert_deployed_once_each(result, expected)
    assert result.state.deployed == after.desired
    for run in result.runs:
        assert run.plan_serial >= 0, f"{run} applied without a plan"


def test_a_change_outside_the_deploy_inputs_deploys_nothing(tree, tmp_path):
    (tree.root / "docs").mkdir()
    (tree.root / "docs" / "runbook.md").write_text("x")
    result = rehearse(tree, [("docs/runbook.md",)], tmp_path)
    assert result.runs == [] and result.state.serial == 0


def test_pushes_queued_behind_a_deploy_are_all_deployed_from_the_newest_commit(tree, tmp_path):
    """Three pushes land while the first deploy runs. GitHub cancels the older waiting run
    when a newer one arrives: the newer run carries its change (its commit contains it,
    and its plan compares every archive with the state, not with the previous commit)."""
    pushes = [("functions/login/main.py",), ("shared/otplogin/errors.py",), ("functions/send_otp/main.py",)]
    result = rehearse(tree, pushes, tmp_path)
    first, head = tree.commits[1], tree.commits[-1]
    assert result.state.errors == [], "\n".join(result.state.errors)
    assert result.cancelled_running == []
    assert result.state.deployed == head.desired, "a queued change never reached the functions"
    # Each run deploys each function at most once, from a plan of the state as it then was.
    assert [sorted(r.plan) for r in result.runs] == [["login"], sorted(FUNCTIONS)]
    assert result.runs[0].commit == first and result.runs[-1].commit == head
    assert [r.commit.number for r in result.cancelled_pending] == [2]


def test_the_rehearsal_reads_the_workflows_as_written():
    """The model above is fed by the files, not by a copy of them."""
    flows = workflows()
    targeted = Counter(fn for flow in flows for fn in flow.targets)
    assert set(targeted) == set(FUNCTIONS)
    for flow in flows:
        for fn in flow.targets:
            for path in (f"functions/{fn}/main.py", "shared/otplogin/errors.py", "terraform/functions.tf"):
                assert triggered(flow.paths, [path]), f"{flow.file}: a change to {path} does not deploy {fn}"
    assert glob_regex("terraform/*.tf").fullmatch("terraform/functions.tf")
    assert not glob_regex("terraform/*.tf").fullmatch("terraform/examples/x.tf")
    assert glob_regex("functions/**").fullmatch("functions/login/main.py")


# --- the one check that needs git: an older run never overwrites a newer deploy ---------------------


def current_check() -> tuple[str, str]:
    """The `current` job's script and its DEPLOY_PATHS, as written in the workflow."""
    [doc] = [load(p) for p in sorted(WORKFLOWS.glob("*.yml")) if "current" in load(p)["jobs"]]
    [check] = [s for s in doc["jobs"]["current"]["steps"] if s.get("id") == "check"]
    assert check["env"]["DEPLOY_PATHS"].split() == doc["on"]["push"]["paths"], (
        "the freshness check must compare exactly what the push filter deploys"
    )
    return check["run"], check["env"]["DEPLOY_PATHS"]


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


@pytest.mark.parametrize(("later", "deploys"), [("functions/login/main.py", False), ("docs/notes.md", True)])
def test_a_run_of_an_older_commit_deploys_only_if_main_has_not_moved_on(tmp_path, later, deploys):
    """A re-run of an old run (or one that started late) must not roll the functions back:
    if main changed what deploys since this commit, the newer commit's run deploys it."""
    script, paths = current_check()
    origin = tmp_path / "origin"
    origin.mkdir()
    git(origin, "init", "-q", "-b", "main")
    git(origin, "config", "user.email", "ci@example.com")
    git(origin, "config", "user.name", "ci")
    (origin / "functions" / "login").mkdir(parents=True)
    (origin / "functions" / "login" / "main.py").write_text("v1\n")
    git(origin, "add", "-A")
    git(origin, "commit", "-q", "-m", "one")
    old = git(origin, "rev-parse", "HEAD")
    target = origin / later
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("v2\n")
    git(origin, "add", "-A")
    git(origin, "commit", "-q", "-m", "two")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(origin), str(clone))
    git(clone, "checkout", "-q", old)
    output = tmp_path / "github_output"
    done = subprocess.run(
        ["bash", "-e", "-c", script], cwd=clone, capture_output=True, text=True, timeout=60,
        env={"PATH": "/usr/bin:/bin", "GITHUB_OUTPUT": str(output), "GITHUB_SHA": old, "DEPLOY_PATHS": paths,
             "HOME": str(tmp_path)},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"deploy={'true' if deploys else 'false'}" in output.read_text()
