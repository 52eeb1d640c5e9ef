"""The functions in this process (functions-framework apps, Flask test clients) and their raw floors.

The function side is exactly what an instance runs per request, minus the HTTP
server: `functions_framework.create_app` loads `functions/<name>/main.py` and
each request goes through the handler, the library and the real clients to
the emulator, the local Secret Manager and Prism.

The floor side is the same physical work done with the raw clients and no
library: the same reads and writes in the same number of RPCs, on documents
of the same shape, plus the same Twilio call or Argon2id verification.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from typing import Any

from bench.counting import COUNTER, install

REPO = __import__("pathlib").Path(__file__).resolve().parents[1]


def quiet_logs() -> None:
    """Keep the library's JSON log lines (formatted as in production) out of the terminal."""
    from otplogin import log

    log.configure()
    sink = open(os.devnull, "w")  # noqa: SIM115 (lives as long as the process)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(sink)


class Functions:
    """The three functions and their floors as in-process apps on the stack described by `env`."""

    NAMES = ("send_otp", "verify_otp", "login")

    def __init__(self, env: dict[str, str]) -> None:
        install()  # before any client exists: every channel counts its calls
        os.environ.update(env)
        from otplogin import runtime

        runtime.reset()
        import functions_framework

        def app(source, name):
            return functions_framework.create_app(target=name, source=str(source)).test_client()

        self.clients = {name: app(REPO / "functions" / name / "main.py", name) for name in self.NAMES}
        self.floors = {name: app(REPO / "bench" / "floor_app" / "main.py", name) for name in self.NAMES}
        quiet_logs()

    def post(self, name: str, body: dict, ip: str = "203.0.113.9", *, floor: bool = False) -> tuple[int, dict]:
        client = (self.floors if floor else self.clients)[name]
        r = client.post("/", data=json.dumps(body), content_type="application/json", headers={"X-Forwarded-For": ip})
        return r.status_code, r.get_json(silent=True) or {}


class RawFloor:
    """The raw clients, no library: a Firestore client, a Twilio client on Prism, Argon2id."""

    def __init__(self, env: dict[str, str]) -> None:
        install()
        from google.cloud import firestore

        self.db = firestore.Client(project=env["GOOGLE_CLOUD_PROJECT"])
        self._env = env
        self._twilio = None

    # -- Firestore -----------------------------------------------------------
    def read_commit(self, read: list[str], writes: dict[str, dict], merges: list[str] = ()) -> None:  # type: ignore[assignment]
        """One BatchGetDocuments of `read`, then one Commit of `writes` (an update guarded by
        `last_update_time` for a document that exists, a create for one that does not) and of a
        counter increment merged, with its TTL field, into each of `merges`."""
        db = self.db
        refs = [db.document(p) for p in read]
        snaps = {s.reference.path: s for s in db.get_all(refs)}
        batch = db.batch()
        for path, data in writes.items():
            snap = snaps.get(path)
            if snap is not None and snap.exists:
                batch.update(db.document(path), data, option=db.write_option(last_update_time=snap.update_time))
            else:
                batch.create(db.document(path), data)
        if merges:
            from datetime import UTC, datetime

            from google.cloud import firestore

            expires = datetime.fromtimestamp(time.time() + 7200, tz=UTC)  # the counters' TTL field
            for path in merges:
                batch.set(db.document(path), {"v": firestore.Increment(1), "expires_at": expires}, merge=True)
        batch.commit()

    def transaction(self, path: str, data: dict) -> None:
        """A Firestore transaction: BeginTransaction, a read in it, Commit (for reference)."""
        from google.cloud import firestore

        ref = self.db.document(path)

        @firestore.transactional
        def run(txn):
            ref.get(transaction=txn)
            txn.update(ref, data)

        run(self.db.transaction())

    def get(self, path: str) -> Any:
        return self.db.document(path).get()

    # -- Twilio --------------------------------------------------------------
    def twilio_send(self, to: str, body: str) -> None:
        if self._twilio is None:
            self._twilio = _raw_twilio(self._env)
        client, sender = self._twilio
        client.messages.create(to=to, from_=sender, body=body)

    # -- Argon2id ------------------------------------------------------------
    @staticmethod
    def argon2_verify(password: str, phc: str) -> None:
        from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

        Argon2id.verify_phc_encoded(password.encode(), phc)


def _raw_twilio(env: dict[str, str]):
    """The twilio SDK's own client, its base URL rewritten to Prism (as the tests point it)."""
    from twilio.http.http_client import TwilioHttpClient
    from twilio.rest import Client

    from otplogin import runtime

    base = env["TWILIO_API_BASE"]

    class ToPrism(TwilioHttpClient):
        def request(self, method, url, *args, **kwargs):
            return super().request(method, url.replace("https://api.twilio.com", base, 1), *args, **kwargs)

    sid, token, sender = (runtime.secret(s) for s in runtime.TWILIO_SECRETS)
    return Client(sid, token, http_client=ToPrism(timeout=5)), sender


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return (time.perf_counter() - start) * 1000, result


__all__ = ["COUNTER", "Functions", "RawFloor", "quiet_logs", "timed"]
