"""Static checks: ruff with bandit's security rules (S) on all Python, and a dependency audit.

ruff reads ruff.toml (rules E, F, W, I, B, UP, S; tests may assert and use
fixed test values). The dependency audit (pip-audit) needs a vulnerability
database on the network (PyPI's JSON API or OSV): it cannot run offline. The
`prove` test tries it once against the functions' pinned requirements with a
short timeout and records whether it could run; it never fails the suite for
lack of network. Checkov runs on terraform/ in tests/terraform.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.prove.figures import REPO

RUFF = Path(sys.executable).parent / "ruff"
PATHS = ["shared", "functions", "tools", "tests"]


def ruff(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(RUFF), *args], cwd=REPO, capture_output=True, text=True, timeout=120, check=False)


def ruff_findings() -> list[dict]:
    out = ruff("check", "--output-format=json", "--exit-zero", *PATHS)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout or "[]")


def test_ruff_with_security_rules_is_clean(figures):
    assert RUFF.exists(), "ruff is a dev requirement (requirements-dev.txt): `make install`"
    config = (REPO / "ruff.toml").read_text()
    assert '"S"' in config, "ruff.toml must select bandit's security rules (S)"
    findings = ruff_findings()
    security = [f for f in findings if f["code"] and f["code"].startswith("S")]
    assert findings == [], "\n".join(f"{f['filename']}:{f['location']['row']} {f['code']} {f['message']}"
                                     for f in findings[:30])
    figures("static_ruff", {"paths": PATHS, "findings": len(findings), "security_findings": len(security),
                            "version": ruff("--version").stdout.strip()})


def audit_requirements(tmp: Path) -> Path:
    pins: dict[str, str] = {}
    for req in sorted((REPO / "functions").glob("*/requirements.txt")):
        for line in req.read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if "==" in line:
                name, version = line.split("==", 1)
                pins[name.strip().lower()] = version.strip()
    path = tmp / "requirements-audit.txt"
    path.write_text("".join(f"{n}=={v}\n" for n, v in sorted(pins.items())))
    return path


def dependency_audit(tmp_path: Path) -> dict:
    """pip-audit over every pinned requirement: ran or not (and why), and what it found.

    Offline, the reachable package mirror has no vulnerability data: then the audit did
    not run, and the report says so instead of counting it as a pass."""
    audit_bin = Path(sys.executable).parent / "pip-audit"
    assert audit_bin.exists(), "pip-audit is a dev requirement (requirements-dev.txt): `make install`"
    reqs = audit_requirements(tmp_path)
    try:
        out = subprocess.run(
            [str(audit_bin), "--requirement", str(reqs), "--no-deps", "--disable-pip", "--progress-spinner", "off",
             "--format", "json", "--cache-dir", str(tmp_path / "cache")],
            capture_output=True, text=True, timeout=90, check=False, cwd=REPO,
        )
    except subprocess.TimeoutExpired:
        return {"ran": False, "reason": "the vulnerability service did not answer within 90 s"}
    if out.returncode not in (0, 1) or not out.stdout.strip().startswith("{"):
        reason = (out.stderr.strip().splitlines() or ["no output"])[-1][:200]
        return {"ran": False, "reason": f"no vulnerability service reachable: {reason}"}
    deps = json.loads(out.stdout).get("dependencies", [])
    skipped = [d for d in deps if d.get("skip_reason")]
    audited = len(deps) - len(skipped)
    if audited == 0:
        return {"ran": False, "packages": len(deps),
                "reason": f"every package skipped: {(skipped[0]['skip_reason'] if skipped else 'no packages')[:80]}"}
    vulnerable = {d["name"]: [v["id"] for v in d["vulns"]] for d in deps if d.get("vulns")}
    return {"ran": True, "packages": len(deps), "audited": audited, "skipped": len(skipped),
            "vulnerable_packages": vulnerable}


@pytest.mark.prove
def test_static_checks_and_dependency_audit(tmp_path, figures):
    assert RUFF.exists(), "ruff is a dev requirement (requirements-dev.txt): `make install`"
    findings = ruff_findings()
    audit = dependency_audit(tmp_path)
    assert not findings, findings[:5]
    assert not audit.get("vulnerable_packages"), audit
    figures("static", {
        "ruff_paths": PATHS,
        "ruff_findings": len(findings),
        "ruff_version": ruff("--version").stdout.strip(),
        "audit": audit,
    })
