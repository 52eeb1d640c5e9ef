"""A local Secret Manager for local mode and tests: plain gRPC, state in memory.

It implements the subset of `google.cloud.secretmanager.v1.SecretManagerService`
the project uses, closely enough that the real `google-cloud-secret-manager`
client (grpc transport on an insecure channel) cannot tell the difference:

    CreateSecret GetSecret ListSecrets DeleteSecret AddSecretVersion
    GetSecretVersion AccessSecretVersion ListSecretVersions
    EnableSecretVersion DisableSecretVersion DestroySecretVersion

Semantics follow the real API: `versions/latest` is an alias of the most
recently created version *whatever its state* (disabling it does not fall back
to an older one); a missing secret or version is NOT_FOUND, a disabled or
destroyed one FAILED_PRECONDITION; `data_crc32c` is returned and checked.

    python tools/local_secret_manager.py --host 127.0.0.1 --port 8090 \
        [--project demo-otp] [--seed-dev-secrets] [--state FILE]

prints `READY host:port` on stdout once serving; SIGTERM / SIGINT stop it.
With `--state FILE` the secrets survive a restart (plain JSON: dev values only).
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import os
import re
import signal
import sys
import threading
import time
from concurrent import futures
from datetime import UTC, datetime

import grpc
from google.cloud.secretmanager_v1 import types as t

from otplogin.secrets import crc32c

log = logging.getLogger("local_secret_manager")

SERVICE = "google.cloud.secretmanager.v1.SecretManagerService"
MAX_PAYLOAD = 64 * 1024
PARENT_RE = re.compile(r"^projects/[^/]+$")
SECRET_RE = re.compile(r"^projects/[^/]+/secrets/[A-Za-z0-9_-]{1,255}$")
VERSION_RE = re.compile(r"^(projects/[^/]+/secrets/[^/]+)/versions/([^/]+)$")
SECRET_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
State = t.SecretVersion.State


class Failure(Exception):
    """An RPC error with the status code the real API uses."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def _ts(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


class Store:
    """All secrets of all projects, keyed by full name. Every method takes the lock."""

    def __init__(self, state_path: str | None = None) -> None:
        self._lock = threading.Lock()
        self._path = state_path
        self._secrets: dict[str, dict] = {}
        if state_path and os.path.exists(state_path):
            with open(state_path, encoding="utf-8") as f:
                self._secrets = json.load(f)["secrets"]

    # -- helpers (lock held) -------------------------------------------------
    def _save(self) -> None:
        if not self._path:
            return
        tmp = f"{self._path}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"secrets": self._secrets}, f, indent=1)
        os.replace(tmp, self._path)

    def _secret(self, name: str) -> dict:
        if not SECRET_RE.match(name):
            raise Failure(grpc.StatusCode.INVALID_ARGUMENT, f"Invalid secret name [{name}].")
        if name not in self._secrets:
            raise Failure(grpc.StatusCode.NOT_FOUND, f"Secret [{name}] not found or has no versions.")
        return self._secrets[name]

    def _version(self, name: str) -> tuple[str, dict]:
        match = VERSION_RE.match(name)
        if not match:
            raise Failure(grpc.StatusCode.INVALID_ARGUMENT, f"Invalid secret version name [{name}].")
        secret_name, ref = match.groups()
        versions = self._secret(secret_name)["versions"]
        if ref == "latest":
            ref = str(max(map(int, versions))) if versions else ""
        if ref not in versions:
            raise Failure(grpc.StatusCode.NOT_FOUND, f"Secret Version [{name}] not found.")
        return f"{secret_name}/versions/{ref}", versions[ref]

    @staticmethod
    def _secret_msg(name: str, s: dict) -> t.Secret:
        return t.Secret(
            name=name,
            create_time=_ts(s["create_time"]),
            labels=s["labels"],
            replication=t.Replication(automatic=t.Replication.Automatic()),
        )

    @staticmethod
    def _version_msg(name: str, v: dict) -> t.SecretVersion:
        return t.SecretVersion(
            name=name,
            state=State[v["state"]],
            create_time=_ts(v["create_time"]),
            destroy_time=_ts(v.get("destroy_time")),
        )

    @staticmethod
    def _page(items: list, page_size: int, page_token: str) -> tuple[list, str]:
        try:
            start = int(page_token or 0)
        except ValueError:
            raise Failure(grpc.StatusCode.INVALID_ARGUMENT, "Invalid page token.") from None
        size = page_size if page_size > 0 else 25
        end = start + size
        return items[start:end], (str(end) if end < len(items) else "")

    # -- secrets -------------------------------------------------------------
    def create_secret(self, req: t.CreateSecretRequest) -> t.Secret:
        with self._lock:
            if not PARENT_RE.match(req.parent):
                raise Failure(grpc.StatusCode.INVALID_ARGUMENT, f"Invalid parent [{req.parent}].")
            if not SECRET_ID_RE.match(req.secret_id):
                raise Failure(grpc.StatusCode.INVALID_ARGUMENT, f"Invalid secret id [{req.secret_id}].")
            if "replication" not in req.secret:
                raise Failure(grpc.StatusCode.INVALID_ARGUMENT, "Secret.replication is required.")
            name = f"{req.parent}/secrets/{req.secret_id}"
            if name in self._secrets:
                raise Failure(grpc.StatusCode.ALREADY_EXISTS, f"Secret [{name}] already exists.")
            s = self._secrets[name] = {
                "create_time": time.time(), "labels": dict(req.secret.labels), "versions": {}, "next": 1,
            }
            self._save()
            return self._secret_msg(name, s)

    def get_secret(self, req: t.GetSecretRequest) -> t.Secret:
        with self._lock:
            return self._secret_msg(req.name, self._secret(req.name))

    def list_secrets(self, req: t.ListSecretsRequest) -> t.ListSecretsResponse:
        if req.filter:
            raise Failure(grpc.StatusCode.UNIMPLEMENTED, "filter is not supported by the local server.")
        with self._lock:
            prefix = f"{req.parent}/secrets/"
            names = sorted(n for n in self._secrets if n.startswith(prefix))
            page, token = self._page(names, req.page_size, req.page_token)
            secrets = [self._secret_msg(n, self._secrets[n]) for n in page]
            return t.ListSecretsResponse(secrets=secrets, next_page_token=token, total_size=len(names))

    def delete_secret(self, req: t.DeleteSecretRequest) -> None:
        with self._lock:
            self._secret(req.name)
            del self._secrets[req.name]
            self._save()

    # -- versions ------------------------------------------------------------
    def add_secret_version(self, req: t.AddSecretVersionRequest) -> t.SecretVersion:
        with self._lock:
            s = self._secret(req.parent)
            data = bytes(req.payload.data)
            if len(data) > MAX_PAYLOAD:
                raise Failure(grpc.StatusCode.INVALID_ARGUMENT, "Secret payload is larger than 64 KiB.")
            if "data_crc32c" in req.payload and req.payload.data_crc32c != crc32c(data):
                raise Failure(grpc.StatusCode.INVALID_ARGUMENT, "Data corruption detected: checksum mismatch.")
            number = str(s["next"])
            s["next"] += 1
            v = s["versions"][number] = {
                "state": "ENABLED", "create_time": time.time(), "data": base64.b64encode(data).decode(),
            }
            self._save()
            return self._version_msg(f"{req.parent}/versions/{number}", v)

    def get_secret_version(self, req: t.GetSecretVersionRequest) -> t.SecretVersion:
        with self._lock:
            return self._version_msg(*self._version(req.name))

    def access_secret_version(self, req: t.AccessSecretVersionRequest) -> t.AccessSecretVersionResponse:
        with self._lock:
            name, v = self._version(req.name)
            if v["state"] != "ENABLED":
                raise Failure(grpc.StatusCode.FAILED_PRECONDITION, f"Secret Version [{name}] is in {v['state']} state.")
            data = base64.b64decode(v["data"])
            payload = t.SecretPayload(data=data, data_crc32c=crc32c(data))
            return t.AccessSecretVersionResponse(name=name, payload=payload)

    def list_secret_versions(self, req: t.ListSecretVersionsRequest) -> t.ListSecretVersionsResponse:
        if req.filter:
            raise Failure(grpc.StatusCode.UNIMPLEMENTED, "filter is not supported by the local server.")
        with self._lock:
            versions = self._secret(req.parent)["versions"]
            numbers = sorted(versions, key=int, reverse=True)  # newest first, like the real API
            page, token = self._page(numbers, req.page_size, req.page_token)
            msgs = [self._version_msg(f"{req.parent}/versions/{n}", versions[n]) for n in page]
            return t.ListSecretVersionsResponse(versions=msgs, next_page_token=token, total_size=len(numbers))

    def _set_state(self, name: str, state: str) -> t.SecretVersion:
        with self._lock:
            full_name, v = self._version(name)
            if v["state"] == "DESTROYED":
                message = f"Secret Version [{full_name}] is in DESTROYED state."
                raise Failure(grpc.StatusCode.FAILED_PRECONDITION, message)
            v["state"] = state
            if state == "DESTROYED":
                v["data"], v["destroy_time"] = "", time.time()
            self._save()
            return self._version_msg(full_name, v)

    def enable_secret_version(self, req: t.EnableSecretVersionRequest) -> t.SecretVersion:
        return self._set_state(req.name, "ENABLED")

    def disable_secret_version(self, req: t.DisableSecretVersionRequest) -> t.SecretVersion:
        return self._set_state(req.name, "DISABLED")

    def destroy_secret_version(self, req: t.DestroySecretVersionRequest) -> t.SecretVersion:
        return self._set_state(req.name, "DESTROYED")

    # -- seeding -------------------------------------------------------------
    def seed(self, project: str, values: dict[str, str]) -> list[str]:
        """Create each missing secret with one version; existing secrets are left alone."""
        seeded = []
        for secret_id, value in values.items():
            parent = f"projects/{project}"
            if f"{parent}/secrets/{secret_id}" in self._secrets:
                continue
            secret = t.Secret(replication=t.Replication(automatic=t.Replication.Automatic()))
            self.create_secret(t.CreateSecretRequest(parent=parent, secret_id=secret_id, secret=secret))
            payload = t.SecretPayload(data=value.encode("utf-8"))
            self.add_secret_version(t.AddSecretVersionRequest(parent=f"{parent}/secrets/{secret_id}", payload=payload))
            seeded.append(secret_id)
        return seeded


def make_handler(store: Store) -> grpc.GenericRpcHandler:
    """Generic handler: proto-plus classes (de)serialize, Store methods answer."""
    methods = {
        "CreateSecret": (t.CreateSecretRequest, t.Secret),
        "GetSecret": (t.GetSecretRequest, t.Secret),
        "ListSecrets": (t.ListSecretsRequest, t.ListSecretsResponse),
        "DeleteSecret": (t.DeleteSecretRequest, None),  # google.protobuf.Empty
        "AddSecretVersion": (t.AddSecretVersionRequest, t.SecretVersion),
        "GetSecretVersion": (t.GetSecretVersionRequest, t.SecretVersion),
        "AccessSecretVersion": (t.AccessSecretVersionRequest, t.AccessSecretVersionResponse),
        "ListSecretVersions": (t.ListSecretVersionsRequest, t.ListSecretVersionsResponse),
        "EnableSecretVersion": (t.EnableSecretVersionRequest, t.SecretVersion),
        "DisableSecretVersion": (t.DisableSecretVersionRequest, t.SecretVersion),
        "DestroySecretVersion": (t.DestroySecretVersionRequest, t.SecretVersion),
    }

    def unary(method: str, request_type, response_type) -> grpc.RpcMethodHandler:
        impl = getattr(store, re.sub(r"(?<!^)([A-Z])", r"_\1", method).lower())

        def behaviour(request, context):
            try:
                return impl(request)
            except Failure as exc:
                target = getattr(request, "name", "") or getattr(request, "parent", "")
                log.info("%s %s -> %s", method, target, exc.code.name)
                context.abort(exc.code, exc.message)

        return grpc.unary_unary_rpc_method_handler(
            behaviour,
            request_deserializer=request_type.deserialize,
            response_serializer=response_type.serialize if response_type else (lambda _: b""),
        )

    return grpc.method_handlers_generic_handler(
        SERVICE, {m: unary(m, req, resp) for m, (req, resp) in methods.items()}
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True, help="0 picks a free port")
    parser.add_argument("--project", default="demo-otp", help="project the dev secrets are seeded in")
    parser.add_argument("--seed-dev-secrets", action="store_true", help="create missing secrets with random dev values")
    parser.add_argument("--state", help="JSON file to load the secrets from and save them to")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="local-secret-manager: %(message)s")

    store = Store(args.state)
    if args.seed_dev_secrets:
        if __package__:
            from .dev_secrets import generate_dev_secrets
        else:  # run as a script: tools/ is on sys.path
            from dev_secrets import generate_dev_secrets
        seeded = store.seed(args.project, generate_dev_secrets())
        log.info("seeded %s in project %s", ", ".join(seeded) or "nothing (all present)", args.project)

    # so_reuseport=0: a second server on a taken port must fail, not share it.
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8), options=[("grpc.so_reuseport", 0)])
    server.add_generic_rpc_handlers((make_handler(store),))
    host = f"[{args.host}]" if ":" in args.host else args.host
    try:
        port = server.add_insecure_port(f"{host}:{args.port}")
    except RuntimeError:
        port = 0
    if not port:
        print(f"cannot listen on {host}:{args.port}", file=sys.stderr)
        return 1
    server.start()

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    print(f"READY {host}:{port}", flush=True)
    while not stop.wait(0.1):
        pass
    server.stop(grace=0.5).wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
