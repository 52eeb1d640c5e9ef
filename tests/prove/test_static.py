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
    if not RUFF.exists():
        pytest.skip("ruff is not installed in this venv")
    config = (REPO / "ruff.toml").read_text()
    assert '"S"' in config, "ruff.toml must select bandit's security rules (S)"
    findings = ruff_findings()
    security = [f for f in findings if f["code"] and f["code"].startswith("S")]
    figures("static_ruff", {"paths": PATHS, "findings": len(findings), "security_findings": len(security),
                            "version": ruff("--version").stdout.strip()})
    assert findings == [], "\n".join(f"{f['filename']}:{f['location']['row']} {f['code']} {f['message']}"
                                     for f in findings[:30])


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


@pytest.mark.prove
def test_static_checks_and_dependency_audit(tmp_path, figures):
    findings = ruff_findings() if RUFF.exists() else None
    audit_bin = Path(sys.executable).parent / "pip-audit"
    if not audit_bin.exists():
        audit = "not run: pip-audit is not installed"
    else:
        reqs = audit_requirements(tmp_path)
        try:
            out = subprocess.run(
                [str(audit_bin), "--requirement", str(reqs), "--no-deps", "--disable-pip", "--progress-spinner", "off",
                 "--format", "json", "--cache-dir", str(tmp_path / "cache")],
                capture_output=True, text=True, timeout=90, check=False, cwd=REPO,
            )
            if out.returncode in (0, 1) and out.stdout.strip().startswith("{"):
                deps = json.loads(out.stdout).get("dependencies", [])
                skipped = [d for d in deps if d.get("skip_reason")]
                vulns = sum(len(d.get("vulns", [])) for d in deps)
                if skipped and len(skipped) == len(deps):
                    audit = (f"could not run offline: all {len(deps)} pinned packages skipped, the reachable package "
                             f"mirror has no vulnerability data ({skipped[0]['skip_reason'][:60]}...)")
                else:
                    audit = (f"pip-audit: {len(deps) - len(skipped)} of {len(deps)} pinned packages audited, "
                             f"{vulns} known vulnerabilities")
            else:
                reason = (out.stderr.strip().splitlines() or ["no output"])[-1][:200]
                audit = f"could not run offline (no vulnerability service reachable): {reason}"
        except subprocess.TimeoutExpired:
            audit = "could not run offline: the vulnerability service did not answer within 90 s"
    figures("static", {
        "ruff_paths": PATHS,
        "ruff_findings": len(findings) if findings is not None else "ruff not installed",
        "ruff_version": ruff("--version").stdout.strip() if RUFF.exists() else None,
        "audit": audit,
        "checkov": "runs on terraform/ in tests/terraform (make tf-check), not repeated here",
    })
    assert not findings
