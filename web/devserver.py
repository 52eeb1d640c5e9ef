"""Serves the demo sign-in page (web/site/) on loopback, for `make run` and the browser tests.

    site = DemoSite({"send_otp": url1, "verify_otp": url2, "login": url3},
                    port=8088, outbox_emulator="127.0.0.1:8080").start()
    print(site.url)      # http://127.0.0.1:8088/
    site.stop()

Routes (GET and HEAD only):
- `/` and the files of web/site/ (no directory listing, nothing outside web/site/);
- `/config.json`: the function URLs the page calls, and whether the dev outbox exists;
- `/vendor/altcha/...`: the ALTCHA widget (npm `altcha`, pinned in package.json) for the send
  guard's challenge: its CSP-friendly external build, stylesheet and PBKDF2/SHA workers, read
  from node_modules (a deployed copy of the page ships those four files under vendor/altcha/);
- `/dev/outbox?phone=+243812345678` (local mode only: `outbox_emulator` given): the codes
  the development SMS sink recorded for that phone, newest first. `*` in `phone` matches
  one character, so the masked `phone_hint` of a second factor (`+243*******79`) works.
  It reads the Firestore emulator's REST API; it answers only on 127.0.0.1, only to a
  `Host` of 127.0.0.1 or localhost (no DNS rebinding), and without CORS headers (no other
  origin can read it).

The Firestore emulator itself answers CORS for any origin, so the page could read it
directly; it does not, so that it needs neither the emulator's address nor Firestore's
wire format, and so that a deployed copy of the page has nothing to point at.
"""

from __future__ import annotations

import json
import re
import threading
import urllib.request
from datetime import datetime
from functools import partial
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

SITE = Path(__file__).resolve().parent / "site"
ALTCHA_DIST = Path(__file__).resolve().parents[1] / "node_modules" / "altcha" / "dist"
VENDOR = {  # URL path -> (file under ALTCHA_DIST, content type): these and nothing else
    "/vendor/altcha/altcha.js": ("external/altcha.js", "text/javascript"),
    "/vendor/altcha/altcha.css": ("external/altcha.css", "text/css"),
    "/vendor/altcha/workers/pbkdf2.js": ("workers/pbkdf2.js", "text/javascript"),
    "/vendor/altcha/workers/sha.js": ("workers/sha.js", "text/javascript"),
}
FUNCTIONS = ("send_otp", "verify_otp", "login")
CODE_RE = re.compile(r"\b(\d{6,10})\b")


class DemoSite:
    """The page on http://127.0.0.1:PORT/, served from a thread; `stop()` ends it."""

    def __init__(
        self,
        functions: dict[str, str],
        *,
        port: int = 0,
        host: str = "127.0.0.1",
        outbox_emulator: str | None = None,
        project: str = "demo-otp",
    ) -> None:
        missing = [name for name in FUNCTIONS if name not in functions]
        if missing:
            raise ValueError(f"function URLs missing: {', '.join(missing)}")
        self.functions = {name: functions[name].rstrip("/") for name in FUNCTIONS}
        self.host = host
        self.port = port
        self.outbox_emulator = outbox_emulator
        self.project = project
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def origin(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return self.origin + "/"

    def config(self) -> dict[str, Any]:
        return {
            "functions": self.functions,
            "jwks": self.functions["login"] + "/.well-known/jwks.json",
            "devOutbox": "/dev/outbox" if self.outbox_emulator else None,
        }

    def start(self) -> DemoSite:
        handler = partial(_Handler, site=self, directory=str(SITE))
        self._server = ThreadingHTTPServer((self.host, self.port), handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="demo-site", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> DemoSite:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- dev outbox -----------------------------------------------------------------------
    def outbox(self, phone_pattern: str) -> list[dict[str, Any]]:
        """Messages to numbers matching `phone_pattern` (`*` = any one character), newest first."""
        if not self.outbox_emulator:
            return []
        pattern = re.compile("".join("." if ch == "*" else re.escape(ch) for ch in phone_pattern) + r"\Z")
        found = []
        for fields in self._outbox_documents():
            to = fields.get("to", {}).get("stringValue", "")
            if not pattern.match(to):
                continue
            body = fields.get("body", {}).get("stringValue", "")
            code = CODE_RE.search(body)
            found.append({
                "to": to,
                "channel": fields.get("channel", {}).get("stringValue"),
                "sent_at": fields.get("sent_at", {}).get("timestampValue"),
                "code": code.group(1) if code else None,
            })
        return sorted(found, key=lambda m: _timestamp(m["sent_at"]), reverse=True)

    def _outbox_documents(self) -> list[dict[str, Any]]:
        base = f"http://{self.outbox_emulator}/v1/projects/{self.project}/databases/(default)/documents/dev_outbox"
        documents: list[dict[str, Any]] = []
        token = ""
        for _ in range(50):  # 300 a page; the dev outbox of one session is far smaller
            url = f"{base}?pageSize=300" + (f"&pageToken={quote(token)}" if token else "")
            # http:// to the loopback emulator; `Bearer owner` is its admin (rules do not apply)
            request = urllib.request.Request(url, headers={"Authorization": "Bearer owner"})  # noqa: S310
            with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
                page = json.load(response)
            documents += [doc.get("fields", {}) for doc in page.get("documents", [])]
            token = page.get("nextPageToken", "")
            if not token:
                break
        return documents


def _timestamp(value: str | None) -> datetime:
    """RFC 3339 from the emulator (`...T10:00:00.123456789Z`, fraction of any length)."""
    if not value:
        return datetime.min
    match = re.match(r"(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?Z?$", value)
    if not match:
        return datetime.min
    return datetime.fromisoformat(f"{match.group(1)}.{(match.group(2) or '0')[:6].ljust(6, '0')}")


class _Handler(SimpleHTTPRequestHandler):
    def version_string(self) -> str:
        return "otplogin-demo"

    def __init__(self, *args: Any, site: DemoSite, **kwargs: Any) -> None:
        self.site = site
        super().__init__(*args, **kwargs)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._route(head=False)

    def do_HEAD(self) -> None:  # noqa: N802
        self._route(head=True)

    def _route(self, *, head: bool) -> None:
        path = urlsplit(self.path).path
        if path == "/config.json":
            self._json(HTTPStatus.OK, self.site.config(), head)
        elif path == "/dev/outbox":
            self._outbox(head)
        elif path in VENDOR:
            self._vendor(path, head)
        elif head:
            super().do_HEAD()
        else:
            super().do_GET()

    def _outbox(self, head: bool) -> None:
        if not self.site.outbox_emulator:
            self._json(HTTPStatus.NOT_FOUND, {"error": "the dev outbox exists only in local mode"}, head)
            return
        host = (self.headers.get("Host") or "").rsplit(":", 1)[0]
        if host not in ("127.0.0.1", "localhost") or self.client_address[0] != "127.0.0.1":
            self._json(HTTPStatus.FORBIDDEN, {"error": "the dev outbox answers only on loopback"}, head)
            return
        query = parse_qs(urlsplit(self.path).query)
        phone = (query.get("phone") or [""])[0].strip()
        if phone and phone[0].isdigit():
            phone = "+" + phone  # an unencoded `+` arrives as a space, stripped above
        if not re.fullmatch(r"\+[0-9*]{6,16}", phone):
            self._json(HTTPStatus.BAD_REQUEST, {"error": "phone must look like +243812345678 (* for a hidden digit)"}, head)
            return
        try:
            messages = self.site.outbox(phone)
        except (OSError, ValueError) as exc:
            self._json(HTTPStatus.BAD_GATEWAY, {"error": f"could not read the emulator: {exc}"}, head)
            return
        self._json(HTTPStatus.OK, {"phone": phone, "messages": messages}, head)

    def _vendor(self, path: str, head: bool) -> None:
        name, content_type = VENDOR[path]
        try:
            body = (ALTCHA_DIST / name).read_bytes()
        except OSError:
            self._json(HTTPStatus.NOT_FOUND, {"error": "the ALTCHA widget is not installed (npm ci)"}, head)
            return
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", f"{content_type}; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def list_directory(self, path: Any) -> None:  # no directory listings
        self.send_error(HTTPStatus.NOT_FOUND)
        return None

    def _json(self, status: HTTPStatus, payload: dict[str, Any], head: bool) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def end_headers(self) -> None:
        connect = " ".join(sorted({_origin(url) for url in self.site.functions.values()}))
        self.send_header(
            "Content-Security-Policy",
            f"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            f"connect-src 'self' {connect}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        )
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass  # quiet: the functions' logs are what matters in the terminal


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
