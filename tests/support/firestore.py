"""The real Firestore emulator (`gcloud emulators firestore start`) for tests and `make run`."""

from __future__ import annotations

import subprocess
import urllib.request

from tests.support.ports import free_port, wait_http
from tests.support.processes import stop_group


class FirestoreEmulator:
    def __init__(self, port: int | None = None, project: str = "demo-otp") -> None:
        self.port = port or free_port()
        self.project = project
        self.host = f"127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 60) -> FirestoreEmulator:
        self.proc = subprocess.Popen(
            ["gcloud", "emulators", "firestore", "start", f"--host-port={self.host}", "--quiet"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: the Java child dies with it
        )
        wait_http(f"http://{self.host}/", timeout, self.proc)
        return self

    def clear(self) -> None:
        url = f"http://{self.host}/emulator/v1/projects/{self.project}/databases/(default)/documents"
        urllib.request.urlopen(urllib.request.Request(url, method="DELETE"), timeout=10).close()

    def stop(self) -> None:
        """Ask the emulator to shut down, then end its whole process group."""
        try:
            req = urllib.request.Request(f"http://{self.host}/shutdown", method="POST")
            urllib.request.urlopen(req, timeout=5).close()
        except OSError:
            pass
        if self.proc is not None:
            stop_group(self.proc, grace=10)
            self.proc = None
