"""One instance under load (concurrency 1, 8, 32), login latency as users grow, and memory."""

from __future__ import annotations

import random
import re
import statistics
import threading
import time
from pathlib import Path

from bench import seed
from bench.processes import Instance, MemorySampler, load, memory_kib
from bench.stats import ratio, summary

REPO = Path(__file__).resolve().parents[1]
LEVELS = (1, 8, 32)
# What terraform/locals.tf gives each function when it cannot be read (the DESIGN defaults).
DEFAULT_SIZING = {
    "send_otp": {"memory_mib": 256, "concurrency": 20},
    "verify_otp": {"memory_mib": 256, "concurrency": 20},
    "login": {"memory_mib": 512, "concurrency": 8},
}


def terraform_sizing() -> dict[str, dict]:
    """memory and concurrency per function from terraform/locals.tf (falls back to the defaults)."""
    sizing = {name: dict(values, source="default") for name, values in DEFAULT_SIZING.items()}
    path = REPO / "terraform" / "locals.tf"
    try:
        text = path.read_text()
    except OSError:
        return sizing
    for name in sizing:
        block = re.search(rf"\n\s*{name}\s*=\s*\{{(.*?)\n\s*\}}", text, re.S)
        if not block:
            continue
        memory = re.search(r'\bmemory\s*=\s*"(\d+)(Mi|Gi)"', block.group(1))
        concurrency = re.search(r"\bconcurrency\s*=\s*(\d+)", block.group(1))
        if memory and concurrency:
            mib = int(memory.group(1)) * (1024 if memory.group(2) == "Gi" else 1)
            sizing[name] = {"memory_mib": mib, "concurrency": int(concurrency.group(1)), "source": "terraform/locals.tf"}
    return sizing


# -- request bodies for real processes ------------------------------------------------------------
def bodies(function: str, count: int, users: int = 100) -> tuple[list[tuple[dict, dict]], int]:
    if function == "verify_otp":
        phones = seed.phones("load", count)
        seed.seed_codes(phones)
        return [({"phone": p, "code": seed.CODE}, {}) for p in phones], 200
    if function == "send_otp":
        phones = seed.phones("load", count)
        return [({"phone": p, "channel": "sms", "locale": "fr"}, {"X-Forwarded-For": seed.client_ip()}) for p in phones], 202
    return [({"email": seed.user_email(i % users), "password": seed.PASSWORD}, {"X-Forwarded-For": seed.client_ip()})
            for i in range(count)], 200


def throughput(env: dict[str, str], sizing: dict[str, dict], requests: dict[str, int], users: seed.UserSeeder) -> dict:
    """Each function as one production-shaped instance (gunicorn gthread, THREADS = its concurrency),
    driven by 1, 8 and 32 keep-alive clients; peak memory (Pss) sampled throughout."""
    users.grow_to(max(users.count, 100))
    results = {}
    for function in ("verify_otp", "send_otp", "login"):
        threads = sizing[function]["concurrency"]
        levels = {}
        with Instance(function, env, threads=threads) as inst:
            inst.start()
            warm, expected = bodies(function, 10)
            load(inst.port, warm, 2, expected)
            with MemorySampler(inst) as mem:
                for level in LEVELS:
                    batch, expected = bodies(function, requests[function])
                    run = load(inst.port, batch, level, expected)
                    if len(run["errors"]) == run["requests"]:
                        raise RuntimeError(f"{function} at concurrency {level}: every request failed: {run['errors'][0]}")
                    ok = run["requests"] - len(run["errors"])
                    levels[str(level)] = {
                        "requests": run["requests"],
                        "throughput_rps": round(ok / run["seconds"], 1),  # answered as expected, per second
                        "latency": summary(run["latencies_ms"]),
                        "errors": len(run["errors"]),
                        "error_statuses": sorted({e.split(":", 1)[0] for e in run["errors"]}),
                    }
            peak = mem.peak_pss_kib
        results[function] = {
            "server": f"functions-framework {function} (gunicorn gthread, WORKERS=1, THREADS={threads})",
            "levels": levels,
            "speedup_8_vs_1": ratio(levels["8"]["throughput_rps"], levels["1"]["throughput_rps"]),
            "speedup_32_vs_1": ratio(levels["32"]["throughput_rps"], levels["1"]["throughput_rps"]),
            "peak_pss_mib": round(peak / 1024, 1),
            "memory_mib": sizing[function]["memory_mib"],
        }
    return results


# -- users growth ----------------------------------------------------------------------------------
def users_growth(fns, users: seed.UserSeeder, sizes: list[int], samples: int) -> dict:
    """Login (by email) latency and RPCs against its floor as the users collection grows."""
    from bench.counting import COUNTER, SCAN_RPCS, firestore_calls
    from bench.warm import check

    rows = []
    for size in sizes:
        seeded_s = users.grow_to(max(users.count, size), workers=4)
        rng = random.Random(size)  # noqa: S311 (which users to sample)
        picks = [rng.randrange(size) for _ in range(samples + 5)]
        fn_ms, floor_ms, shapes, scans = [], [], set(), 0
        for i, u in enumerate(picks):
            with COUNTER.measure() as delta:
                t = time.perf_counter()
                check(*fns.post("login", {"email": seed.user_email(u), "password": seed.PASSWORD},
                                ip=f"198.51.100.{i % 250}"), 200, "login")
                elapsed = (time.perf_counter() - t) * 1000
            t = time.perf_counter()
            check(*fns.post("login", {"path": f"users/{seed.user_code(u)}", "password": seed.PASSWORD}, floor=True),
                  200, "login floor")
            floor_elapsed = (time.perf_counter() - t) * 1000
            if i >= 5:
                fn_ms.append(elapsed)
                floor_ms.append(floor_elapsed)
                calls = firestore_calls(delta)
                shapes.add(tuple(sorted(calls.items())))
                scans += sum(calls.get(k, 0) for k in SCAN_RPCS)
        rows.append({
            "users": size,
            "seed_seconds": round(seeded_s, 1),
            "function": summary(fn_ms),
            "floor": summary(floor_ms),
            "ratio_p50": ratio(statistics.median(fn_ms), statistics.median(floor_ms)),
            "firestore_rpcs_per_request": [dict(s) for s in sorted(shapes)],
            "query_scans": scans,
        })
    first, last = rows[0], rows[-1]
    growth = ratio(last["function"]["p50_ms"], first["function"]["p50_ms"])
    same_rpcs = all(r["firestore_rpcs_per_request"] == first["firestore_rpcs_per_request"] for r in rows)
    return {
        "sizes": rows,
        "p50_growth": growth,
        "ratio_growth": ratio(last["ratio_p50"], first["ratio_p50"]),
        "rpcs_constant": same_rpcs and len(first["firestore_rpcs_per_request"]) == 1,
        "query_scans": sum(r["query_scans"] for r in rows),
        "target_p50_growth": 1.2,
        "met": growth <= 1.2 and same_rpcs and all(r["query_scans"] == 0 for r in rows),
    }


# -- memory ----------------------------------------------------------------------------------------
def login_memory(env: dict[str, str], sizing: dict[str, dict], rounds: int) -> dict:
    """Peak memory of a login instance while `concurrency` Argon2id verifications run at once."""
    concurrency = sizing["login"]["concurrency"]
    body = {"email": seed.user_email(0), "password": seed.PASSWORD}
    with Instance("login", env, threads=concurrency) as inst:
        inst.start()
        load(inst.port, [(body, {})] * 4, 1, 200)  # warm: clients, secrets, keyring
        time.sleep(0.2)
        idle = memory_kib(inst.pids())
        one = load(inst.port, [(body, {})] * concurrency, 1, 200)
        with MemorySampler(inst, interval=0.005) as mem:
            walls = []
            for _ in range(rounds):
                walls.append(_simultaneous(inst.port, body, concurrency))
        final = memory_kib(inst.pids())
    serial_ms = statistics.median(one["latencies_ms"])
    parallel_wall_ms = statistics.median(walls)
    memory_mib = sizing["login"]["memory_mib"]
    peak_mib = mem.peak_pss_kib / 1024
    return {
        "concurrency": concurrency,
        "memory_mib": memory_mib,
        "sizing_source": sizing["login"]["source"],
        "idle_pss_mib": round(idle["pss_kib"] / 1024, 1),
        "peak_pss_mib": round(peak_mib, 1),
        "peak_rss_hwm_sum_mib": round(final["hwm_kib"] / 1024, 1),
        "argon2_memory_per_hash_mib": 19,
        "headroom_mib": round(memory_mib - peak_mib, 1),
        "peak_fraction": round(peak_mib / memory_mib, 3),
        "met": peak_mib <= memory_mib,
        "one_login_ms": round(serial_ms, 1),
        "simultaneous_batch_wall_ms": round(parallel_wall_ms, 1),
        "parallelism": round(concurrency * serial_ms / parallel_wall_ms, 2),
        "rounds": rounds,
    }


def _simultaneous(port: int, body: dict, n: int) -> float:
    """n logins released at the same instant (connections already open); wall time of the batch."""
    import http.client
    import json

    done: list[float] = []
    started: list[float] = []
    errors: list[str] = []
    gate = threading.Barrier(n, action=lambda: started.append(time.perf_counter()))

    def one(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        conn.connect()
        gate.wait()
        # One client each: parallel attempts of one account from one client beyond its lockout
        # budget are refused before Argon2id (signin.py), which is not what this measures.
        headers = {"Content-Type": "application/json", "X-Forwarded-For": f"198.51.100.{i + 1}"}
        conn.request("POST", "/", body=json.dumps(body), headers=headers)
        r = conn.getresponse()
        r.read()
        done.append(time.perf_counter())
        if r.status != 200:
            errors.append(str(r.status))
        conn.close()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(f"simultaneous logins failed: {errors}")
    return (max(done) - started[0]) * 1000


# -- contention: what concurrent sends cost in Firestore RPCs ------------------------------------------
def send_contention(env: dict[str, str], requests: int) -> dict:
    """send_otp at concurrency 1, 8 and 32 in this process (one app per thread), counting RPCs:
    extra BatchGetDocuments/Commit pairs are optimistic retries after a conflicting write,
    in practice on the 8 shard documents of the project-wide hourly cap."""
    import json as _json
    from concurrent.futures import ThreadPoolExecutor

    import functions_framework

    from bench.counting import COUNTER

    source = str(REPO / "functions" / "send_otp" / "main.py")
    local = threading.local()

    def one(phone: str) -> int:
        if not hasattr(local, "client"):
            local.client = functions_framework.create_app(target="send_otp", source=source).test_client()
        r = local.client.post("/", data=_json.dumps({"phone": phone, "channel": "sms"}),
                              content_type="application/json", headers={"X-Forwarded-For": seed.client_ip()})
        return r.status_code

    rows = {}
    for level in LEVELS:
        phones = seed.phones("send", requests)
        with COUNTER.measure() as delta:
            start = time.perf_counter()
            with ThreadPoolExecutor(level) as pool:
                statuses = list(pool.map(one, phones))
            elapsed = time.perf_counter() - start
        commits = delta.get("Commit", 0)
        rows[str(level)] = {
            "requests": requests,
            "throughput_rps": round(requests / elapsed, 1),
            "commits_per_send": round(commits / requests, 2),
            "retries_per_send": round((delta.get("BatchGetDocuments", 0) - requests) / requests, 2),
            "statuses": {str(s): statuses.count(s) for s in sorted(set(statuses))},
        }
    return {"levels": rows, "shards": 8}
