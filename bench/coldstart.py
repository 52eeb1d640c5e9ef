"""Cold start: importing main.py in a fresh interpreter, and a new instance's first response."""

from __future__ import annotations

import statistics
import subprocess
import sys
from pathlib import Path

from bench import seed
from bench.processes import Instance
from bench.stats import ratio

REPO = Path(__file__).resolve().parents[1]
PROBE = REPO / "bench" / "import_probe.py"
FUNCTIONS = ("send_otp", "verify_otp", "login")
# The first response after process start, against a floor doing the same work with raw clients.
# (Import time alone is reported, not a target. Both sides import their clients at load:
# main.py through runtime.load_before_fork, the floor at its top.)
FIRST_RESPONSE_TARGET = 1.10


def precompile() -> list[str]:
    """Byte-compile the project's own sources (library, functions, floor) before any cold start.

    Every dependency in the venv was compiled by pip at install; without this, a machine with
    PYTHONDONTWRITEBYTECODE set (as CI machines often are) would compile the library from source
    at every process start and the floor's single file only, so the two sides would not do the
    same work. Returns what was compiled (for the results)."""
    import compileall

    trees = [REPO / "shared" / "otplogin", REPO / "functions", REPO / "bench" / "floor_app"]
    for tree in trees:
        if not compileall.compile_dir(str(tree), quiet=1):
            raise RuntimeError(f"could not byte-compile {tree}")
    return [str(t.relative_to(REPO)) for t in trees]


def _probe(mode: str, function: str) -> dict:
    out = subprocess.run([sys.executable, str(PROBE), mode, function], capture_output=True, text=True,  # noqa: S603
                         check=True, cwd=REPO)
    import json

    return json.loads(out.stdout.strip().splitlines()[-1])


def imports(repeats: int) -> dict:
    """Median import time of main.py vs the floor, per function, runs alternating main/floor."""
    precompile()
    results = {}
    for function in FUNCTIONS:
        _probe("main", function), _probe("floor", function)  # warm the page cache
        runs: dict[str, list[float]] = {"main": [], "floor": []}
        loaded: dict[str, list[str]] = {}
        for i in range(repeats):
            for mode in (("main", "floor") if i % 2 == 0 else ("floor", "main")):
                probe = _probe(mode, function)
                runs[mode].append(probe["ms"])
                loaded[mode] = probe["loaded"]
        main_ms, floor_ms = statistics.median(runs["main"]), statistics.median(runs["floor"])
        results[function] = {
            "import_main_ms": round(main_ms, 1),
            "import_floor_ms": round(floor_ms, 1),
            "ratio": ratio(main_ms, floor_ms),
            "runs": repeats,
            "main_loads": loaded["main"],
            "floor_imports": loaded["floor"],
        }
    return results


def first_responses(env: dict[str, str], concurrency: dict[str, int], repeats: int, users: seed.UserSeeder) -> dict:
    """From process spawn to the first answered POST (imports, server start, clients, secrets, work)."""
    users.grow_to(max(users.count, 1))
    precompile()
    results = {}
    for function in FUNCTIONS:
        runs: dict[str, list[dict]] = {"function": [], "floor": []}
        for i in range(-1, repeats):  # round -1 is discarded: it warms the emulator, Prism and the page cache
            for kind in (("function", "floor") if i % 2 == 0 else ("floor", "function")):
                body, expected = _first_body(function, kind == "floor")
                with Instance(function, env, threads=concurrency[function], floor=kind == "floor") as inst:
                    inst.spawn()
                    timing = inst.first_response(body, expected)
                if i >= 0:
                    runs[kind].append(timing)
        med = {
            kind: {key: round(statistics.median(r[key] for r in rs), 1) for key in ("listen_ms", "first_response_ms")}
            for kind, rs in runs.items()
        }
        quartiles = {kind: [round(q, 1) for q in statistics.quantiles([r["first_response_ms"] for r in rs], n=4)]
                     if len(rs) > 1 else [] for kind, rs in runs.items()}
        results[function] = {
            "function": med["function"],
            "floor": med["floor"],
            "quartiles_ms": quartiles,  # first response, 25th/50th/75th percentile: the spread behind the median
            "ratio": ratio(med["function"]["first_response_ms"], med["floor"]["first_response_ms"]),
            "target": FIRST_RESPONSE_TARGET,
            "met": med["function"]["first_response_ms"] <= FIRST_RESPONSE_TARGET * med["floor"]["first_response_ms"],
            "runs": repeats,
        }
    return results


def _first_body(function: str, floor: bool) -> tuple[dict, int]:
    if function == "verify_otp":
        if floor:
            from bench.warm import verify_paths

            return verify_paths("first", seed.phones("first", 1)[0].lstrip("+")), 200
        phone = seed.phones("first", 1)[0]
        seed.seed_codes([phone])
        return {"phone": phone, "code": seed.CODE}, 200
    if function == "send_otp":
        phone = seed.phones("first", 1)[0]
        if floor:
            import time

            from bench.warm import _send_paths  # the same documents as the warm floor: they cannot drift apart

            paths = _send_paths("first", phone, "203.0.113.1", int(time.time() // 3600))
            return {**paths, "to": phone, "text": "Your code is 123456."}, 202
        return {"phone": phone, "channel": "sms", "locale": "en"}, 202
    if floor:
        return {"path": f"users/{seed.user_code(0)}", "password": seed.PASSWORD}, 200
    return {"email": seed.user_email(0), "password": seed.PASSWORD}, 200
