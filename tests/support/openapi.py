"""openapi.yaml as a test oracle: load it, and check a real answer against it.

The document prefixes each function's operations with the function's name
(`/send_otp/healthz`); a function itself is served at its URL's root
(`/healthz`). `spec_request` does that mapping, so a Flask test client's
answer is validated against the operation the spec gives for it.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest

REPO = Path(__file__).resolve().parents[2]
SPEC_PATH = REPO / "openapi.yaml"
# Matches the document's server template https://{region}-{project}.cloudfunctions.net.
SERVER = "https://europe-west1-demo-otp.cloudfunctions.net"


@lru_cache(maxsize=1)
def spec_dict() -> dict[str, Any]:
    """The document as plain data (YAML anchors resolved)."""
    return yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def openapi() -> OpenAPI:
    return OpenAPI.from_file_path(str(SPEC_PATH))


def spec_path(function: str, path: str = "/") -> str:
    """`("send_otp", "/healthz")` -> `/send_otp/healthz`; the root is `/send_otp`."""
    return f"/{function}" + ("" if path in ("", "/") else path)


def spec_request(function: str, method: str, path: str = "/", body: Any = None) -> MockRequest:
    data = None if body is None else json.dumps(body).encode()
    return MockRequest(SERVER, method, spec_path(function, path), data=data)


def validate_response(function: str, method: str, path: str, response: Any) -> None:
    """Raise (openapi-core's error, naming what differs) unless `response` is what the
    spec allows for this operation and status: status listed, required headers
    present and well-typed, body matching the schema."""
    openapi().validate_response(spec_request(function, method, path), response)


def validate_request(function: str, method: str, body: Any, path: str = "/") -> None:
    """Raise unless `body` is a request the spec allows."""
    openapi().validate_request(spec_request(function, method, path, body))


def resolve(node: Any) -> Any:
    """Follow one local `$ref` (`#/components/...`), if `node` is one."""
    while isinstance(node, dict) and "$ref" in node:
        target: Any = spec_dict()
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def operations() -> dict[tuple[str, str], dict[str, Any]]:
    """{(spec path, METHOD): operation} for every operation in the document."""
    methods = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
    return {
        (path, method.upper()): op
        for path, item in spec_dict()["paths"].items()
        for method, op in item.items()
        if method in methods
    }


def statuses(function: str, method: str, path: str = "/") -> set[int]:
    return {int(s) for s in operations()[(spec_path(function, path), method)]["responses"]}


def error_schema_codes(schema_name: str) -> list[str] | None:
    """The code a per-code error schema (`InvalidPhoneError`...) pins, or None if `schema_name`
    is not one (`allOf: [Error, {properties: {error: {properties: {code: {enum: [...]}}}}}]`)."""
    schema = spec_dict()["components"]["schemas"][schema_name]
    parts = schema.get("allOf", [])
    if not parts or parts[0] != {"$ref": "#/components/schemas/Error"}:
        return None
    return parts[1]["properties"]["error"]["properties"]["code"]["enum"]


def error_codes_by_status() -> list[tuple[str, int, str]]:
    """(operation, status, error code) for every per-code error schema a response names."""
    found = []
    for (path, method), op in operations().items():
        for status, response in op["responses"].items():
            content = resolve(response).get("content", {}).get("application/json")
            if not content:
                continue
            schema = content["schema"]
            for ref in [schema, *schema.get("oneOf", [])]:
                name = ref.get("$ref", "").rpartition("/")[2]
                for code in (error_schema_codes(name) if name else None) or []:
                    found.append((f"{method} {path}", int(status), code))
    return found
