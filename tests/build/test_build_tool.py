"""tools/build.py on a synthetic checkout: layout, determinism, refusals.

These run whether or not the real functions exist yet; the real builds are
exercised in test_built_functions.py.
"""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tools import build as build_tool

REPO = Path(__file__).resolve().parents[2]


def make_tree(root: Path, name: str = "demo_fn", main: str | None = None, requirements: str = "flask==3.1.3\n") -> Path:
    fn = root / "functions" / name
    fn.mkdir(parents=True)
    (fn / "main.py").write_text(main or f"import otplogin\n\ndef {name}(request):\n    return otplogin.VALUE\n")
    (fn / "requirements.txt").write_text(requirements)
    (fn / "__pycache__").mkdir()
    (fn / "__pycache__" / "main.cpython-311.pyc").write_bytes(b"junk")
    lib = root / "shared" / "otplogin"
    (lib / "sms").mkdir(parents=True)
    (lib / "__init__.py").write_text("VALUE = 'vendored'\n")
    (lib / "py.typed").write_text("")
    (lib / "sms" / "__init__.py").write_text("")
    (lib / "sms" / "__pycache__").mkdir()
    (lib / "sms" / "__pycache__" / "x.pyc").write_bytes(b"junk")
    return root


def tree_files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def test_assembles_function_and_vendored_library(tmp_path):
    root = make_tree(tmp_path / "repo")
    out = tmp_path / "out"
    results = build_tool.build(["demo_fn"], root, out)
    folder = out / "demo_fn"
    assert tree_files(folder) == [
        "main.py",
        "otplogin/__init__.py",
        "otplogin/py.typed",
        "otplogin/sms/__init__.py",
        "requirements.txt",
    ]
    assert (folder / "otplogin" / "__init__.py").read_text() == "VALUE = 'vendored'\n"
    archive, digest = results["demo_fn"]
    assert archive == out / "demo_fn.zip"
    assert digest == hashlib.sha256(archive.read_bytes()).hexdigest()


def test_zip_is_exactly_the_folder_sorted_with_fixed_metadata(tmp_path):
    root = make_tree(tmp_path / "repo")
    out = tmp_path / "out"
    build_tool.build(["demo_fn"], root, out)
    with zipfile.ZipFile(out / "demo_fn.zip") as zf:
        infos = zf.infolist()
        names = [i.filename for i in infos]
        assert names == sorted(names) == tree_files(out / "demo_fn")
        for info in infos:
            assert info.date_time == (1980, 1, 1, 0, 0, 0)
            assert stat.S_IMODE(info.external_attr >> 16) == 0o644
            assert stat.S_ISREG(info.external_attr >> 16)
            assert info.create_system == 3
            assert zf.read(info) == (out / "demo_fn" / info.filename).read_bytes()


def test_same_inputs_same_bytes_whatever_mtimes_and_modes(tmp_path):
    root = make_tree(tmp_path / "repo")
    first = build_tool.build(["demo_fn"], root, tmp_path / "a")["demo_fn"][1]
    for path in root.rglob("*"):
        if path.is_file():
            os.utime(path, (1_900_000_000, 1_900_000_000))
            path.chmod(0o755)
    second = build_tool.build(["demo_fn"], root, tmp_path / "b")["demo_fn"][1]
    assert first == second
    # ... and a rebuild in place over a stale folder gives the same bytes too.
    (tmp_path / "a" / "demo_fn" / "stale.py").write_text("x = 1\n")
    assert build_tool.build(["demo_fn"], root, tmp_path / "a")["demo_fn"][1] == first
    # A real change changes the hash.
    (root / "shared" / "otplogin" / "__init__.py").write_text("VALUE = 'changed'\n")
    assert build_tool.build(["demo_fn"], root, tmp_path / "c")["demo_fn"][1] != first


def test_refuses_missing_entry_point(tmp_path):
    root = make_tree(tmp_path / "repo", main="def handler(request):\n    return 'x'\n")
    with pytest.raises(build_tool.BuildError, match="entry point"):
        build_tool.build(["demo_fn"], root, tmp_path / "out")


def test_refuses_unpinned_requirement(tmp_path):
    root = make_tree(tmp_path / "repo", requirements="flask==3.1.3\nrequests>=2\n")
    with pytest.raises(build_tool.BuildError, match="requirements.txt:2"):
        build_tool.build(["demo_fn"], root, tmp_path / "out")


def test_accepts_pins_with_extras_markers_and_comments(tmp_path):
    reqs = "# pinned\nPyJWT[crypto]==2.10.1  # tokens\nfoo==1.0; python_version >= '3.11'\n\n"
    root = make_tree(tmp_path / "repo", requirements=reqs)
    build_tool.build(["demo_fn"], root, tmp_path / "out")


def test_cli_prints_sha256_lines_and_rejects_unknown_names(tmp_path):
    root = make_tree(tmp_path / "repo")
    out = tmp_path / "out"
    cmd = [sys.executable, str(REPO / "tools" / "build.py"), "--root", str(root), "--out", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    digest = hashlib.sha256((out / "demo_fn.zip").read_bytes()).hexdigest()
    assert done.stdout == f"{digest}  {out / 'demo_fn.zip'}\n"
    bad = subprocess.run([*cmd, "nope"], capture_output=True, text=True)
    assert bad.returncode == 1
    assert "unknown function(s) nope" in bad.stderr
