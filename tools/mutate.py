"""Mutation run over the modules that decide (`make mutate`): how many mutants the fast tests kill.

For each module, mutmut 3 runs in its own staging directory under
mutation/run/<module>/: a copy of the library as a top-level `otplogin` package
(mutmut names mutants after the file path, so the package must sit at the
root), the tests, and a `[tool.mutmut]` that mutates that one module and runs
only the test files that exercise it. Modules decided against Firestore share
ONE emulator for the whole run (the tests attach to it through
OTPLOGIN_TEST_FIRESTORE_HOST instead of starting their own per mutant).

Writes mutation/results.json: killed / survived / timeout / not checked per
module, the score (killed + timeout over checked) and each survivor's diff.
A module may be given a time budget (--budget): mutants left unchecked when it
runs out are reported as such, never counted as killed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

OUT = REPO / "mutation"
RUNS = OUT / "run"

#: module -> the test files that exercise it (fast: unit, or emulator-backed integration).
MODULES: dict[str, list[str]] = {
    "keyring": ["tests/unit/test_keyring.py"],
    "tokens": ["tests/unit/test_tokens.py"],
    "limits": ["tests/unit/test_limits.py"],
    "otp": ["tests/integration/test_otp_flow.py"],
    # Lost commit answers (`_landed`) and the unavailable alert are driven by the HTTP and log contracts.
    "store": ["tests/integration/test_otp_flow.py", "tests/integration/test_http_contract.py",
              "tests/integration/test_log_contract.py"],
    "signin": ["tests/integration/test_login.py"],
}
#: Modules whose tests need the Firestore emulator.
NEEDS_EMULATOR = {"otp", "store", "signin"}
#: What each staging directory needs besides the library and the tests.
COPIED = ["conftest.py", "pytest.ini", "functions", "tools", "openapi.yaml"]

STATUS = {1: "killed", 3: "killed", 0: "survived", 36: "timeout", 24: "timeout", -24: "timeout", 152: "timeout",
          255: "timeout", 5: "no tests", 33: "no tests", 34: "skipped", None: "not checked"}


def _mutmut_config(module: str, tests: list[str]) -> str:
    lines = [
        "[tool.mutmut]",
        'source_paths = ["otplogin"]',
        f'only_mutate = ["otplogin/{module}.py"]',
        f"pytest_add_cli_args_test_selection = {json.dumps(tests)}",
        # -x: one failing test kills the mutant; no cache/plugins writing into the tree.
        'pytest_add_cli_args = ["-x", "-q", "-p", "no:cacheprovider"]',
        'also_copy = ["conftest.py", "pytest.ini", "functions", "tools", "openapi.yaml"]',
    ]
    if module in NEEDS_EMULATOR:
        # The Firestore client runs gRPC threads, which a plain fork of the stats process would break.
        lines.append('process_isolation = "forkserver"')
    return "\n".join(lines) + "\n"


def stage(module: str, tests: list[str]) -> Path:
    where = RUNS / module
    shutil.rmtree(where, ignore_errors=True)
    where.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "node_modules", "mutation")
    shutil.copytree(REPO / "shared" / "otplogin", where / "otplogin", ignore=ignore)
    shutil.copytree(REPO / "tests", where / "tests", ignore=ignore)
    for name in COPIED:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, where / name, ignore=ignore)
        elif src.exists():
            shutil.copy2(src, where / name)
    (where / "pyproject.toml").write_text(_mutmut_config(module, tests))
    return where


def run_mutmut(where: Path, env: dict[str, str], budget: float | None, max_children: int) -> tuple[int | None, str]:
    mutmut = Path(sys.executable).parent / "mutmut"
    log = (where / "mutmut.log").open("w")
    proc = subprocess.Popen(
        [str(mutmut), "run", "--max-children", str(max_children)],
        cwd=where, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        rc: int | None = proc.wait(timeout=budget)
        note = "complete"
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        rc, note = None, f"stopped after its {budget:.0f} s budget"
    log.close()
    return rc, note


def collect(module: str, where: Path, env: dict[str, str]) -> dict[str, Any]:
    meta = where / "mutants" / "otplogin" / f"{module}.py.meta"
    exit_codes: dict[str, int | None] = json.loads(meta.read_text())["exit_code_by_key"] if meta.exists() else {}
    counts: dict[str, int] = {}
    survivors = []
    for name, code in sorted(exit_codes.items()):
        status = STATUS.get(code, "suspicious")
        counts[status] = counts.get(status, 0) + 1
        if status == "survived":
            show = subprocess.run([str(Path(sys.executable).parent / "mutmut"), "show", name], cwd=where, env=env,
                                  capture_output=True, text=True, timeout=60)
            diff = [ln for ln in show.stdout.splitlines() if ln.startswith(("+", "-")) and not ln.startswith(("+++", "---"))]
            survivors.append({"mutant": name, "diff": diff})
    killed = counts.get("killed", 0) + counts.get("timeout", 0)
    checked = killed + counts.get("survived", 0)
    return {
        "tests": MODULES[module],
        "mutants": len(exit_codes),
        "killed": counts.get("killed", 0),
        "timeout": counts.get("timeout", 0),
        "survived": counts.get("survived", 0),
        "not_checked": len(exit_codes) - checked,
        "other": {k: v for k, v in counts.items() if k not in ("killed", "timeout", "survived")},
        "score": round(killed / checked, 3) if checked else None,
        "survivors": survivors,
    }


def _commit() -> dict[str, object]:
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "shared", "tests"], cwd=REPO,
                           capture_output=True, text=True).stdout.strip()
    return {"commit": head, "dirty": bool(dirty)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", default=list(MODULES), choices=list(MODULES))
    parser.add_argument("--budget", type=float, default=None, help="seconds per module (default: no limit)")
    parser.add_argument("--max-children", type=int, default=2)
    parser.add_argument("--out", type=Path, default=OUT / "results.json")
    args = parser.parse_args()

    env = {k: v for k, v in os.environ.items() if not k.startswith("MUTANT")}
    emulator = None
    if NEEDS_EMULATOR.intersection(args.modules):
        from tests.support.firestore import FirestoreEmulator
        from tests.support.stack import PROJECT

        emulator = FirestoreEmulator(project=PROJECT).start()
        env["OTPLOGIN_TEST_FIRESTORE_HOST"] = emulator.host  # tests/conftest.py attaches to it
    modules: dict[str, dict[str, Any]] = {}
    try:
        for module in args.modules:
            start = time.monotonic()
            where = stage(module, MODULES[module])
            # Emulator modules one mutant at a time: the tests clear the one shared database.
            children = 1 if module in NEEDS_EMULATOR else args.max_children
            rc, note = run_mutmut(where, env, args.budget, children)
            summary = collect(module, where, env)
            summary |= {"run": note, "mutmut_exit": rc, "seconds": round(time.monotonic() - start)} | _commit()
            modules[module] = summary
            print(f"{module:8} mutants {summary['mutants']:4}  killed {summary['killed'] + summary['timeout']:4}"
                  f"  survived {summary['survived']:4}  unchecked {summary['not_checked']:4}  score {summary['score']}"
                  f"  ({note}, {summary['seconds']} s)", flush=True)
    finally:
        if emulator is not None:
            emulator.stop()
    # Merge into the last results (read now, not at start: another run may have written meanwhile).
    results = json.loads(args.out.read_text()) if args.out.exists() else {}
    modules = results.setdefault("modules", {}) | modules
    results["modules"] = modules
    checked = sum(m["killed"] + m["timeout"] + m["survived"] for m in modules.values())
    killed = sum(m["killed"] + m["timeout"] for m in modules.values())
    results["total"] = {"checked": checked, "killed": killed, "score": round(killed / checked, 3) if checked else None}
    args.out.parent.mkdir(exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"total: {killed}/{checked} killed, score {results['total']['score']} -> {args.out.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
