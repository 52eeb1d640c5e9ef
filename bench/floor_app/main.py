"""The floor: functions that do only the physical work of each real function, with raw clients.

Served exactly like the real functions (functions-framework, same server, same
request path), so what separates a function from its floor is the library's
own code: validation, HMACs, decisions, tokens, logs, error handling.

- verify_otp: one BatchGetDocuments of the documents the body names (the code,
  the phone's and the client's failure windows), then one Commit updating the
  first of them with a `last_update_time` precondition (the optimistic
  read-check-write the library uses in place of a transaction) and merging an
  increment and its TTL field into each `bumps` document (the send guard's
  credit: the known marker and the client, range and country counters) and
  creating the sign-in's session family document (`session_family`: the
  fields and sizes otplogin.refresh writes).
- send_otp: one BatchGetDocuments of the documents a send reads (code, phone
  window, and the send guard's: known-phone marker, client, range and country
  counters of this hour and the last, the budget shards), one Commit of what it
  writes (the code and phone window as creates or guarded updates, a budget
  shard guarded, three counter increments merged without a precondition), then
  one Twilio `messages.create` with the twilio SDK, pointed at Prism as the
  tests point it.
- login: one BatchGetDocuments of the user and the 3 lockout documents and one
  Commit of those 3 (the attempt reserved before the hash), one Argon2id
  verification of the password against the user's `password_hash`, then one
  BatchGetDocuments and one Commit of the 3 lockout documents (given back) and
  of the sign-in's new session family.

verify_otp and login then sign their answer, an EdDSA JWT, with `cryptography`
alone (the first key of `jwt-signing-keys`, loaded once per instance).

Imports are what the function truly needs: functions_framework, the Firestore
and Secret Manager clients, and twilio for send_otp only (FUNCTION_TARGET).
Clients and secrets are created and fetched on the first request (a cold start
pays for them, as the real functions do) and kept for the instance.
"""

import os
import threading
import time

import functions_framework
from google.cloud import firestore, secretmanager_v1  # noqa: F401 (the floor imports both clients)

if os.environ.get("FUNCTION_TARGET") == "send_otp":
    import twilio.rest  # noqa: F401

SECRETS = {
    "verify_otp": ("otp-pepper", "jwt-signing-keys"),
    "send_otp": ("otp-pepper", "twilio-account-sid", "twilio-auth-token", "twilio-sender"),
    "login": ("otp-pepper", "jwt-signing-keys", "pii-keyring"),
}
_lock = threading.Lock()
_state: dict = {}


def _secret_client():
    host = os.environ.get("SECRET_MANAGER_EMULATOR_HOST")
    if not host:
        return secretmanager_v1.SecretManagerServiceClient()
    import grpc
    from google.auth.credentials import AnonymousCredentials
    from google.cloud.secretmanager_v1.services.secret_manager_service.transports import (
        SecretManagerServiceGrpcTransport,
    )

    transport = SecretManagerServiceGrpcTransport(channel=grpc.insecure_channel(host), credentials=AnonymousCredentials())
    return secretmanager_v1.SecretManagerServiceClient(transport=transport)


def _ready(target: str) -> dict:
    """Clients and secret values, made once per instance."""
    if target not in _state:
        with _lock:
            if target not in _state:
                project = os.environ["GOOGLE_CLOUD_PROJECT"]
                sm = _secret_client()
                values = {
                    s: sm.access_secret_version(name=f"projects/{project}/secrets/{s}/versions/latest").payload.data.decode()
                    for s in SECRETS[target]
                }
                state = {"db": firestore.Client(project=project), "secrets": values}
                if target == "send_otp":
                    state["twilio"] = _twilio(values)
                else:
                    state["signing_key"] = _signing_key(values["jwt-signing-keys"])
                _state[target] = state
    return _state[target]


def _twilio(values: dict):
    from twilio.http.http_client import TwilioHttpClient
    from twilio.rest import Client

    base = os.environ.get("TWILIO_API_BASE")

    class Rewriting(TwilioHttpClient):
        def request(self, method, url, *args, **kwargs):
            if base:
                url = url.replace("https://api.twilio.com", base, 1)
            return super().request(method, url, *args, **kwargs)

    return Client(values["twilio-account-sid"], values["twilio-auth-token"], http_client=Rewriting(timeout=5))


def _signing_key(text: str):
    import json

    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    first = json.loads(text)["keys"][0]
    return first["kid"], load_pem_private_key(first["private_key_pem"].encode(), password=None)


def _token(state: dict, subject: str) -> str:
    """A compact JWS: EdDSA over base64url(header).base64url(claims), as any issuer must compute."""
    import base64
    import json
    import secrets

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    kid, key = state["signing_key"]
    now = int(time.time())
    header = {"alg": "EdDSA", "kid": kid, "typ": "at+jwt"}
    claims = {"iss": "floor", "aud": "floor", "sub": subject, "iat": now, "nbf": now, "exp": now + 3600,
              "jti": secrets.token_urlsafe(16)}
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    return f"{signing_input}.{b64(key.sign(signing_input.encode()))}"


def session_family(now: float) -> dict:
    """A session family document of the shape otplogin.refresh creates: the same fields, of the same sizes."""
    from datetime import UTC, datetime

    return {"subject_key": "0" * 40, "claims_enc": "x" * 152, "current": "0" * 64, "created_at": now,
            "last_used": now, "expires_at": datetime.fromtimestamp(now + 30 * 86400, tz=UTC)}


def _read_commit(db, read: list[str], writes: dict[str, dict], bumps: list[str] = ()) -> dict:
    """One BatchGetDocuments, one Commit: guarded updates or creates, and counter increments merged
    with their TTL field (as the send guard's counters are)."""
    from datetime import UTC, datetime

    refs = [db.document(p) for p in read]
    snaps = {s.reference.path: s for s in db.get_all(refs)}
    batch = db.batch()
    for path, data in writes.items():
        snap = snaps.get(path)
        if snap is not None and snap.exists:
            batch.update(db.document(path), data, option=db.write_option(last_update_time=snap.update_time))
        else:
            batch.create(db.document(path), data)
    expires = datetime.fromtimestamp(time.time() + 7200, tz=UTC)
    for path in bumps:
        batch.set(db.document(path), {"v": firestore.Increment(1), "expires_at": expires}, merge=True)
    batch.commit()
    return snaps


@functions_framework.http
def verify_otp(request):
    body = request.get_json()
    state = _ready("verify_otp")
    used = {"state": "used", "code_hash": "", "previous": None}
    # The sign-in's session family is created in the same commit.
    family = session_family(time.time())
    _read_commit(state["db"], body["read"], {body["read"][0]: used, body["family"]: family}, body.get("bumps", []))
    return {"access_token": _token(state, body["read"][0])}


@functions_framework.http
def send_otp(request):
    """Body: {"code", "phone", "reads": [paths], "shards": [paths], "bumps": [paths], "to", "text"}."""
    import random
    from datetime import UTC, datetime

    body = request.get_json()
    state = _ready("send_otp")
    db = state["db"]
    now = time.time()
    expires = datetime.fromtimestamp(now + 3600, tz=UTC)
    read = [body["code"], body["phone"], *body["reads"], *body["shards"]]
    snaps = {s.reference.path: s for s in db.get_all([db.document(p) for p in read])}
    shard = random.choice(body["shards"])  # noqa: S311
    count = (snaps[shard].to_dict() or {}).get("n", 0) if snaps[shard].exists else 0
    writes = {
        body["code"]: {
            "code_hash": "0" * 64, "state": "active", "attempts": 0, "expires_at": expires, "resend_at": now + 60,
            "channel": "sms", "purpose": "phone", "subject": None, "send_id": "0" * 16, "previous": None,
        },
        body["phone"]: {"events": [now], "expires_at": expires},
        shard: {"n": count + 1, "expires_at": expires},
    }
    batch = db.batch()
    for path, data in writes.items():
        snap = snaps[path]
        if snap.exists:
            batch.update(db.document(path), data, option=db.write_option(last_update_time=snap.update_time))
        else:
            batch.create(db.document(path), data)
    for path in body["bumps"]:
        batch.set(db.document(path), {"u": firestore.Increment(1), "expires_at": expires}, merge=True)
    batch.commit()
    state["twilio"].messages.create(to=body["to"], from_=state["secrets"]["twilio-sender"], body=body["text"])
    return {"ok": True}, 202


@functions_framework.http
def login(request):
    from datetime import UTC, datetime

    from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

    body = request.get_json()
    state = _ready("login")
    db = state["db"]
    now = time.time()
    expires = datetime.fromtimestamp(now + 3600, tz=UTC)
    locks = [f"bench_floor/login{i}:{body['path'].replace('/', ':')}" for i in range(3)]
    snaps = _read_commit(db, [body["path"], *locks], {p: {"events": [now], "expires_at": expires} for p in locks})
    Argon2id.verify_phc_encoded(body["password"].encode(), snaps[body["path"]].get("password_hash"))
    import secrets

    family = session_family(now)
    released = {p: {"events": [], "expires_at": expires} for p in locks}
    _read_commit(db, locks, released | {f"bench_floor_families/{secrets.token_hex(16)}": family})  # + its session family
    return {"access_token": _token(state, body["path"])}
