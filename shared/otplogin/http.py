"""The only module that knows Flask: parse, dispatch, render, CORS.

Handlers give `handle` plain functions; everything a client can see — the
error shape, status codes, `Retry-After`, CORS headers — is decided here, once.
"""

from __future__ import annotations

import io
import json
import logging
import math
from collections.abc import Callable, Mapping
from typing import Any, Literal, overload

import flask
from msgspec import Struct

from otplogin import log
from otplogin.config import ConfigError, settings
from otplogin.errors import (
    ApiError,
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    SecretUnavailable,
    Unavailable,
    UnsupportedMediaType,
)

MAX_JSON_DEPTH = 8
HEALTH_PATHS = ("/", "/healthz")
PUBLIC_CACHE = "public, max-age=300"


class Context(Struct, frozen=True):
    """What a handler may know about the request besides its body."""

    client_ip: str
    path: str
    bearer: str | None = None  # the `Authorization: Bearer` token, if any


Handler = Callable[[Mapping[str, Any], Context], tuple[int, dict[str, Any]]]
HealthCheck = Callable[[], dict[str, Any]]


def handle(
    request: flask.Request,
    *,
    post: Handler,
    health: HealthCheck,
    get_routes: Mapping[str, Callable[[], dict[str, Any]]] | None = None,
) -> flask.Response:
    """Serve one request: OPTIONS (CORS), GET (health and routes), POST (the work)."""
    try:
        cfg = settings()
    except ConfigError as exc:
        logging.getLogger("otplogin").error("configuration error: %s", exc)
        return _render_error(Unavailable(), None)
    log.configure()
    log.set_trace(request.headers.get("X-Cloud-Trace-Context"), cfg.project)
    origin = request.headers.get("Origin")
    allowed_origin = origin if origin and origin in cfg.cors_allowed_origins else None
    try:
        if request.method == "OPTIONS":
            return _preflight(allowed_origin)
        if request.method in ("GET", "HEAD"):  # HEAD: uptime checkers; Werkzeug drops the body
            path = request.path.rstrip("/") or "/"
            if path in HEALTH_PATHS:
                report = health()
                return _json(200 if report["status"] == "ok" else 503, report, allowed_origin)
            if get_routes and path in get_routes:
                # Public documents (the JWKS): caches may keep them for 5 minutes, which is why
                # a new signing key is published before it signs (docs/operations.md).
                return _json(200, get_routes[path](), allowed_origin, {"Cache-Control": PUBLIC_CACHE})
            raise NotFound()
        if request.method != "POST":
            raise MethodNotAllowed(allowed=["GET", "HEAD", "POST", "OPTIONS"])
        body = parse_json_body(request, cfg.max_body_bytes)
        ctx = Context(client_ip=client_ip(request, cfg.trusted_proxy_hops), path=request.path, bearer=_bearer(request))
        status, payload = post(body, ctx)
        if status == 204:
            return _no_content(allowed_origin)
        return _json(status, payload, allowed_origin)
    except ApiError as exc:
        if isinstance(exc, PayloadTooLarge):
            return _refuse_body(request, _render_error(exc, allowed_origin))
        if exc.status >= 500:
            # The cause (which secret, which dependency) goes to the logs; the body stays generic.
            logging.getLogger("otplogin").error("answered %s %s: %s", exc.status, exc.code, exc)
            if isinstance(exc, SecretUnavailable):  # the secret-load alert's signal (docs/runbook.md)
                log.event(
                    "secret_load_failed", str(exc), severity=logging.ERROR, secret=exc.secret_id, reason=exc.reason
                )
            # A fresh error of the same kind (or plain `unavailable`): generic message, no data, but the
            # Retry-After a transient cause set (Firestore busy or not answering) is kept.
            generic = Unavailable if isinstance(exc, Unavailable) else type(exc)
            exc = generic(retry_after=exc.retry_after)
        return _render_error(exc, allowed_origin)
    except Exception:
        # Never a stack trace to the client: it goes to the logs, the client gets the contract's shape.
        logging.getLogger("otplogin").exception("unhandled error")
        return _render_error(ApiError(), allowed_origin)


def parse_json_body(request: flask.Request, max_bytes: int) -> dict[str, Any]:
    mimetype = (request.mimetype or "").lower()
    if mimetype != "application/json":
        raise UnsupportedMediaType()
    if request.content_length is not None and request.content_length > max_bytes:
        raise PayloadTooLarge(max_bytes=max_bytes)
    raw = request.stream.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise PayloadTooLarge(max_bytes=max_bytes)
    try:
        body = json.loads(raw.decode("utf-8"), object_pairs_hook=_reject_duplicate_keys)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise InvalidRequest("The body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise InvalidRequest("The body must be a JSON object.")
    if _depth(body) > MAX_JSON_DEPTH:
        raise InvalidRequest("The body is nested too deeply.")
    return body


def _refuse_body(request: flask.Request, response: flask.Response) -> flask.Response:
    """Answer 413 without reading the body the client declared.

    functions-framework reads the whole declared body after every answer (its
    `read_request` hook): a `Content-Length` larger than what is sent would hold a
    worker thread until the client gives up. The body is swapped for an empty one
    and the connection closed, so the unread bytes are never waited for."""
    request.environ["wsgi.input"] = io.BytesIO()
    request.environ["CONTENT_LENGTH"] = "0"
    request.__dict__.pop("stream", None)  # a cached stream would still point at the socket
    response.headers["Connection"] = "close"
    return response


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        raise ValueError("duplicate key")
    return dict(pairs)


def _depth(value: Any, level: int = 1) -> int:
    if isinstance(value, dict):
        return max([_depth(v, level + 1) for v in value.values()] or [level])
    if isinstance(value, list):
        return max([_depth(v, level + 1) for v in value] or [level])
    return level


@overload
def string_field(body: Mapping[str, Any], name: str, *, max_length: int, required: Literal[True] = True) -> str: ...
@overload
def string_field(body: Mapping[str, Any], name: str, *, max_length: int, required: Literal[False]) -> str | None: ...
def string_field(body: Mapping[str, Any], name: str, *, max_length: int, required: bool = True) -> str | None:
    """A string field, present and bounded, or a 400 naming the field."""
    value = body.get(name)
    if value is None:
        if required:
            raise InvalidRequest(f"{name} is required.", field=name)
        return None
    if not isinstance(value, str) or "\x00" in value or not _is_utf8(value):
        raise InvalidRequest(f"{name} must be a string.", field=name)
    if not value.strip() and required:
        raise InvalidRequest(f"{name} is required.", field=name)
    if len(value) > max_length:
        raise InvalidRequest(f"{name} is too long.", field=name)
    return value


def _is_utf8(value: str) -> bool:
    """JSON's `\\ud800` escapes decode to lone surrogates that no UTF-8 client library can send on."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def client_ip(request: flask.Request, trusted_hops: int = 1) -> str:
    """The caller's address as the last trusted proxy saw it.

    Each proxy appends the address it received the request from to the right of
    X-Forwarded-For; anything further left was written by the caller and cannot be
    trusted. Cloud Run's own front end appends one entry (TRUSTED_PROXY_HOPS=1, the
    rightmost); an external Application Load Balancer appends two (client, then the
    balancer), so there the caller is the second from the right (TRUSTED_PROXY_HOPS=2)."""
    hops = max(1, trusted_hops)
    entries = [e.strip() for e in request.headers.get("X-Forwarded-For", "").split(",")]
    # Fewer entries than hops: the request came through fewer proxies; the leftmost is the nearest we have.
    trusted = entries[-hops] if len(entries) >= hops else entries[0]
    return trusted or request.remote_addr or "unknown"  # an empty trusted entry: nothing to trust in the header


def _bearer(request: flask.Request) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def _no_content(allowed_origin: str | None) -> flask.Response:
    response = _json(204, {}, allowed_origin)
    response.set_data(b"")
    response.headers.pop("Content-Type", None)
    return response


def _json(status: int, payload: dict[str, Any], allowed_origin: str | None, headers: dict[str, str] | None = None) -> flask.Response:
    response = flask.Response(json.dumps(payload), status=status, mimetype="application/json")
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Vary"] = "Origin"
    if allowed_origin:
        response.headers["Access-Control-Allow-Origin"] = allowed_origin
        response.headers["Access-Control-Expose-Headers"] = "Retry-After"
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _render_error(exc: ApiError, allowed_origin: str | None) -> flask.Response:
    body = {"error": {"code": exc.code, "message": exc.message, **exc.data}}
    headers = {}
    if exc.retry_after is not None:
        headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
        body["error"]["retry_after"] = int(headers["Retry-After"])
    if isinstance(exc, MethodNotAllowed):
        headers["Allow"] = "GET, HEAD, POST, OPTIONS"
    return _json(exc.status, body, allowed_origin, headers)


def _preflight(allowed_origin: str | None) -> flask.Response:
    response = flask.Response(status=204)
    response.headers["Vary"] = "Origin"
    if allowed_origin:
        response.headers["Access-Control-Allow-Origin"] = allowed_origin
        response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
        response.headers["Access-Control-Allow-Headers"] = "Content-Type, Authorization"
        response.headers["Access-Control-Max-Age"] = "600"
    return response
