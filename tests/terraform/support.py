"""Helpers for the offline Terraform checks: parse terraform/ with python-hcl2."""

from __future__ import annotations

import os
import re
import shutil
from functools import cache
from pathlib import Path

from tools import tf_schema

REPO = Path(__file__).resolve().parents[2]
TERRAFORM = REPO / "terraform"


@cache
def parsed() -> dict[str, dict]:
    """{file name: parsed document} for every *.tf of the root module."""
    return {p.name: tf_schema.parse_hcl(p.read_text(encoding="utf-8")) for p in sorted(TERRAFORM.glob("*.tf"))}


def blocks(kind: str) -> list[dict]:
    found = []
    for doc in parsed().values():
        for item in doc.get(kind, []):
            found.append(item)
    return found


def resources(rtype: str | None = None) -> dict[tuple[str, str], dict]:
    """{(type, name): body} of every managed resource."""
    found: dict[tuple[str, str], dict] = {}
    for group in blocks("resource"):
        for t, named in group.items():
            for name, body in named.items():
                if rtype is None or t == rtype:
                    found[(t, name)] = body
    return found


def resource(rtype: str, name: str) -> dict:
    return resources(rtype)[(rtype, name)]


def locals_() -> dict:
    merged: dict = {}
    for group in blocks("locals"):
        merged.update({k: v for k, v in group.items() if not k.startswith("__")})
    return merged


def variables() -> dict[str, dict]:
    merged: dict[str, dict] = {}
    for group in blocks("variable"):
        merged.update(group)
    return merged


def outputs() -> dict[str, dict]:
    merged: dict[str, dict] = {}
    for group in blocks("output"):
        merged.update(group)
    return merged


def single(value):
    """A nested block parses as a list of one dict."""
    if isinstance(value, list):
        assert len(value) == 1, value
        return value[0]
    return value


def comments(body: dict) -> list[str]:
    return [c["value"] for c in body.get("__comments__", [])]


def walk_strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from walk_strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from walk_strings(v)


def terraform_bin() -> str:
    found = os.environ.get("TERRAFORM") or shutil.which("terraform")
    assert found, "terraform not found on PATH (needed for `terraform fmt`; set TERRAFORM=/path/to/terraform)"
    return found


def checkov_bin() -> str:
    """checkov lives in its own venv: its bc-python-hcl2 fork installs a module
    named `hcl2` too, which would overwrite python-hcl2 8 in the project venv."""
    candidates = [
        os.environ.get("CHECKOV"),
        str(REPO / ".venv" / "checkov" / "bin" / "checkov"),
        shutil.which("checkov"),
    ]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return candidate
    raise AssertionError(
        "checkov not found: install it in its own venv "
        "(python3 -m venv .venv/checkov && .venv/checkov/bin/pip install checkov==3.3.30) or set CHECKOV=/path/to/checkov"
    )


# --- references between blocks (what Terraform orders the graph by) ------------------

# `type.name` of a managed resource, `data.type.name` of a data source, `local.name`.
REFERENCE = re.compile(r"\b(data\.[a-z0-9_]+\.[a-z0-9_]+|local\.[a-z0-9_]+|(?:google|time)_[a-z0-9_]+\.[a-z0-9_]+)")


def references(value) -> set[str]:
    """Every resource, data source and local a block names (expressions and depends_on)."""
    found: set[str] = set()
    for text in walk_strings(value):
        found |= set(REFERENCE.findall(text))
    return found


def data_sources() -> dict[str, dict]:
    """{"data.type.name": body} of every data block."""
    found: dict[str, dict] = {}
    for group in blocks("data"):
        for t, named in group.items():
            for name, body in named.items():
                found[f"data.{t}.{name}"] = body
    return found


def upstream(address: str) -> set[str]:
    """Every resource and data source `address` ("type.name") depends on, directly or
    through locals and other resources: what Terraform creates (or reads) before it."""
    bodies: dict[str, object] = {f"{t}.{n}": body for (t, n), body in resources().items()}
    bodies.update(data_sources())
    bodies.update({f"local.{k}": v for k, v in locals_().items()})
    seen: set[str] = set()
    todo = list(references(bodies[address]))
    while todo:
        ref = todo.pop()
        if ref in seen or ref not in bodies:
            continue
        seen.add(ref)
        todo.extend(references(bodies[ref]))
    return {ref for ref in seen if not ref.startswith("local.")}


def duration_seconds(text: str) -> int:
    """ "90s", "10m", "1h30m" (time_sleep and Google API durations) in seconds."""
    match = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", text)
    assert match and text, f"not a duration: {text!r}"
    h, m, s = (int(g or 0) for g in match.groups())
    return h * 3600 + m * 60 + s
