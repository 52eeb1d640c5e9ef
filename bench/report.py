"""The targets of the issue, checked against results, and the printed table."""

from __future__ import annotations

from typing import Any

ONE_READ_ONE_COMMIT = {"BatchGetDocuments": 1, "Commit": 1}


def targets(r: dict) -> list[dict[str, Any]]:
    """Every target with its figure. `timing` rows are gated by the full run only: the quick run's
    samples are too few on a shared machine, so it gates the deterministic ones (RPCs, memory)."""
    rows: list[dict[str, Any]] = []

    def add(name: str, value: Any, target: str, met: bool, *, timing: bool = False) -> None:
        rows.append({"target": name, "value": value, "goal": target, "met": bool(met), "timing": timing})

    for fn, c in r["cold_start"]["first_response"].items():
        add(f"first response after start {fn} / floor", c["ratio"], f"<= {c['target']}", c["met"], timing=True)
    for fn, w in r["warm_latency"].items():
        add(f"warm p50 {fn} / floor", w["ratio_p50"], f"<= {w['target_p50']}", w["met"], timing=True)
    s = r["sessions"]["refresh"]
    add("warm p50 refresh / floor", s["ratio_p50"], f"<= {s['target_p50']}", s["met"], timing=True)
    rt = r["round_trips"]["warm"]
    add("verify_otp Firestore RPCs per request", _fmt_rpcs(rt["verify_otp"]["firestore_rpcs_per_request"]),
        "1 read + 1 commit (one atomic read-check-write)",
        rt["verify_otp"]["firestore_rpcs_per_request"] == ONE_READ_ONE_COMMIT
        and rt["verify_otp"]["firestore_rpcs_per_request_all_same"])
    for key, label, limit in (("login", "login by email", 3), ("login_by_code", "login by code", 2)):
        calls = rt[key]["firestore_rpcs_per_request"]
        add(f"{label} Firestore RPCs per request", _fmt_rpcs(calls),
            f"direct gets only, <= {limit}, 2 commits (reserve before Argon2id, release after), no query scans",
            set(calls) == {"BatchGetDocuments", "Commit"} and calls["BatchGetDocuments"] <= limit
            and calls["Commit"] == 2 and rt[key]["query_scans"] == 0)
    refresh = s["round_trips"]
    add("refresh Firestore RPCs per request", _fmt_rpcs(refresh["firestore_rpcs_per_request"]),
        "1 read + 1 commit, no query scans", refresh["firestore_rpcs_per_request"] == ONE_READ_ONE_COMMIT
        and refresh["firestore_rpcs_per_request_all_same"] and refresh["query_scans"] == 0)
    for fn in ("send_otp", "verify_otp", "login"):
        # The cache refetches each secret once per refresh period (rotation reaches a warm instance);
        # anything beyond that schedule is a call per request.
        x = rt[fn]
        add(f"{fn} Secret Manager calls beyond the cache's refresh schedule",
            f"{x['secret_manager_calls_beyond_schedule']} ({x['secret_manager_calls']} calls in "
            f"{x['warm_requests']} warm requests over {x['warm_seconds']} s; schedule allows "
            f"{x['secret_manager_refreshes_allowed']})", "0", x["secret_manager_calls_beyond_schedule"] == 0)
    g = r["scaling"]["users_growth"]
    first, last = g["sizes"][0]["users"], g["sizes"][-1]["users"]
    add(f"login p50 growth, {first:,} -> {last:,} users", g["p50_growth"], f"<= {g['target_p50_growth']}",
        g["p50_growth"] <= g["target_p50_growth"], timing=True)
    add(f"login RPCs, {first:,} -> {last:,} users", "same" if g["rpcs_constant"] else "changed",
        "same RPCs at every size, no query scans", g["rpcs_constant"] and g["query_scans"] == 0)
    m = r["memory"]
    add(f"login peak memory, {m['concurrency']} simultaneous Argon2id", f"{m['peak_pss_mib']} MiB",
        f"<= {m['memory_mib']} MiB (terraform)", m["met"])
    return rows


def missed(rows: list[dict[str, Any]], mode: str) -> list[dict[str, Any]]:
    """The targets this run fails on: all of them in the full run, the non-timing ones in the quick run."""
    return [t for t in rows if not t["met"] and (mode == "full" or not t["timing"])]


def _fmt_rpcs(calls: dict) -> str:
    return " + ".join(f"{v} {k}" for k, v in sorted(calls.items())) or "none"


def table(r: dict) -> str:
    meta = r["meta"]
    out: list[str] = []
    w = out.append
    state = "with uncommitted changes" if meta["uncommitted_changes"] else "clean tree"
    w(f"make bench ({meta['mode']}), commit {meta['commit'][:12]} ({state}), {meta['date']}, Python {meta['python']}, "
      f"{meta['machine']}")
    cold = r["cold_start"]
    runs_i = next(iter(cold["import"].values()))["runs"]
    w("")
    first = cold["first_response"]
    runs = next(iter(first.values()))["runs"]
    w(f"Cold start: first response after process start (gunicorn; imports, clients, secrets, work; median of {runs}) "
      "vs the floor doing the same with raw clients")
    w(f"  {'function':<12}{'listening':>11}{'answered':>10}{'floor':>10}{'ratio':>8}{'target':>8}  met"
      "   quartiles ms (function | floor)")
    for fn, f in first.items():
        q = f.get("quartiles_ms", {})
        spread = " | ".join("-".join(f"{v:.0f}" for v in q.get(k, [])[::2]) for k in ("function", "floor"))
        w(f"  {fn:<12}{f['function']['listen_ms']:>9.0f}ms{f['function']['first_response_ms']:>8.0f}ms"
          f"{f['floor']['first_response_ms']:>8.0f}ms{f['ratio']:>8.2f}{f['target']:>8}  {_yes(f['met'])}   {spread}")
    w(f"  Import alone (reported; both import their clients at load; median of {runs_i}):")
    w(f"  {'function':<12}{'main.py':>10}{'floor':>10}{'ratio':>8}")
    for fn, c in cold["import"].items():
        w(f"  {fn:<12}{c['import_main_ms']:>8.0f}ms{c['import_floor_ms']:>8.0f}ms{c['ratio']:>8.2f}")

    w("")
    w("Warm latency, in-process functions-framework app on the emulator, interleaved with its floor (ms)")
    w(f"  {'function':<12}{'n':>6}{'p50':>8}{'p99':>8}{'floor p50':>11}{'floor p99':>11}{'ratio':>8}{'target':>8}  met")
    for fn, x in r["warm_latency"].items():
        f, fl = x["function"], x["floor"]
        w(f"  {fn:<12}{f['n']:>6}{f['p50_ms']:>8.2f}{f['p99_ms']:>8.2f}{fl['p50_ms']:>11.2f}{fl['p99_ms']:>11.2f}"
          f"{x['ratio_p50']:>8.2f}{x['target_p50']:>8}  {_yes(x['met'])}")
    s = r["sessions"]["refresh"]
    f, fl = s["function"], s["floor"]
    w(f"  {'refresh':<12}{f['n']:>6}{f['p50_ms']:>8.2f}{f['p99_ms']:>8.2f}{fl['p50_ms']:>11.2f}{fl['p99_ms']:>11.2f}"
      f"{s['ratio_p50']:>8.2f}{s['target_p50']:>8}  {_yes(s['met'])}")
    w(f"  refresh vs raw Firestore read + commit, no framework: {s['ratio_p50_vs_raw_read_commit']:.2f} "
      f"(p50 {s['reference']['raw_read_commit']['p50_ms']:.2f} ms), with the signature "
      f"{s['ratio_p50_vs_raw_read_commit_sign']:.2f}")
    v = r["warm_latency"]["verify_otp"]
    lg = r["warm_latency"]["login"]
    w(f"  references: verify_otp / raw Firestore transaction = {v['ratio_p50_vs_raw_transaction']:.2f} "
      f"(transaction p50 {v['reference']['raw_transaction']['p50_ms']:.2f} ms); "
      f"login by code / floor = {lg['ratio_p50_by_code']:.2f}; bare floors (no framework) p50: "
      + ", ".join(f"{fn} {x['reference']['bare_floor']['p50_ms']:.2f}" for fn, x in r["warm_latency"].items()))

    w("")
    w("Round trips per request (counted on the gRPC channel)")
    w(f"  {'function':<12}{'outcome':<16}{'status':>7}  {'Firestore RPCs':<36}{'scans':>6}{'secrets':>8}{'twilio':>7}")
    for o in r["round_trips"]["outcomes"]:
        w(f"  {o['function']:<12}{o['outcome']:<16}{o['status']:>7}  {_fmt_rpcs(o['firestore']):<36}"
          f"{o['query_scans']:>6}{o['secret_manager']:>8}{o['twilio_http']:>7}")
    w("  warm loops: " + "; ".join(
        f"{fn} {_fmt_rpcs(x['firestore_rpcs_per_request'])} on {'every' if x['firestore_rpcs_per_request_all_same'] else 'most'}"
        f" of {x['warm_requests']}, Secret Manager {x['secret_manager_calls']} calls"
        for fn, x in r["round_trips"]["warm"].items()))

    w("")
    thr = r["scaling"]["throughput"]
    w("Throughput of one instance (functions-framework + gunicorn, THREADS = terraform concurrency), by client concurrency")
    w(f"  {'function':<12}{'threads':>8}" + "".join(f"{'c=' + c + ' rps':>12}{'p50':>8}" for c in ("1", "8", "32"))
      + f"{'x8':>7}{'x32':>7}{'peak':>9}{'memory':>8}")
    for fn, t in thr.items():
        threads = t["server"].rsplit("=", 1)[1].rstrip(")")
        cells = "".join(f"{t['levels'][c]['throughput_rps']:>12.1f}{t['levels'][c]['latency']['p50_ms']:>8.1f}"
                        for c in ("1", "8", "32"))
        w(f"  {fn:<12}{threads:>8}{cells}{t['speedup_8_vs_1']:>7.2f}{t['speedup_32_vs_1']:>7.2f}"
          f"{t['peak_pss_mib']:>7.0f}Mi{t['memory_mib']:>6}Mi")

    for fn, t in thr.items():
        for lvl, x in t["levels"].items():
            if x["errors"]:
                w(f"  {fn} at c={lvl}: {x['errors']} of {x['requests']} answered {', '.join(x['error_statuses'])}")
    c = r["scaling"]["send_contention"]
    w("  send_otp in-process by concurrency (RPCs counted): " + "; ".join(
        f"c={lvl}: {x['throughput_rps']} rps, {x['commits_per_send']} commits/send, statuses {x['statuses']}"
        for lvl, x in c["levels"].items()))

    g = r["scaling"]["users_growth"]
    w("")
    w("Login (by email) as the users collection grows (in-process, vs floor at each size)")
    w(f"  {'users':>9}{'seeded in':>11}{'p50':>8}{'p99':>8}{'floor p50':>11}{'ratio':>8}  Firestore RPCs")
    for s in g["sizes"]:
        w(f"  {s['users']:>9,}{s['seed_seconds']:>10.1f}s{s['function']['p50_ms']:>8.2f}{s['function']['p99_ms']:>8.2f}"
          f"{s['floor']['p50_ms']:>11.2f}{s['ratio_p50']:>8.2f}  "
          + " | ".join(_fmt_rpcs(c) for c in s["firestore_rpcs_per_request"]))
    w(f"  p50 growth {g['p50_growth']:.2f} (target <= {g['target_p50_growth']}), ratio growth {g['ratio_growth']:.2f}, "
      f"RPCs constant: {_yes(g['rpcs_constant'])}, query scans: {g['query_scans']}  -> {_yes(g['met'])}")

    m = r["memory"]
    w("")
    w(f"Memory: login instance, {m['concurrency']} simultaneous Argon2id verifications (m=19 MiB each), "
      f"{m['rounds']} rounds")
    w(f"  idle {m['idle_pss_mib']} MiB, peak {m['peak_pss_mib']} MiB Pss (sum of VmHWM {m['peak_rss_hwm_sum_mib']} MiB) "
      f"of {m['memory_mib']} MiB ({m['sizing_source']}): {m['peak_fraction']:.0%}, headroom {m['headroom_mib']} MiB "
      f"-> {_yes(m['met'])}")
    w(f"  one login {m['one_login_ms']} ms; {m['concurrency']} at once took {m['simultaneous_batch_wall_ms']} ms "
      f"(parallelism {m['parallelism']})")

    w("")
    w("Targets")
    for t in r["targets"]:
        gate = "" if meta["mode"] == "full" or not t["timing"] else "  (reported: timing is gated by the full run)"
        w(f"  [{'x' if t['met'] else ' '}] {t['target']:<58} {t['value']!s:<34} goal {t['goal']}{gate}")
    met = sum(t["met"] for t in r["targets"])
    failed = missed(r["targets"], meta["mode"])
    w(f"  {met}/{len(r['targets'])} met" + (f"; {len(failed)} missed that this run gates: exit 1" if failed else ""))
    return "\n".join(out)


def _yes(flag: bool) -> str:
    return "yes" if flag else "NO"
