"""`make bench`: cold start, warm latency, round trips, scaling and memory, each against its floor.

    .venv/bin/python bench/run.py [--quick] [--out bench/results.json] [--users-max N]

Starts its own Firestore emulator, local Secret Manager and Prism (Twilio's
contract) on free ports, measures, writes the results as JSON and prints a
table. `--quick` (or BENCH_SIZE=quick) is the reduced CI run (about 2
minutes); the full run seeds the users collection up to 100,000 documents.
Absolute times on a shared 2-core machine are noisy: every figure is a median
of repeated runs and every target is a ratio to a floor measured in the same run.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench import coldstart, report, roundtrips, scaling, seed, sessions, warm  # noqa: E402
from bench.inproc import Functions, RawFloor  # noqa: E402
from bench.stack import Stack  # noqa: E402

FULL = {
    "import_repeats": 9,
    "first_response_repeats": 25,  # a cold start varies by +-15 % here: 25 per side hold the median to a few %
    "warm": {"verify_otp": 2000, "send_otp": 1500, "login": 400},
    "warmup": 30,
    "load": {"verify_otp": 600, "send_otp": 400, "login": 160},
    "users_sizes": [100, 1_000, 10_000, 100_000],
    "users_samples": 40,
    "memory_rounds": 10,
    "contention": 200,
}
QUICK = {
    "import_repeats": 3,
    "first_response_repeats": 1,
    "warm": {"verify_otp": 150, "send_otp": 100, "login": 40},
    "warmup": 15,
    "load": {"verify_otp": 96, "send_otp": 64, "login": 32},
    "users_sizes": [100, 1_000],
    "users_samples": 12,
    "memory_rounds": 3,
    "contention": 64,
}
PACKAGES = ("functions-framework", "gunicorn", "Flask", "google-cloud-firestore", "google-cloud-secret-manager",
            "grpcio", "twilio", "cryptography", "PyJWT", "phonenumbers")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmarks against their floors (see bench/README.md).")
    parser.add_argument("--quick", action="store_true", default=os.environ.get("BENCH_SIZE") == "quick",
                        help="reduced sizes for CI (also BENCH_SIZE=quick)")
    parser.add_argument("--out", help="where to write the JSON results (full: bench/results.json, quick: "
                        "bench/results-quick.json); a run that misses a target writes <out>.missed.json instead")
    parser.add_argument("--users-max", type=int, help="largest users collection to measure (full: 100000)")
    args = parser.parse_args(argv)
    cfg = dict(QUICK if args.quick else FULL)
    if args.users_max:
        cfg["users_sizes"] = [s for s in (100, 1_000, 10_000, 100_000, 1_000_000) if s < args.users_max] + [args.users_max]

    started = time.perf_counter()
    timings: dict[str, float] = {}

    def step(name: str):
        print(f"[bench] {name} ...", file=sys.stderr, flush=True)
        timings[name] = time.perf_counter()

    def done(name: str) -> None:
        timings[name] = round(time.perf_counter() - timings[name], 1)

    results: dict = {"meta": _meta(args.quick, cfg)}
    sizing = scaling.terraform_sizing()
    results["meta"]["sizing"] = sizing

    step("cold start: imports")
    imports = coldstart.imports(cfg["import_repeats"])
    done("cold start: imports")

    with Stack() as stack:
        env = stack.env()
        fns, bare = Functions(env), RawFloor(env)
        users = seed.UserSeeder()

        step("warm latency")
        results["warm_latency"] = {
            "verify_otp": warm.verify_otp(fns, bare, cfg["warm"]["verify_otp"], cfg["warmup"]),
            "send_otp": warm.send_otp(fns, bare, cfg["warm"]["send_otp"], cfg["warmup"]),
            "login": warm.login(fns, bare, users, cfg["warm"]["login"], cfg["warmup"]),
        }
        done("warm latency")

        step("refresh")
        results["sessions"] = {"refresh": sessions.refresh(fns, bare, cfg["warm"]["login"], cfg["warmup"])}
        done("refresh")

        step("users growth")
        growth = scaling.users_growth(fns, users, cfg["users_sizes"], cfg["users_samples"])
        done("users growth")

        step("send contention")
        contention = scaling.send_contention(env, cfg["contention"])
        done("send contention")

        step("round trips")
        results["round_trips"] = _round_trips(results["warm_latency"], roundtrips.outcomes(fns, users))
        done("round trips")

        step("cold start: first responses")
        concurrency = {name: s["concurrency"] for name, s in sizing.items()}
        first = coldstart.first_responses(env, concurrency, cfg["first_response_repeats"], users)
        results["cold_start"] = {"import": imports, "first_response": first,
                                 "bytecode": "project sources precompiled before the runs (coldstart.precompile)"}
        done("cold start: first responses")

        step("throughput")
        results["scaling"] = {"throughput": scaling.throughput(env, sizing, cfg["load"], users), "users_growth": growth,
                              "send_contention": contention}
        done("throughput")

        step("memory")
        results["memory"] = scaling.login_memory(env, sizing, cfg["memory_rounds"])
        done("memory")

    results["meta"]["seconds"] = round(time.perf_counter() - started, 1)
    results["meta"]["section_seconds"] = timings
    return publish(results, Path(args.out) if args.out else None)


def publish(results: dict, out: Path | None = None) -> int:
    """Check the targets, write the results and the table, and say whether the run passed (exit status).

    The results file only ever comes from a run that met every target it gates; a run that
    missed one writes <out>.missed.json (and .txt) beside it and exits 1."""
    mode = results["meta"]["mode"]
    results["targets"] = report.targets(results)
    failed = report.missed(results["targets"], mode)
    out = out or REPO / "bench" / ("results-quick.json" if mode == "quick" else "results.json")
    if failed:
        out = out.with_suffix(".missed.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1, default=str) + "\n")
    text = report.table(results)
    out.with_suffix(".txt").write_text(text + "\n")  # the table, for the README
    print(text)
    print(f"\nwritten to {out} in {results['meta']['seconds']} s", file=sys.stderr)
    for t in failed:
        print(f"[bench] MISSED: {t['target']} = {t['value']} (goal {t['goal']})", file=sys.stderr)
    return 1 if failed else 0


def _round_trips(warm_results: dict, outcomes: dict) -> dict:
    per_function = {}
    for name, result in warm_results.items():
        per_function[name] = result["round_trips"]
    per_function["login_by_code"] = warm_results["login"]["round_trips_by_code"]
    return {"warm": per_function, **outcomes}


def _meta(quick: bool, cfg: dict) -> dict:
    try:
        git = ["git", "rev-parse", "HEAD"]
        commit = subprocess.run(git, cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()  # noqa: S603
        # Any change to the tree but the results themselves: the figures are then not the commit's.
        status = ["git", "status", "--porcelain", "--", ".", ":(exclude)bench/results*"]
        dirty = bool(subprocess.run(status, cwd=REPO, capture_output=True, text=True, check=True).stdout.strip())  # noqa: S603
    except (OSError, subprocess.CalledProcessError):
        commit, dirty = "unknown", True
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "mode": "quick" if quick else "full",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "commit": commit,
        "uncommitted_changes": dirty,
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start",
        "packages": versions,
        "config": cfg,
    }


if __name__ == "__main__":
    sys.exit(main())
