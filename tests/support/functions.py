"""Run a function as a real process, the way Cloud Functions does: functions-framework."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.ports import free_port, wait_http
from tests.support.processes import stop_group

REPO = Path(__file__).resolve().parents[2]


class FunctionProcess:
    def __init__(self, name: str, env: dict[str, str], port: int | None = None, log_path: Path | None = None) -> None:
        self.name = name
        self.env = env
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 30) -> FunctionProcess:
        source = REPO / "functions" / self.name / "main.py"
        out = open(self.log_path, "ab") if self.log_path else None  # None: share our terminal
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "functions_framework", f"--target={self.name}", f"--source={source}",
             "--host=127.0.0.1", f"--port={self.port}"],
            env={**os.environ, **self.env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_http(f"{self.url}/healthz", timeout, self.proc, any_status=True)
        return self

    def stop(self) -> None:
        if self.proc is not None:
            stop_group(self.proc, grace=10)
            self.proc = None

    def restart(self) -> FunctionProcess:
        self.stop()
        return self.start()
