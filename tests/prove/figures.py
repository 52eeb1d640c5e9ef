"""The figures a proof run measured, kept in `reports/` as JSON.

`make prove` (tests marked `prove`) writes `reports/proof.json`, from which
`tests/prove/report.py` renders `docs/proof.md`; the small versions that run
in `make test` write `reports/fast.json` so they never overwrite a long run's
figures. Each section is replaced whole by the test that owns it, with the
size it ran at and when.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
REPORTS = REPO / "reports"
PROOF_JSON = REPORTS / "proof.json"
FAST_JSON = REPORTS / "fast.json"

_lock = threading.Lock()


def load(path: Path = PROOF_JSON) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def record(section: str, data: dict[str, Any], *, path: Path = PROOF_JSON, size: str | None = None) -> None:
    """Replace `section` of the figures file with `data` (plus its size and a timestamp)."""
    with _lock:
        path.parent.mkdir(parents=True, exist_ok=True)
        current = load(path)
        current.setdefault("sections", {})[section] = {
            "size": size,
            "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            **data,
        }
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".proof-", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(current, f, indent=2, sort_keys=True, default=str)
            f.write("\n")
        os.replace(tmp, path)


def record_meta(path: Path, size: str, started: float, finished: float | None = None) -> None:
    with _lock:
        path.parent.mkdir(parents=True, exist_ok=True)
        current = load(path)
        meta = current.get("meta", {})
        if finished is None:
            meta = {
                "size": size,
                "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
                "commit": _git_commit(),
                "python": platform.python_version(),
                "cpus": os.cpu_count(),
                "machine": platform.machine(),
            }
        else:
            meta["duration_seconds"] = round(finished - started, 1)
        current["meta"] = meta
        path.write_text(json.dumps(current, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                             timeout=10, check=False)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return None
    commit = out.stdout.strip() or None
    return f"{commit}+changes" if commit and dirty.stdout.strip() else commit
