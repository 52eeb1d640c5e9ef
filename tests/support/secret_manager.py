"""Run tools/local_secret_manager.py as a subprocess for tests.

    sm = LocalSecretManager(project="demo-otp")    # started, on a free port
    sm.add("otp-pepper", "value")                  # admin calls use the real client
    os.environ.update(sm.env())                    # SECRET_MANAGER_EMULATOR_HOST, GOOGLE_CLOUD_PROJECT
    ...
    sm.stop()

The server keeps its secrets in a state file in a private temporary directory,
so `restart()` (same port) brings the same secrets back. The process runs in
its own process group, and `stop()` signals that whole group.
"""

from __future__ import annotations

import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Self

from otplogin.secrets import EMULATOR_ENV, PROJECT_ENV, make_client
from tests.support.ports import free_port
from tests.support.processes import stop_group

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVER = REPO_ROOT / "tools" / "local_secret_manager.py"
START_TIMEOUT = 20.0


class LocalSecretManager:
    """A running local Secret Manager with admin helpers."""

    def __init__(self, project: str = "demo-otp", *, seed_dev_secrets: bool = False, start: bool = True) -> None:
        self.project = project
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self._seed = seed_dev_secrets
        self._dir = tempfile.mkdtemp(prefix="local-sm-")
        self.state_file = os.path.join(self._dir, "state.json")
        self._stderr_path = os.path.join(self._dir, "stderr.log")
        self._proc: subprocess.Popen[str] | None = None
        self.returncode: int | None = None  # exit status of the last stopped server
        self._client: Any = None
        if start:
            self.start()

    # -- lifecycle -----------------------------------------------------------
    def start(self) -> None:
        if self.running:
            return
        cmd = [sys.executable, str(SERVER), "--host", "127.0.0.1", "--port", str(self.port),
               "--project", self.project, "--state", self.state_file]
        if self._seed:
            cmd.append("--seed-dev-secrets")
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        with open(self._stderr_path, "a", encoding="utf-8") as stderr:  # the child keeps its own copy
            self._proc = subprocess.Popen(
                cmd, stdout=subprocess.PIPE, stderr=stderr, stdin=subprocess.DEVNULL,
                text=True, env=env, start_new_session=True,
            )
        lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, args=(self._proc, lines), daemon=True).start()
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                self.stop()
                raise RuntimeError(f"local Secret Manager not ready after {START_TIMEOUT:.0f} s{self._tail()}") from None
            if line is None:
                self.stop()
                raise RuntimeError(f"local Secret Manager exited before READY{self._tail()}")
            if line.startswith("READY "):
                return

    @staticmethod
    def _pump(proc: subprocess.Popen[str], lines: queue.Queue[str | None]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:  # keeps draining after READY so the pipe never fills
            lines.put(line.strip())
        lines.put(None)

    def _tail(self) -> str:
        try:
            with open(self._stderr_path, encoding="utf-8") as f:
                return ":\n" + "".join(f.readlines()[-20:])
        except OSError:
            return ""

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self) -> None:
        """SIGTERM the server's process group; SIGKILL it if it does not exit in 5 s."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        stop_group(proc)
        self.returncode = proc.poll()
        if proc.stdout:
            proc.stdout.close()

    def restart(self) -> None:
        """Stop and start again on the same port, with the same secrets."""
        self.stop()
        self.start()

    def close(self) -> None:
        """Stop the server, close the admin client and delete the state."""
        self.stop()
        if self._client is not None:
            self._client.transport.close()
            self._client = None
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- admin ---------------------------------------------------------------
    def env(self) -> dict[str, str]:
        """Environment that points the library at this server."""
        return {EMULATOR_ENV: self.host, PROJECT_ENV: self.project}

    @property
    def client(self) -> Any:
        """The real SecretManagerServiceClient, talking to this server."""
        if self._client is None:
            self._client = make_client(self.host)
        return self._client

    def secret_name(self, secret_id: str) -> str:
        return f"projects/{self.project}/secrets/{secret_id}"

    def add(self, secret_id: str, value: str | bytes) -> str:
        """Add a version (creating the secret if needed); return the version name."""
        from google.api_core.exceptions import AlreadyExists

        try:
            self.client.create_secret(request={
                "parent": f"projects/{self.project}",
                "secret_id": secret_id,
                "secret": {"replication": {"automatic": {}}},
            })
        except AlreadyExists:
            pass
        data = value.encode("utf-8") if isinstance(value, str) else value
        version = self.client.add_secret_version(
            request={"parent": self.secret_name(secret_id), "payload": {"data": data}}
        )
        return version.name

    def add_all(self, values: dict[str, str]) -> None:
        for secret_id, value in values.items():
            self.add(secret_id, value)

    def disable_latest(self, secret_id: str) -> str:
        """Disable the version `latest` points at (the newest); return its name."""
        version = self.client.get_secret_version(request={"name": f"{self.secret_name(secret_id)}/versions/latest"})
        self.client.disable_secret_version(request={"name": version.name})
        return version.name

    def delete(self, secret_id: str) -> None:
        self.client.delete_secret(request={"name": self.secret_name(secret_id)})
