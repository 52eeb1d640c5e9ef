#!/usr/bin/env python3
"""Assemble the Cloud Functions source folders and their deterministic archives.

For every function ``functions/<name>/`` this writes

* ``<out>/<name>/``: the function's own files (``main.py``, ``requirements.txt``,
  anything else in its folder) plus the shared library vendored as
  ``<out>/<name>/otplogin/``: exactly the folder Cloud Functions uploads;
* ``<out>/<name>.zip``: a deterministic archive of that folder (sorted entries,
  fixed timestamps, fixed permissions, entries stored uncompressed so the bytes do
  not depend on the build host's zlib): the same inputs give the same bytes, so
  the same SHA-256 on a laptop and in CI, so Terraform (which names each uploaded
  object by that hash) redeploys only the functions whose inputs changed.

It prints one ``<sha256>  <zip path>`` line per function (``sha256sum`` format).

Usage::

    python tools/build.py [--out build] [--root REPO] [names...]

Only the standard library is used: CI runs it before anything is installed.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import re
import shutil
import stat
import sys
import zipfile
from pathlib import Path, PurePosixPath

REPO_ROOT = Path(__file__).resolve().parent.parent
LIBRARY = "otplogin"

# 1980-01-01 00:00:00 is the earliest time a zip entry can carry.
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o644
# Never shipped: caches, editor and VCS droppings, tests.
EXCLUDED_NAMES = {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", "tests", ".git", ".DS_Store"}
EXCLUDED_SUFFIXES = (".pyc", ".pyo", ".egg-info")
# A requirement line we accept: ``name[extras]==version`` with an optional marker / comment.
PINNED = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9._,-]+\])?\s*==\s*[A-Za-z0-9.*+!_-]+\s*(;.*)?$")


class BuildError(Exception):
    """A function folder that cannot be turned into a deployable build."""


def function_names(root: Path) -> list[str]:
    """Every ``functions/<name>/`` that has a ``main.py``, sorted."""
    base = root / "functions"
    if not base.is_dir():
        return []
    return sorted(p.parent.name for p in base.glob("*/main.py"))


def _excluded(path: Path) -> bool:
    return path.name in EXCLUDED_NAMES or path.name.endswith(EXCLUDED_SUFFIXES) or path.name.startswith(".")


def _files(src: Path) -> list[Path]:
    """Regular files under ``src`` (relative), excluded names pruned, sorted."""
    found: list[Path] = []
    for path in sorted(src.iterdir()):
        if _excluded(path):
            continue
        if path.is_symlink():
            raise BuildError(f"{path}: symbolic links are not shipped; copy the file instead")
        if path.is_dir():
            found.extend(Path(path.name) / sub for sub in _files(path))
        elif path.is_file():
            found.append(Path(path.name))
    return found


def check_function_source(name: str, src: Path) -> None:
    """Fail early, before an upload, on what would make the deployment fail."""
    main = src / "main.py"
    req = src / "requirements.txt"
    if not main.is_file():
        raise BuildError(f"{src}: no main.py")
    if not req.is_file():
        raise BuildError(f"{src}: no requirements.txt (each function lists what it imports, pinned)")
    tree = ast.parse(main.read_bytes(), filename=str(main))
    top_level = (
        {node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}
        | {
            target.id
            for node in tree.body
            if isinstance(node, ast.Assign)
            for target in node.targets
            if isinstance(target, ast.Name)
        }
        | {
            (alias.asname or alias.name)
            for node in tree.body
            if isinstance(node, ast.ImportFrom)
            for alias in node.names
        }
    )
    if name not in top_level:
        raise BuildError(f"{main}: no top-level '{name}': the entry point must be named like its folder")
    for number, raw in enumerate(req.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if not PINNED.match(line):
            raise BuildError(f"{req}:{number}: '{raw.strip()}' is not pinned as name==version")
    if (src / LIBRARY).exists():
        raise BuildError(f"{src}: has its own '{LIBRARY}', which would shadow the vendored shared library")


def assemble(name: str, root: Path, out: Path) -> Path:
    """Write ``out/<name>/``: the function's files plus the vendored library."""
    src = root / "functions" / name
    lib = root / "shared" / LIBRARY
    if not src.is_dir():
        raise BuildError(f"no function folder {src}")
    if not (lib / "__init__.py").is_file():
        raise BuildError(f"no shared library package at {lib}")
    check_function_source(name, src)
    dest = out / name
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for source_dir, target_dir in ((src, dest), (lib, dest / LIBRARY)):
        for rel in _files(source_dir):
            target = target_dir / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source_dir / rel, target)
            target.chmod(FILE_MODE)
    return dest


def write_zip(folder: Path, archive: Path) -> str:
    """Write a deterministic zip of ``folder``; return its SHA-256 (hex)."""
    entries = sorted(PurePosixPath(*rel.parts).as_posix() for rel in _files(folder))
    tmp = archive.with_name(archive.name + ".tmp")
    with zipfile.ZipFile(tmp, "w") as zf:
        for entry in entries:
            info = zipfile.ZipInfo(entry, date_time=ZIP_EPOCH)
            info.create_system = 3  # Unix, whatever the build host is
            info.external_attr = (stat.S_IFREG | FILE_MODE) << 16
            # Stored, not deflated: zlib builds (zlib, zlib-ng) differ in their
            # output, stored bytes do not. Sources are small; the upload is too.
            info.compress_type = zipfile.ZIP_STORED
            zf.writestr(info, (folder / entry).read_bytes())
    tmp.replace(archive)
    return hashlib.sha256(archive.read_bytes()).hexdigest()


def build(names: list[str], root: Path = REPO_ROOT, out: Path = Path("build")) -> dict[str, tuple[Path, str]]:
    """Build each function; return ``{name: (zip path, sha256)}``."""
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, tuple[Path, str]] = {}
    for name in names:
        folder = assemble(name, root, out)
        archive = out / f"{name}.zip"
        results[name] = (archive, write_zip(folder, archive))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("names", nargs="*", help="functions to build (default: every functions/<name>/main.py)")
    parser.add_argument("--out", type=Path, default=Path("build"), help="output folder (default: build)")
    parser.add_argument("--root", type=Path, default=REPO_ROOT, help="repository root (default: this checkout)")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    available = function_names(root)
    names = args.names or available
    if not names:
        print(f"build: no functions/<name>/main.py under {root}", file=sys.stderr)
        return 1
    unknown = sorted(set(names) - set(available))
    if unknown:
        print(
            f"build: unknown function(s) {', '.join(unknown)}; known: {', '.join(available) or 'none'}", file=sys.stderr
        )
        return 1
    try:
        results = build(sorted(set(names)), root, args.out)
    except BuildError as exc:
        print(f"build: {exc}", file=sys.stderr)
        return 1
    for archive, digest in results.values():
        print(f"{digest}  {archive}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
