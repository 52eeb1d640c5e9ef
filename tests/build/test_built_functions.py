"""The real function builds: each imports from its build folder alone.

The probe runs the venv's interpreter with ``-I -S``: no PYTHONPATH, no user
site, no current directory on the path, and no ``site`` processing at all, so
the editable install of ``otplogin`` (a .pth import hook pointing at shared/)
is never activated. Third-party packages come from the venv's site-packages,
appended by hand. The only ``otplogin`` reachable is the vendored copy.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tools import build as build_tool

REPO = Path(__file__).resolve().parents[2]
FUNCTIONS = ("send_otp", "verify_otp", "login")

PROBE = r"""
import json, sys
build_dir, site_dirs, name = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
sys.path.insert(0, build_dir)
sys.path.extend(site_dirs)
import main
import otplogin
entry = getattr(main, name, None)
loaded = {m: getattr(mod, "__file__", None) for m, mod in list(sys.modules.items())}
# Only now (so they do not count as imported by the function) the tools to
# resolve files to distributions and requirements to their closure.
import importlib.metadata as md
import os.path
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

owner = {}
for dist in md.distributions():
    for f in dist.files or ():
        owner[os.path.realpath(dist.locate_file(f))] = canonicalize_name(dist.metadata["Name"])
imported, unowned = set(), set()
for mod, path in loaded.items():
    if path and any(os.path.realpath(path).startswith(os.path.realpath(d) + os.sep) for d in site_dirs):
        dist = owner.get(os.path.realpath(path))
        (imported.add(dist) if dist else unowned.add(mod))

closure, missing = set(), set()
with open(os.path.join(build_dir, "requirements.txt")) as fh:
    stack = [Requirement(l.split(" #")[0].strip()) for l in fh if l.strip() and not l.strip().startswith("#")]
declared = sorted(canonicalize_name(r.name) for r in stack)
seen = set()
while stack:
    req = stack.pop()
    key = (canonicalize_name(req.name), tuple(sorted(req.extras)))
    if key in seen:
        continue
    seen.add(key)
    try:
        dist = md.distribution(req.name)
    except md.PackageNotFoundError:
        missing.add(req.name)
        continue
    closure.add(key[0])
    for spec in dist.requires or ():
        sub = Requirement(spec)
        extras = req.extras or {""}
        if sub.marker and not any(sub.marker.evaluate({"extra": e}) for e in extras):
            continue
        stack.append(sub)

from functions_framework import create_app
app = create_app(name, os.path.join(build_dir, "main.py"))
print(json.dumps({
    "entry_callable": callable(entry),
    "otplogin_file": otplogin.__file__,
    "module_files": {m: p for m, p in loaded.items() if p},
    "imported_dists": sorted(imported),
    "unowned_modules": sorted(unowned),
    "declared": declared,
    "closure": sorted(closure),
    "not_installed": sorted(missing),
    "app": type(app).__name__,
}))
"""


def site_dirs() -> list[str]:
    paths = sysconfig.get_paths()
    return sorted({paths["purelib"], paths["platlib"]})


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Build every function that exists, once, into a temporary folder."""
    names = list(FUNCTIONS)
    out = tmp_path_factory.mktemp("build")
    results = {}
    for name in names:
        try:
            results[name] = build_tool.build([name], REPO, out)[name]
        except build_tool.BuildError as exc:  # reported per function, below
            results[name] = exc
    return out, results


def run_probe(out: Path, name: str) -> subprocess.CompletedProcess:
    folder = out / name
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONNOUSERSITE": "1",
        "HOME": str(out),
        "LANG": "C.UTF-8",
    }
    return subprocess.run(
        [sys.executable, "-I", "-S", "-c", PROBE, str(folder), json.dumps(site_dirs()), name],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def probe(out: Path, name: str) -> dict:
    done = run_probe(out, name)
    assert done.returncode == 0, f"importing build/{name}/main.py in isolation failed:\n{done.stderr[-4000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def probes(built):
    out, results = built
    return {name: probe(out, name) for name, result in results.items() if not isinstance(result, Exception)}


def require(name: str, built) -> None:
    result = built[1][name]
    if isinstance(result, Exception):
        pytest.fail(f"build of {name} failed: {result}")


@pytest.mark.parametrize("name", FUNCTIONS)
def test_build_is_reproducible(name, built, tmp_path):
    require(name, built)
    again = build_tool.build([name], REPO, tmp_path)[name][1]
    assert again == built[1][name][1]


@pytest.mark.parametrize("name", FUNCTIONS)
def test_imports_from_build_folder_alone(name, built, probes):
    require(name, built)
    out = built[0]
    result = probes[name]
    folder = (out / name).resolve()
    assert result["entry_callable"], f"main.{name} is not callable"
    assert result["app"] == "Flask"
    assert Path(result["otplogin_file"]).resolve().is_relative_to(folder), result["otplogin_file"]
    # Nothing was imported from the checkout (shared/, functions/): only the
    # build folder, the standard library and the venv's site-packages.
    allowed = [folder, *(Path(d).resolve() for d in site_dirs()), Path(sysconfig.get_paths()["stdlib"]).resolve()]
    stray = {
        m: p for m, p in result["module_files"].items() if not any(Path(p).resolve().is_relative_to(a) for a in allowed)
    }
    assert not stray, f"modules imported from outside the build: {stray}"


@pytest.mark.parametrize("name", FUNCTIONS)
def test_requirements_cover_what_the_build_imports(name, built, probes):
    require(name, built)
    result = probes[name]
    assert not result["not_installed"], f"{name}: requirements not installed in the venv: {result['not_installed']}"
    undeclared = sorted(set(result["imported_dists"]) - set(result["closure"]))
    assert not undeclared, f"{name} imports {undeclared} but its requirements.txt does not bring them in"
    assert not result["unowned_modules"], f"{name}: modules of no known distribution: {result['unowned_modules']}"


def test_verify_otp_build_carries_no_twilio(built, probes):
    require("verify_otp", built)
    result = probes["verify_otp"]
    assert "twilio" not in result["declared"]
    assert "twilio" not in result["closure"]
    assert "twilio" not in result["imported_dists"]
    assert not [m for m in result["module_files"] if m == "twilio" or m.startswith("twilio.")]
    lines = (built[0] / "verify_otp" / "requirements.txt").read_text().lower().splitlines()
    assert not [line for line in lines if "twilio" in line.split("#", 1)[0]]


# --- The probe itself can fail: a synthetic function shows what it catches. ---


def fake_checkout(root: Path, main: str, requirements: str) -> Path:
    (root / "functions" / "fake_fn").mkdir(parents=True)
    (root / "functions" / "fake_fn" / "main.py").write_text(main)
    (root / "functions" / "fake_fn" / "requirements.txt").write_text(requirements)
    (root / "shared" / "otplogin").mkdir(parents=True)
    (root / "shared" / "otplogin" / "__init__.py").write_text("MARK = 'vendored'\n")
    return root


FAKE_MAIN = "import functions_framework\nimport otplogin\n{extra}\n@functions_framework.http\ndef fake_fn(request):\n    return otplogin.MARK\n"
FF_PIN = "functions-framework==3.10.2\n"


def test_probe_passes_a_clean_fake_function(tmp_path):
    root = fake_checkout(tmp_path / "repo", FAKE_MAIN.format(extra=""), FF_PIN)
    build_tool.build(["fake_fn"], root, tmp_path / "out")
    result = probe(tmp_path / "out", "fake_fn")
    assert Path(result["otplogin_file"]).resolve().is_relative_to((tmp_path / "out" / "fake_fn").resolve())
    assert set(result["imported_dists"]) <= set(result["closure"])


def test_probe_sees_an_undeclared_import(tmp_path):
    root = fake_checkout(tmp_path / "repo", FAKE_MAIN.format(extra="import twilio"), FF_PIN)
    build_tool.build(["fake_fn"], root, tmp_path / "out")
    result = probe(tmp_path / "out", "fake_fn")
    assert "twilio" in result["imported_dists"]
    assert "twilio" not in result["closure"]


def test_probe_cannot_reach_the_editable_shared_library(tmp_path):
    """Without the vendored copy the import fails: shared/ is not on the path."""
    root = fake_checkout(tmp_path / "repo", FAKE_MAIN.format(extra=""), FF_PIN)
    build_tool.build(["fake_fn"], root, tmp_path / "out")
    import shutil

    shutil.rmtree(tmp_path / "out" / "fake_fn" / "otplogin")
    done = run_probe(tmp_path / "out", "fake_fn")
    assert done.returncode != 0
    assert "No module named 'otplogin'" in done.stderr
