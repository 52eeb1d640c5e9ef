"""Offline Twilio for tests: the Prism contract mock, a recording proxy, a faulty server.

Plain classes (no pytest import) so fixtures, scripts and `make` targets can
all use them. Every server binds 127.0.0.1 on a free port.

`PrismMock` runs `@stoplight/prism-cli` (pinned in package.json; `npm ci`)
on Twilio's own OpenAPI spec, shipped on npm inside `@twilio-alpha/mcp`:

    node_modules/.bin/prism mock -h 127.0.0.1 -p PORT --errors -v warn SPEC

What the flags do, as checked with prism-cli 5.14.2 on that spec:
- Request validation is always on: a request that breaks the contract gets
  a 422 (`UNPROCESSABLE_ENTITY`, with a `validation` list) with or without
  `--errors`, e.g. a Messages.json POST without `To`, or an account SID that
  is not `AC` + 32 hex digits (path pattern). Missing basic auth gets a 401.
- `--errors` adds response validation: if the mock's own answer broke the
  spec, the client would get a 500 instead of a silently wrong answer.
- `-v warn` drops the ~50 kB of route listing logged at start; validation
  failures are still logged (warning/error) and land in `PrismMock.logs()`.
- Not checked by Prism: `format: phone-number` is not a format it knows, so
  `To=""`, `To=junk` and `whatsapp:+...` all pass; unknown form fields pass.
- Answers are the spec's static examples (the `create` example: `to` is
  always +14155552345, whatever was sent), so a test that wants to see what
  the SDK really sent reads it from a `RecordingProxy` in front of Prism.
- `Prefer: example=<name>` picks another example (e.g. `createWithQueuedStatus`)
  and `Prefer: dynamic=true` generates one from the schema (`-d` does it for
  every request). `Prefer: code=429` or `code=500` does NOT give a Twilio
  error: Messages.json declares only `201`, so Prism answers 404 "Requested
  status code 500 is not defined in the document". Errors, rate limits and
  timeouts therefore come from `FaultyTwilio` below.
- Start-up: about 1.5 s on this 2-core machine (spec is 2 MB), see
  `PrismMock.startup_seconds`.
- Prism is one `node` process; it runs in its own process group (session),
  and `stop()` signals the whole group, so nothing is left listening.
"""

from __future__ import annotations

import atexit
import http.client
import json
import os
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qs

from tests.support.ports import free_port
from tests.support.processes import stop_group

__all__ = [
    "PRISM_BIN",
    "REPO_ROOT",
    "TWILIO_SPEC",
    "FaultyTwilio",
    "PrismMock",
    "RecordedRequest",
    "RecordingProxy",
    "free_port",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
PRISM_BIN = REPO_ROOT / "node_modules" / ".bin" / "prism"
TWILIO_SPEC = (
    REPO_ROOT / "node_modules" / "@twilio-alpha" / "mcp" / "twilio-oai" / "spec" / "json" / "twilio_api_v2010.json"
)
HOST = "127.0.0.1"


class PrismMock:
    """Prism serving an OpenAPI spec (Twilio's API v2010 by default) on a free port.

    Use as a context manager or call `start()` / `stop()`. `base_url` is what
    `TwilioSender(api_base=...)` takes.
    """

    def __init__(
        self,
        spec: Path | str = TWILIO_SPEC,
        *,
        host: str = HOST,
        startup_timeout: float = 60.0,
        prism: Path | str = PRISM_BIN,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.spec = Path(spec)
        self.host = host
        self.startup_timeout = startup_timeout
        self.prism = Path(prism)
        self.extra_args = tuple(extra_args)
        self.port: int | None = None
        self.startup_seconds: float | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_path: Path | None = None
        self._final_log = ""

    @property
    def base_url(self) -> str:
        if self.port is None:
            raise RuntimeError("PrismMock is not started")
        return f"http://{self.host}:{self.port}"

    def command(self, port: int) -> list[str]:
        return [
            str(self.prism), "mock",
            "-h", self.host, "-p", str(port),
            "--errors", "-v", "warn",
            *self.extra_args,
            str(self.spec),
        ]  # fmt: skip

    def start(self) -> Self:
        for path, what in ((self.prism, "prism"), (self.spec, "the Twilio OpenAPI spec")):
            if not path.exists():
                raise FileNotFoundError(f"{what} not found at {path}: run `npm ci` in {REPO_ROOT}")
        started = time.monotonic()
        for attempt in range(3):  # another process may take the free port first
            try:
                self._launch(free_port(self.host))
                break
            except _PortTaken:
                if attempt == 2:
                    raise RuntimeError(f"prism could not bind a free port:\n{self._final_log}") from None
        self.startup_seconds = time.monotonic() - started
        atexit.register(self.stop)
        return self

    def _launch(self, port: int) -> None:
        fd, name = tempfile.mkstemp(prefix="prism-", suffix=".log")
        self._log_path = Path(name)
        # Output goes to a file, never to a pipe nobody reads (a full pipe
        # would block Prism mid-request).
        with os.fdopen(fd, "wb") as log:
            proc = self._proc = subprocess.Popen(
                self.command(port),
                cwd=REPO_ROOT,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own process group: stop() signals all of it
                env={**os.environ, "NO_COLOR": "1", "FORCE_COLOR": "0"},
            )
        self.port = port
        deadline = time.monotonic() + self.startup_timeout
        while True:
            if proc.poll() is not None:
                self.stop()
                if "EADDRINUSE" in self._final_log:
                    raise _PortTaken()
                raise RuntimeError(f"prism exited with status {proc.returncode} before answering:\n{self._final_log}")
            if self._answers():
                return
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"prism did not answer within {self.startup_timeout:g} s:\n{self._final_log}")
            time.sleep(0.1)

    def _answers(self) -> bool:
        try:
            urllib.request.urlopen(self.base_url + "/", timeout=1).close()
        except urllib.error.HTTPError:
            return True  # any HTTP answer (Prism: 404 "no path matched") means it is serving
        except (OSError, http.client.HTTPException):
            return False
        return True

    def logs(self) -> str:
        """Prism's output so far (validation warnings and errors)."""
        if self._log_path is not None and self._log_path.exists():
            return self._log_path.read_text(errors="replace")
        return self._final_log

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            stop_group(proc)
        if self._log_path is not None:
            self._final_log = self.logs()
            self._log_path.unlink(missing_ok=True)
            self._log_path = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _PortTaken(Exception):
    pass


# --- small stdlib servers ------------------------------------------------------


class _ThreadedServer:
    """A `ThreadingHTTPServer` on a free loopback port, served from a daemon thread."""

    handler: type[BaseHTTPRequestHandler]

    def __init__(self, host: str = HOST) -> None:
        self.host = host
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._release = threading.Event()

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return f"http://{self.host}:{self._server.server_address[1]}"

    def start(self) -> Any:
        server = ThreadingHTTPServer((self.host, 0), self.handler)
        server.daemon_threads = True
        server.owner = self  # type: ignore[attr-defined]
        self._release.clear()
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name=type(self).__name__, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        self._release.set()  # wake handlers sleeping in "timeout" mode
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _QuietHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    @property
    def owner(self) -> Any:
        return self.server.owner  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _answer(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    status: int = 0  # what the target answered
    form: dict[str, list[str]] = field(default_factory=dict)


class _ProxyHandler(_QuietHandler):
    def _forward(self) -> None:
        owner: RecordingProxy = self.owner
        body = self._read_body()
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
        headers.update(owner.extra_headers)
        record = RecordedRequest(
            method=self.command,
            path=self.path,
            headers=dict(self.headers.items()),
            body=body,
            form=parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
            if "x-www-form-urlencoded" in (self.headers.get("Content-Type") or "")
            else {},
        )
        conn = http.client.HTTPConnection(owner.target_host, owner.target_port, timeout=30)
        try:
            conn.request(self.command, self.path, body=body or None, headers=headers)
            resp = conn.getresponse()
            payload = resp.read()
            record.status = resp.status
            passed = {
                k: v
                for k, v in resp.getheaders()
                if k.lower() not in ("content-length", "transfer-encoding", "connection")
            }
        finally:
            conn.close()
        with owner.lock:
            owner.requests.append(record)
        self._answer(record.status, payload, passed)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _forward


class RecordingProxy(_ThreadedServer):
    """Forwards every request to `target` (e.g. Prism) and records what was sent.

    `extra_headers` are added to each forwarded request (for instance
    `{"Prefer": "example=createWithQueuedStatus"}` for Prism).
    """

    handler = _ProxyHandler

    def __init__(self, target: str, *, extra_headers: dict[str, str] | None = None, host: str = HOST) -> None:
        super().__init__(host)
        scheme, _, hostport = target.rstrip("/").partition("://")
        if scheme != "http" or not hostport:
            raise ValueError("target must be http://host:port")
        name, _, port = hostport.rpartition(":")
        self.target_host, self.target_port = name, int(port)
        self.extra_headers = dict(extra_headers or {})
        self.requests: list[RecordedRequest] = []
        self.lock = threading.Lock()

    @property
    def last(self) -> RecordedRequest:
        with self.lock:
            if not self.requests:
                raise LookupError("no request recorded")
            return self.requests[-1]

    def clear(self) -> None:
        with self.lock:
            self.requests.clear()


class _FaultyHandler(_QuietHandler):
    def _fault(self) -> None:
        owner: FaultyTwilio = self.owner
        body = self._read_body()
        with owner.lock:
            owner.hits += 1
            mode = owner.mode
        if mode == "timeout":
            # Sleep past the client's timeout; stop() cuts the sleep short.
            owner._release.wait(owner.delay)
            status, payload, headers = 201, {"sid": "SM" + "0" * 32, "status": "queued"}, {}
        elif mode == "429":
            status, headers = 429, {"Retry-After": "1"}
            payload = _twilio_error(20429, 429, "Too Many Requests")
        elif mode == "500":
            status, headers = 500, {}
            payload = _twilio_error(20500, 500, "Internal Server Error")
        elif mode == "invalid_to":
            # Like Twilio's 21211, whose message quotes the recipient.
            to = parse_qs(body.decode("utf-8", "replace")).get("To", [""])[0]
            status, headers = 400, {}
            payload = _twilio_error(21211, 400, f"Invalid 'To' Phone Number: {to}")
        elif mode == "garbage":
            self._answer(201, b"<html>not json</html>", {"Content-Type": "text/html"})
            return
        elif mode == "drop":
            # The request arrived (it may have been acted on), then the connection drops unanswered.
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        else:
            raise ValueError(f"unknown FaultyTwilio mode {mode!r}")
        try:
            self._answer(status, json.dumps(payload).encode(), {"Content-Type": "application/json", **headers})
        except OSError:
            pass  # the client gave up (timeout mode)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _fault


def _twilio_error(code: int, status: int, message: str) -> dict[str, Any]:
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


class FaultyTwilio(_ThreadedServer):
    """A stand-in for api.twilio.com that fails on purpose.

    `mode` (changeable at any time): "429" (Twilio 20429 with Retry-After),
    "500" (20500), "timeout" (sleeps `delay` seconds before answering 201),
    "invalid_to" (400, error 21211 whose message quotes the `To` sent),
    "garbage" (201 with an HTML body), "drop" (reads the request, closes the
    connection without an answer). Every path answers the same way;
    `hits` counts requests (a client that retried would show it).
    """

    handler = _FaultyHandler

    def __init__(self, mode: str = "500", *, delay: float = 30.0, host: str = HOST) -> None:
        super().__init__(host)
        self.mode = mode
        self.delay = delay
        self.hits = 0
        self.lock = threading.Lock()
