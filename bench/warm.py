"""Warm latency of each function against its floor, interleaved, in one process.

Every iteration runs the function request and its floor request back to back
(order alternating), so machine noise lands on both alike; p50 and p99 are
taken after a warm-up. The same loop records the Firestore and Secret Manager
RPCs of each function request (bench.counting): the round-trip figures.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from bench import seed
from bench.counting import COUNTER, SCAN_RPCS, firestore_calls, secret_calls
from bench.floor_app.main import session_family
from bench.inproc import Functions, RawFloor
from bench.stats import ratio, summary
from otplogin.guard.counters import MAX_SHARDS_READ

TARGETS = {"verify_otp": 1.15, "send_otp": 1.10, "login": 1.10}
TEXT = "Votre code de vérification est 123456. Il expire dans 5 minutes. Ne le partagez jamais."


def _interleave(
    n: int, warmup: int, steps: dict[str, Callable[[int], Any]]
) -> tuple[dict[str, list[float]], dict[str, list[Counter]], float]:
    """Run each step once per iteration, rotating the order; returns times (ms) after warm-up,
    the RPCs of every iteration of each step and the seconds the iterations after warm-up took."""
    names = list(steps)
    times: dict[str, list[float]] = {name: [] for name in names}
    rpcs: dict[str, list[Counter]] = {name: [] for name in names}
    warm_start = time.perf_counter()
    for i in range(n + warmup):
        if i == warmup:
            warm_start = time.perf_counter()
        order = names[i % len(names):] + names[: i % len(names)]
        for name in order:
            with COUNTER.measure() as delta:
                start = time.perf_counter()
                steps[name](i)
                elapsed = (time.perf_counter() - start) * 1000
            if i >= warmup:
                times[name].append(elapsed)
            rpcs[name].append(delta)
    return times, rpcs, time.perf_counter() - warm_start


def secret_refreshes_allowed(seconds: float) -> int:
    """The Secret Manager calls the cache's schedule allows in `seconds` of warm traffic: each cached
    secret refetched at most once per refresh period (otplogin.secrets), never once per request."""
    from otplogin import runtime

    store = runtime.secret_store()
    return len(store.cached()) * (int(seconds // store.refresh_seconds) + 1)


def _rpc_report(rpcs: list[Counter], warm_from: int, seconds: float) -> dict[str, Any]:
    warm = rpcs[warm_from:]
    per_request = Counter()
    shapes = Counter()
    for delta in warm:
        fs = firestore_calls(delta)
        shapes[tuple(sorted(fs.items()))] += 1
        per_request.update(fs)
    common, count = shapes.most_common(1)[0]
    secrets = sum(secret_calls(d) for d in warm)
    allowed = secret_refreshes_allowed(seconds)
    return {
        "firestore_rpcs_per_request": dict(common),
        "firestore_rpcs_per_request_all_same": count == len(warm),
        "firestore_rpcs_mean": {k: round(v / len(warm), 3) for k, v in per_request.items()},
        "query_scans": sum(per_request[k] for k in SCAN_RPCS),
        "secret_manager_calls": secrets,
        "warm_requests": len(warm),
        "secret_manager_calls_per_1000": round(secrets * 1000 / len(warm), 3),
        "warm_seconds": round(seconds, 1),
        "secret_manager_refreshes_allowed": allowed,
        "secret_manager_calls_beyond_schedule": max(0, secrets - allowed),
    }


def _result(name: str, times: dict, rpcs: dict, seconds: float, warmup: int, extra_refs: tuple) -> dict:
    fn, floor = summary(times["function"]), summary(times["floor"])
    out: dict[str, Any] = {
        "function": fn,
        "floor": floor,
        "ratio_p50": ratio(fn["p50_ms"], floor["p50_ms"]),
        "ratio_p99": ratio(fn["p99_ms"], floor["p99_ms"]),
        "target_p50": TARGETS[name],
        "reference": {k: summary(times[k]) for k in extra_refs},
    }
    out["met"] = out["ratio_p50"] <= TARGETS[name]
    out["round_trips"] = _rpc_report(rpcs["function"], warmup, seconds)
    out["round_trips_floor"] = _rpc_report(rpcs["floor"], warmup, seconds)["firestore_rpcs_per_request"]
    return out


def check(status: int, body: dict, expected: int, what: str) -> None:
    if status != expected:
        raise RuntimeError(f"{what}: expected HTTP {expected}, got {status}: {body}")


def verify_otp(fns: Functions, bare: RawFloor, n: int, warmup: int) -> dict:
    from otplogin import runtime

    total = n + warmup
    phones = seed.phones("verify", total)
    seed.seed_codes(phones)
    svc = runtime.otp_service()
    db = bare.db
    keys = [svc.phone_key(p) for p in phones]
    # Floor documents: copies of the very code documents the function reads (same fields and size),
    # twice (one for the framework floor, one for the bare client and one for the transaction).
    batch, pending = db.batch(), 0
    for key in keys:
        data = db.document(f"otp_codes/{key}").get().to_dict()
        for prefix in ("floor", "bare", "txn"):
            batch.set(db.document(f"{prefix}_codes/{key}"), data)
            pending += 1
        if pending >= 450:
            batch.commit()
            batch, pending = db.batch(), 0
    if pending:
        batch.commit()

    def function(i: int) -> None:
        check(*fns.post("verify_otp", {"phone": phones[i], "code": seed.CODE}), 200, "verify_otp")

    def floor(i: int) -> None:
        check(*fns.post("verify_otp", verify_paths("floor", keys[i]), floor=True), 200, "verify_otp floor")

    def bare_floor(i: int) -> None:
        p = verify_paths("bare", keys[i])
        bare.read_commit(p["read"], {p["read"][0]: {"state": "used", "code_hash": "", "previous": None},
                                     p["family"]: session_family(time.time())}, p["bumps"])

    def transaction(i: int) -> None:
        bare.transaction(f"txn_codes/{keys[i]}", {"state": "used", "code_hash": "", "previous": None})

    times, rpcs, seconds = _interleave(n, warmup, {"function": function, "floor": floor, "bare_floor": bare_floor,
                                          "raw_transaction": transaction})
    result = _result("verify_otp", times, rpcs, seconds, warmup, ("bare_floor", "raw_transaction"))
    result["ratio_p50_vs_raw_transaction"] = ratio(result["function"]["p50_ms"], result["reference"]["raw_transaction"]["p50_ms"])
    result["floor_definition"] = (
        "functions-framework function doing one BatchGetDocuments of the code and the phone's and client's failure "
        "documents and one Commit updating the code document with a last_update_time precondition (the library's "
        "optimistic read-check-write, 2 RPCs) and merging the send guard's 4 credit increments, then an EdDSA JWT signed with cryptography; raw_transaction "
        "(BeginTransaction + read + Commit, 3 RPCs) for reference"
    )
    return result


def verify_paths(prefix: str, key: str, ip: str = "203.0.113.9") -> dict[str, list[str]]:
    """The documents a verify reads (code, phone and client failure windows) and the counters its
    commit credits (known marker, client, range and country shards: otplogin.guard.verified)."""
    c = f"{prefix}_counters"
    ip_key = hashlib.sha256(ip.encode()).hexdigest()[:32]
    hour = int(time.time() // 3600)
    return {
        "family": f"{prefix}_families/{secrets.token_hex(16)}",  # the session family its commit creates
        "read": [f"{prefix}_codes/{key}", f"{c}/fail_phone:{key}", f"{c}/fail_ip:{ip_key}"],
        "bumps": [f"{c}/known:{key}", f"{c}/client:{ip_key}:{hour}:0", f"{c}/range:CD-{key[:4]}:{hour}:0",
                  f"{c}/country:CD:{hour}:0"],
    }


def _send_paths(prefix: str, phone: str, ip: str, hour: int) -> dict:
    """The documents a send reads and writes (otplogin.guard's, at its default 4 counter shards; the
    benchmark's budgets are large enough that a send reads MAX_SHARDS_READ shards of each)."""
    key = hashlib.sha256(phone.encode()).hexdigest()[:40]
    ip_key = hashlib.sha256(ip.encode()).hexdigest()[:32]
    c = f"{prefix}_counters"

    def window(name: str) -> list[str]:
        return [f"{c}/{name}:{h}:{s}" for h in (hour, hour - 1) for s in range(4)]

    counters = {"client": window(f"client:{ip_key}"), "range": window(f"range:CD-vodacom-{phone[4:8]}"),
                "country": window("country:CD")}
    return {
        "code": f"{prefix}_codes/{key}",
        "phone": f"{c}/send_phone:{key}",
        "reads": [f"{c}/known:{key}", *counters["client"], *counters["range"], *counters["country"],
                  *[f"{c}/pool:known:{hour}:{s}" for s in range(MAX_SHARDS_READ)]],
        "shards": [f"{c}/pool:new:CD:{hour}:{s}" for s in range(MAX_SHARDS_READ)],
        "bumps": [counters["client"][0], counters["range"][0], counters["country"][0]],
    }


def send_otp(fns: Functions, bare: RawFloor, n: int, warmup: int) -> dict:
    total = n + warmup
    phones = seed.phones("send", total)
    floor_phones = seed.phones("floor", total)
    ips = [seed.client_ip() for _ in range(total)]
    hour = int(time.time() // 3600)

    def function(i: int) -> None:
        check(*fns.post("send_otp", {"phone": phones[i], "channel": "sms", "locale": "fr"}, ip=ips[i]), 202, "send_otp")

    def floor(i: int) -> None:
        body = _send_paths("floor", floor_phones[i], ips[i], hour) | {"to": floor_phones[i], "text": TEXT}
        check(*fns.post("send_otp", body, floor=True), 202, "send_otp floor")

    def bare_floor(i: int) -> None:
        p = _send_paths("bare", floor_phones[i], ips[i], hour)
        read = [p["code"], p["phone"], *p["reads"], *p["shards"]]
        writes = {p["code"]: {"state": "active", "attempts": 0}, p["phone"]: {"events": [1.0]},
                  p["shards"][i % 8]: {"n": i}, **{b: {"u": i} for b in p["bumps"]}}
        bare.read_commit(read, writes)
        bare.twilio_send(floor_phones[i], TEXT)

    times, rpcs, seconds = _interleave(n, warmup, {"function": function, "floor": floor, "bare_floor": bare_floor})
    result = _result("send_otp", times, rpcs, seconds, warmup, ("bare_floor",))
    result["floor_definition"] = (
        "functions-framework function doing one BatchGetDocuments of the 59 documents a send reads at the benchmark's caps (code, phone "
        "window, the send guard's marker, counters and budget shards), one Commit of the 6 it writes (guarded "
        "updates or creates, three merged increments) and one twilio SDK messages.create to Prism"
    )
    return result


def login(fns: Functions, bare: RawFloor, users: seed.UserSeeder, n: int, warmup: int, pool: int = 100) -> dict:
    from otplogin import store

    users.grow_to(max(users.count, pool))
    phc = store.client().document(f"users/{seed.user_code(0)}").get().get("password_hash")

    def function(i: int) -> None:
        body = {"email": seed.user_email(i % pool), "password": seed.PASSWORD}
        check(*fns.post("login", body, ip=f"198.51.100.{i % 250}"), 200, "login")

    def by_code(i: int) -> None:
        body = {"code": seed.user_code(i % pool), "password": seed.PASSWORD}
        check(*fns.post("login", body, ip=f"198.51.100.{i % 250}"), 200, "login by code")

    def floor(i: int) -> None:
        body = {"path": f"users/{seed.user_code(i % pool)}", "password": seed.PASSWORD}
        check(*fns.post("login", body, floor=True), 200, "login floor")

    def bare_floor(i: int) -> None:
        bare.get(f"users/{seed.user_code(i % pool)}")
        bare.argon2_verify(seed.PASSWORD, phc)

    times, rpcs, seconds = _interleave(n, warmup, {"function": function, "floor": floor, "bare_floor": bare_floor,
                                          "function_by_code": by_code})
    result = _result("login", times, rpcs, seconds, warmup, ("bare_floor", "function_by_code"))
    result["ratio_p50_by_code"] = ratio(result["reference"]["function_by_code"]["p50_ms"], result["floor"]["p50_ms"])
    result["round_trips_by_code"] = _rpc_report(rpcs["function_by_code"], warmup, seconds)
    result["floor_definition"] = (
        "functions-framework function doing the reservation's read and commit (user + 3 lockout documents), "
        "one Argon2id verification (the stored hash's parameters: m=19 MiB, t=3, p=1) and the release's read "
        "and commit, then an EdDSA JWT signed with cryptography; the function's main row is a login by email "
        "(one pointer get more)"
    )
    return result
