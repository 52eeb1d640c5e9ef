#!/usr/bin/env python3
"""Check terraform/ against the hashicorp/google provider schema, offline.

Terraform providers cannot be downloaded on the build machines, so
``terraform validate`` cannot run. The schema still ships on PyPI: the wheel
``cdktf-cdktf-provider-google`` 16.12.1 embeds a jsii assembly generated from
hashicorp/google 6.50.0, in which every ``<Type>Config`` property documents
``docs/resources/<type>#<snake_name>`` (and nested block interfaces likewise).

Two commands:

``python tools/tf_schema.py regenerate``
    ``pip download --no-deps`` the wheel into a temporary folder, extract every
    resource and data source type with its argument names (nested blocks
    included) and write them to ``tools/google_provider_schema.json``
    (committed; only names, no types or descriptions, so it stays small).

``python tools/tf_schema.py check [DIR...]``  (default: terraform/)
    Parse every ``*.tf`` with python-hcl2 and report any unknown resource or
    data source type, and any unknown argument or nested block name, at any
    depth. Resources of other providers are checked against the small
    allow-list ``OTHER_PROVIDERS`` (hashicorp/time's ``time_sleep``); any other
    type is reported. Exit status 1 on a finding.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
SCHEMA_FILE = Path(__file__).resolve().parent / "google_provider_schema.json"
WHEEL = "cdktf-cdktf-provider-google"
WHEEL_VERSION = "16.12.1"
PROVIDER_VERSION = "6.50.0"
PREFIX = "@cdktf/provider-google."
DOC_LINK = re.compile(
    r"providers/hashicorp/google/([0-9.]+)/docs/(resources|data-sources)/([a-z0-9_]+)(?:#([a-z0-9_]+))?"
)
# An argument's documented anchor: docs/resources/<type>#<name>, or docs#<name> for the provider's own.
ANCHOR = re.compile(r"providers/hashicorp/google/[0-9.]+/docs(?:/(?:resources|data-sources)/[a-z0-9_]+)?#([a-z0-9_]+)")
PROVIDER_CONFIG = PREFIX + "provider.GoogleProviderConfig"
TYPE_LINK = re.compile(r"\{@link \S+/docs/(resources|data-sources)/[a-z0-9_]+ (google_[a-z0-9_]+)\}")

# Arguments Terraform itself accepts in every resource / data block.
META_ARGUMENTS = {"count", "for_each", "depends_on", "provider", "lifecycle", "provisioner", "connection"}
LIFECYCLE_ARGUMENTS = {
    "create_before_destroy",
    "prevent_destroy",
    "ignore_changes",
    "replace_triggered_by",
    "precondition",
    "postcondition",
}

Json = dict[str, Any]
Schema = dict[str, Any]  # argument name -> 0 (attribute) or a nested Schema (block / object)

# Resources of other providers, listed by hand (arguments from each provider's
# registry docs) and pinned in terraform/versions.tf. Anything not google_ and
# not here is reported, so a typo or a new provider cannot slip past the check.
OTHER_PROVIDERS: dict[str, dict[str, Schema]] = {
    # registry.terraform.io/providers/hashicorp/time/latest/docs/resources/sleep
    "hashicorp/time": {"time_sleep": {"create_duration": 0, "destroy_duration": 0, "triggers": 0}},
}
OTHER_RESOURCES: dict[str, Schema] = {t: s for types in OTHER_PROVIDERS.values() for t, s in types.items()}


# --------------------------------------------------------------------------- regenerate


def _docs_text(member: Json) -> str:
    """All of a member's documentation (summary, remarks, custom tags) as one text."""
    return json.dumps(member.get("docs", {}))


def _fqns(type_ref: Any) -> Iterator[str]:
    """Every provider interface named anywhere in a jsii type reference."""
    if isinstance(type_ref, dict):
        fqn = type_ref.get("fqn")
        if isinstance(fqn, str) and fqn.startswith(PREFIX):
            yield fqn
        for value in type_ref.values():
            yield from _fqns(value)
    elif isinstance(type_ref, list):
        for value in type_ref:
            yield from _fqns(value)


def _interface_schema(types: Json, fqn: str, stack: tuple[str, ...] = ()) -> Schema:
    schema: Schema = {}
    for prop in types[fqn].get("properties", []):
        match = ANCHOR.search(_docs_text(prop))
        if not match:
            # The documented anchor is the argument's real name; without one
            # (rare), fall back to cdktf's own camelCase -> snake_case mapping.
            name = re.sub(r"(?<!^)(?=[A-Z])", "_", prop["name"]).lower()
        else:
            name = match.group(1)
        nested = [f for f in _fqns(prop["type"]) if types.get(f, {}).get("kind") == "interface" and f not in stack]
        schema[name] = _interface_schema(types, nested[0], stack + (fqn,)) if nested else 0
    return schema


def extract(assembly: Json) -> Json:
    """``{"provider_config": Schema, "resource": {type: Schema}, "data": {type: Schema}}`` from a jsii assembly."""
    types = assembly["types"]
    found: dict[str, dict[str, Schema]] = {"resource": {}, "data": {}}
    provider_config = _interface_schema(types, PROVIDER_CONFIG) if PROVIDER_CONFIG in types else {}
    for cls in types.values():
        if cls.get("kind") != "class":
            continue
        init = cls.get("initializer") or {}
        match = TYPE_LINK.search(_docs_text(init))
        params = [p for p in init.get("parameters", []) if p.get("name") == "config"]
        if not match or not params:
            continue
        kind = "resource" if match.group(1) == "resources" else "data"
        config = params[0]["type"].get("fqn")
        if config in types:
            found[kind][match.group(2)] = _interface_schema(types, config)
    for kind in found:
        found[kind] = dict(sorted(found[kind].items()))
    return {"provider_config": provider_config, **found}


def load_assembly_from_wheel(wheel: Path) -> Json:
    with zipfile.ZipFile(wheel) as zf:
        member = next(n for n in zf.namelist() if n.endswith(".jsii.tgz"))
        blob = zf.read(member)
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
        handle = tar.extractfile("package/.jsii")
        if handle is None:
            raise ValueError(f"{wheel}: no package/.jsii in {member}")
        assembly: Json = json.load(handle)
        return assembly


def regenerate(output: Path = SCHEMA_FILE, wheel: Path | None = None) -> Json:
    with tempfile.TemporaryDirectory() as tmp:
        if wheel is None:
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "download",
                    "--no-deps",
                    "--quiet",
                    "-d",
                    tmp,
                    f"{WHEEL}=={WHEEL_VERSION}",
                ],
                check=True,
            )
            wheel = next(Path(tmp).glob("*.whl"))
        assembly = load_assembly_from_wheel(wheel)
    versions = {m.group(1) for m in DOC_LINK.finditer(json.dumps(assembly["types"]))}
    if versions != {PROVIDER_VERSION}:
        raise SystemExit(f"expected hashicorp/google {PROVIDER_VERSION}, the wheel documents {sorted(versions)}")
    schema = {
        "_source": f"pip download --no-deps {WHEEL}=={WHEEL_VERSION}; regenerate with python tools/tf_schema.py regenerate",
        "provider": "hashicorp/google",
        "version": PROVIDER_VERSION,
        **extract(assembly),
    }
    output.write_text(json.dumps(schema, sort_keys=False, separators=(",", ":")) + "\n", encoding="utf-8")
    return schema


# --------------------------------------------------------------------------- check


def load_schema(path: Path = SCHEMA_FILE) -> Json:
    schema: Json = json.loads(path.read_text(encoding="utf-8"))
    return schema


def parse_hcl(text: str) -> Json:
    import hcl2
    from hcl2.utils import SerializationOptions

    return hcl2.loads(text, serialization_options=SerializationOptions(strip_string_quotes=True, explicit_blocks=False))


def _bodies(value: Any) -> Iterator[Json]:
    """A block is parsed as a dict, or a list of dicts when repeated."""
    if isinstance(value, dict):
        yield value
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict):
                yield item


def _check_body(body: Json, schema: Schema, where: str, top: bool) -> Iterator[str]:
    for key, value in body.items():
        if key.startswith("__") or key.startswith("//"):  # parser annotations (comments, positions)
            continue
        if top and key in META_ARGUMENTS:
            if key == "lifecycle":
                for life in _bodies(value):
                    for arg in life:
                        if arg not in LIFECYCLE_ARGUMENTS and not arg.startswith("__"):
                            yield f"{where}: unknown lifecycle argument '{arg}'"
            continue
        if key == "dynamic":
            for dyn in _bodies(value):
                for block_name, spec in dyn.items():
                    if block_name.startswith("__"):
                        continue
                    nested = schema.get(block_name)
                    if not isinstance(nested, dict):
                        yield f"{where}: unknown block '{block_name}' (dynamic)"
                        continue
                    for content_spec in _bodies(spec):
                        for content in _bodies(content_spec.get("content", [])):
                            yield from _check_body(content, nested, f"{where}.{block_name}", False)
            continue
        if key not in schema:
            yield f"{where}: unknown argument '{key}'"
            continue
        nested = schema[key]
        if isinstance(nested, dict):
            for item in _bodies(value):
                yield from _check_body(item, nested, f"{where}.{key}", False)


def check_document(doc: Json, schema: Json, filename: str = "<hcl>") -> list[str]:
    problems: list[str] = []
    for group in _bodies(doc.get("provider", [])):
        for pname, body in group.items():
            if pname != "google":
                continue
            for item in _bodies(body):
                config = {k: v for k, v in item.items() if k != "alias"}
                problems.extend(_check_body(config, schema["provider_config"], f"{filename}: provider.google", False))
    for section, kind in (("resource", "resource"), ("data", "data")):
        for group in _bodies(doc.get(section, [])):
            for rtype, instances in group.items():
                for named in _bodies(instances):
                    for rname, body in named.items():
                        if rname.startswith("__"):
                            continue
                        where = f"{filename}: {'data.' if kind == 'data' else ''}{rtype}.{rname}"
                        if not rtype.startswith("google_"):
                            known = OTHER_RESOURCES if kind == "resource" else {}
                            if rtype not in known:
                                problems.append(
                                    f"{where}: unknown {kind} type '{rtype}': not hashicorp/google and not in the "
                                    f"allow-list of other providers ({', '.join(sorted(known)) or 'none'}; "
                                    "tools/tf_schema.py OTHER_PROVIDERS)"
                                )
                                continue
                            for item in _bodies(body):
                                problems.extend(_check_body(item, known[rtype], where, True))
                            continue
                        if rtype not in schema[kind]:
                            problems.append(
                                f"{where}: unknown {kind} type '{rtype}' in hashicorp/google {schema['version']}"
                            )
                            continue
                        for item in _bodies(body):
                            problems.extend(_check_body(item, schema[kind][rtype], where, True))
    return problems


def check_paths(paths: list[Path], schema: Json | None = None) -> list[str]:
    schema = schema or load_schema()
    problems: list[str] = []
    for base in paths:
        files = sorted(base.rglob("*.tf")) if base.is_dir() else [base]
        for tf in files:
            if ".terraform" in tf.parts:
                continue
            problems.extend(check_document(parse_hcl(tf.read_text(encoding="utf-8")), schema, str(tf)))
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    sub = parser.add_subparsers(dest="command", required=True)
    regen = sub.add_parser("regenerate", help="rebuild the cached schema from the PyPI wheel")
    regen.add_argument("--wheel", type=Path, help="use this already-downloaded wheel")
    regen.add_argument("--output", type=Path, default=SCHEMA_FILE)
    check = sub.add_parser("check", help="check Terraform files against the cached schema")
    check.add_argument("paths", nargs="*", type=Path, default=[REPO_ROOT / "terraform"])
    args = parser.parse_args(argv)
    if args.command == "regenerate":
        schema = regenerate(args.output, args.wheel)
        print(f"{args.output}: {len(schema['resource'])} resource types, {len(schema['data'])} data sources")
        return 0
    problems = check_paths(args.paths)
    for problem in problems:
        print(problem)
    print(
        f"schema check: {len(problems)} problem(s) against hashicorp/google {load_schema()['version']}", file=sys.stderr
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
