"""Functions as real processes: functions-framework's own server (gunicorn, gthread), as deployed.

`Instance` starts `python -m functions_framework --target=NAME --source=...`
with WORKERS=1 and THREADS = the function's concurrency (what Cloud Run
functions set), on a free port, in its own process group.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.support.ports import free_port
from tests.support.processes import stop_group

REPO = Path(__file__).resolve().parents[1]


class Instance:
    def __init__(self, name: str, env: dict[str, str], *, threads: int, floor: bool = False, log: Path | None = None):
        self.name = name
        self.floor = floor
        self.port = free_port()
        source = REPO / ("bench/floor_app/main.py" if floor else f"functions/{name}/main.py")
        self.cmd = [sys.executable, "-m", "functions_framework", f"--target={name}", f"--source={source}",
                    "--host=127.0.0.1", f"--port={self.port}"]
        self.env = {**os.environ, **env, "WORKERS": "1", "THREADS": str(threads), "FUNCTION_TARGET": name}
        self.log = log
        self.proc: subprocess.Popen | None = None
        self.started_at = 0.0

    def spawn(self) -> Instance:
        out = open(self.log, "ab") if self.log else subprocess.DEVNULL  # noqa: SIM115
        self.started_at = time.perf_counter()
        self.proc = subprocess.Popen(  # noqa: S603 (our own interpreter and function source)
            self.cmd, env=self.env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        return self

    def first_response(self, body: dict, expected: int, timeout: float = 60) -> dict[str, float]:
        """Poll until the port accepts, then POST once; times from spawn, in ms."""
        if self.proc is None:
            raise RuntimeError("spawn() first")
        deadline = self.started_at + timeout
        listen = None
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode} before answering")
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
            try:
                conn.connect()
            except ConnectionRefusedError:
                conn.close()
                if time.perf_counter() > deadline:
                    raise TimeoutError(f"{self.name} did not listen within {timeout} s") from None
                time.sleep(0.005)
                continue
            listen = listen or time.perf_counter()
            try:
                status, payload = _post(conn, body)
            except (ConnectionError, http.client.HTTPException):
                conn.close()
                time.sleep(0.005)
                continue
            done = time.perf_counter()
            conn.close()
            if status != expected:
                raise RuntimeError(f"{self.name}: first response {status}, expected {expected}: {payload}")
            return {"listen_ms": (listen - self.started_at) * 1000, "first_response_ms": (done - self.started_at) * 1000}

    def start(self, probe_body: dict | None = None, expected: int = 200) -> Instance:
        self.spawn()
        if probe_body is not None:
            self.first_response(probe_body, expected)
        else:
            self.wait_listening()
        return self

    def wait_listening(self, timeout: float = 60) -> None:
        deadline = time.perf_counter() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}")
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
            try:
                conn.request("GET", "/healthz")
                conn.getresponse().read()
                return
            except (ConnectionError, http.client.HTTPException):
                if time.perf_counter() > deadline:
                    raise TimeoutError(f"{self.name} did not answer within {timeout} s") from None
                time.sleep(0.02)
            finally:
                conn.close()

    def pids(self) -> list[int]:
        """The server's processes (its process group): gunicorn's arbiter and its worker."""
        if self.proc is None:
            return []
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2:].split()
            if int(fields[2]) == self.proc.pid:  # pgrp
                pids.append(int(entry.name))
        return sorted(pids)

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            stop_group(proc, grace=10)

    def __enter__(self) -> Instance:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _post(conn: http.client.HTTPConnection, body: dict, headers: dict | None = None) -> tuple[int, bytes]:
    data = json.dumps(body).encode()
    conn.request("POST", "/", body=data, headers={"Content-Type": "application/json", **(headers or {})})
    response = conn.getresponse()
    return response.status, response.read()


def memory_kib(pids: list[int]) -> dict[str, int]:
    """Summed over `pids`: Pss (each shared page counted once across them), Rss and VmHWM (peak Rss)."""
    total = {"pss_kib": 0, "rss_kib": 0, "hwm_kib": 0}
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total["pss_kib"] += int(line.split()[1])
                elif line.startswith("Rss:"):
                    total["rss_kib"] += int(line.split()[1])
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total["hwm_kib"] += int(line.split()[1])
        except OSError:
            pass
    return total


class MemorySampler:
    """Samples the summed Pss of an instance's processes every `interval` s; keeps the peak."""

    def __init__(self, instance: Instance, interval: float = 0.01) -> None:
        self.instance = instance
        self.interval = interval
        self.peak_pss_kib = 0
        self.last: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        pids = self.instance.pids()
        while not self._stop.is_set():
            self.last = memory_kib(pids)
            self.peak_pss_kib = max(self.peak_pss_kib, self.last["pss_kib"])
            self._stop.wait(self.interval)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def load(port: int, bodies: list[tuple[dict, dict]], concurrency: int, expected: int) -> dict:
    """POST every (body, headers) with `concurrency` keep-alive clients; throughput and latency."""
    lock = threading.Lock()
    queue = list(reversed(bodies))
    latencies: list[float] = []
    errors: list[str] = []

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            while True:
                with lock:
                    if not queue:
                        return
                    body, headers = queue.pop()
                start = time.perf_counter()
                try:
                    status, payload = _post(conn, body, headers)
                except (ConnectionError, http.client.HTTPException) as exc:
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                    status, payload = 0, repr(exc).encode()
                elapsed = (time.perf_counter() - start) * 1000
                with lock:
                    latencies.append(elapsed)
                    if status != expected:
                        errors.append(f"{status}: {payload[:200]!r}")
        finally:
            conn.close()

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    return {"requests": len(latencies), "seconds": elapsed, "latencies_ms": latencies, "errors": errors}
