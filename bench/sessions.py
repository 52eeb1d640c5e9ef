"""Warm latency and round trips of a refresh (`POST login {"grant_type": "refresh_token"}`) against its floors.

    .venv/bin/python bench/sessions.py [--n 300]     (its own stack; `make bench` calls `refresh`)

Each iteration refreshes a family of its own (as each verify_otp iteration consumes its own code).
Floors, interleaved with it:
- `raw_read_commit`: the raw Firestore client doing what a refresh must do in Firestore, one
  BatchGetDocuments of copies of the family and the (absent) subject marker, one Commit of the
  rotated fields with a last_update_time precondition;
- `raw_read_commit_sign`: the same plus the EdDSA signature of an access token with the same
  signer, the other work a refresh cannot skip;
- `framework_floor`: `refresh_floor` below, a functions-framework function doing the read, the
  commit and the signature (the shape of the other functions' floors, bench/floor_app).
The function row goes through functions-framework (Flask) in-process; the raw rows do not.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.inproc import Functions, RawFloor  # noqa: E402
from bench.stats import ratio, summary  # noqa: E402
from bench.warm import _interleave, _rpc_report, check  # noqa: E402

TARGET_P50 = 1.15  # a refresh within 1.15 of its floor: raw Firestore client and signer, served like the function
_db: Any = None


def refresh_floor(request: Any) -> Any:
    """The framework floor: read two documents, commit one guarded update, sign one access token."""
    import json

    import flask
    from google.cloud import firestore

    from otplogin import runtime

    global _db
    if _db is None:
        _db = firestore.Client()
    body = request.get_json()
    refs = [_db.document(p) for p in body["read"]]
    snaps = {x.reference.path: x for x in _db.get_all(refs)}
    batch = _db.batch()
    batch.update(refs[0], body["write"], option=_db.write_option(last_update_time=snaps[body["read"][0]].update_time))
    batch.commit()
    token = runtime.token_signer().issue(body["sub"], body["claims"])
    return flask.Response(json.dumps({"access_token": token}), mimetype="application/json")


def refresh(fns: Functions, bare: RawFloor, n: int, warmup: int) -> dict[str, Any]:
    from otplogin import runtime

    total = n + warmup
    tokens = runtime.refresh_tokens()
    issued = [tokens.issue(f"phone:+24381{i:07d}", {"phone_number": f"+24381{i:07d}", "amr": ["otp"]})
              for i in range(total)]
    db = bare.db
    paths = []
    for one in issued:
        family_path = tokens.family_path(one.refresh_token.split(".")[1])
        key = family_path.partition("/")[2]
        data = db.document(family_path).get().to_dict()
        db.document(f"bare_families/{key}").set(data)
        paths.append((f"bare_families/{key}", f"bare_subjects/{one.refresh_token.split('.')[0]}"))
    signer = runtime.token_signer()
    rotated = {"current": "0" * 64, "previous": "1" * 64, "successor_enc": "x" * 120, "rotated_at": 1.0,
               "last_used": 1.0}

    def function(i: int) -> None:
        body = {"grant_type": "refresh_token", "refresh_token": issued[i].refresh_token}
        check(*fns.post("login", body), 200, "refresh")

    def raw(i: int) -> None:
        bare.read_commit(list(paths[i]), {paths[i][0]: rotated})

    import functions_framework

    floor_app = functions_framework.create_app(target="refresh_floor", source=__file__).test_client()
    floor_paths = []
    for bare_family, bare_subject in paths:
        key = bare_family.partition("/")[2]
        db.document(f"floor_families/{key}").set(db.document(bare_family).get().to_dict())
        floor_paths.append([f"floor_families/{key}", bare_subject.replace("bare_", "floor_")])

    def framework(i: int) -> None:
        body = {"read": floor_paths[i], "write": rotated, "sub": issued[i].subject, "claims": issued[i].claims}
        r = floor_app.post("/", json=body, headers={"X-Forwarded-For": "203.0.113.9"})
        check(r.status_code, r.get_json(silent=True) or {}, 200, "refresh floor")

    def raw_sign(i: int) -> None:
        bare.read_commit(list(paths[i]), {paths[i][0]: rotated})
        signer.issue(issued[i].subject, issued[i].claims)

    # Each step's documents are its own, so the three never contend; the order rotates per iteration.
    steps = {"function": function, "raw_read_commit": raw, "raw_read_commit_sign": raw_sign, "framework_floor": framework}
    times, rpcs, seconds = _interleave(n, warmup, steps)
    fn, floor, floor_sign, fw = (summary(times[k]) for k in steps)
    # The target compares like with like, as every warm target does: the floor served by
    # functions-framework (the function row is too); the raw rows without a framework are references.
    return {
        "function": fn,
        "floor": fw,
        "ratio_p50": ratio(fn["p50_ms"], fw["p50_ms"]),
        "reference": {"raw_read_commit": floor, "raw_read_commit_sign": floor_sign},
        "ratio_p50_vs_raw_read_commit": ratio(fn["p50_ms"], floor["p50_ms"]),
        "ratio_p50_vs_raw_read_commit_sign": ratio(fn["p50_ms"], floor_sign["p50_ms"]),
        "ratio_p99": ratio(fn["p99_ms"], fw["p99_ms"]),
        "target_p50": TARGET_P50,
        "met": ratio(fn["p50_ms"], fw["p50_ms"]) <= TARGET_P50,
        "round_trips": _rpc_report(rpcs["function"], warmup, seconds),
        "round_trips_floor": _rpc_report(rpcs["raw_read_commit"], warmup, seconds)["firestore_rpcs_per_request"],
        "floor_definition": (
            "functions-framework function: one BatchGetDocuments of the family and subject-marker documents, "
            "one Commit of the rotated fields guarded by last_update_time (2 RPCs), one EdDSA access-token "
            "signature; references: the same read and commit with the raw client and no framework, with and "
            "without the signature"
        ),
    }


def main() -> int:
    import argparse
    import json

    from bench.stack import Stack

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=30)
    args = parser.parse_args()
    with Stack() as stack:
        env = stack.env()
        result = refresh(Functions(env), RawFloor(env), args.n, args.warmup)
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
