"""Render docs/proof.md from the figures a proof run wrote (reports/proof.json).

    python -m tests.prove.report [reports/proof.json] [docs/proof.md]

`make prove` calls it at the end of the run. The text around the figures
says what each proof does and what it asserts; the numbers all come from the
JSON, so the report never claims a figure that was not measured.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import Any

from tests.prove.figures import PROOF_JSON, REPO, load

DEFAULT_OUT = REPO / "docs" / "proof.md"

# What the suite found. Fixed findings keep their test as a regression test; an open one is a
# strict xfail test: when it is fixed the test passes, the strict marker turns that into a failure,
# and whoever fixed it removes the marker and moves the entry to "fixed".
FINDINGS = """
Fixed (each now a regular regression test):

1. **Firestore outage: requests hung for minutes instead of a prompt 503.** The Firestore client's
   default retry (a deadline of minutes) wrapped `get_all`, `commit` and `get`. `otplogin.store`
   now reads with a 5 s retry budget, commits with no client retry (a lost answer is decided again
   through the preconditions) and pings with none. Test:
   `tests/prove/test_faults.py::test_firestore_outage_answers_503_in_bounded_time`.
2. **A lone surrogate in `mfa_token` was a 500** (PyJWT raised `UnicodeEncodeError`), and
3. **a lone surrogate in the login email was a 500** (the Firestore client could not encode the
   path). `http.string_field` now refuses any string that does not encode as UTF-8 (400
   `invalid_request`). Tests: `test_nasty_inputs.py::test_former_500_cases_are_clear_400s`.
4. **An email shaped like a reserved Firestore id (`__a@b.cd__`) was a 500.** `users.normalize_email`
   now refuses `__...__` (400 `invalid_request`). Same test.

5. **The whole declared body was read before any answer.** functions-framework's `after_request`
   hook `read_request` calls `request.get_data()` even after our 413, so a request whose
   `Content-Length` was larger than what it sent held a worker thread until the client gave up.
   `otplogin.http` now answers 413 from the header alone, swaps the unread body for an empty one
   and closes the connection. Test:
   `tests/prove/test_nasty_inputs.py::test_lying_content_length_is_refused_without_waiting_for_the_body`.

Observations (not failures): `phonenumbers` reads `++243...` as `+243...` (harmless: the E.164
form is what is stored and texted); a global cap that is not a multiple of its 8 shards is rounded
down (`OTP_SENDS_GLOBAL_PER_HOUR=1000` allows 1000, `=10` allows 8); while Secret Manager is down,
one request per failed-refresh interval waits for the 5 s fetch timeout before the cached value is
served (see the refresh figures above).
"""

OFFLINE = """
- Dependency vulnerability audit: `pip-audit` needs a vulnerability database (PyPI's JSON API or
  OSV); where the reachable package mirror serves only the simple index the audit does not run,
  and the `static` section above says "not run" with the reason.
- Checkov runs on `terraform/` in `tests/terraform` (`make tf-check`), not repeated here.
- Firestore TTL deletion: the emulator does not run it; expiry is proven through the code path
  with an injected clock (the state machine crosses 299/300/301 s).
- Real Twilio, real Secret Manager, Cloud Run's front end and multi-instance autoscaling are not
  reachable; their stand-ins are Prism on Twilio's own contract, the local gRPC Secret Manager and
  several functions-framework processes on loopback.
"""


def fmt(value: Any) -> str:
    if isinstance(value, float):
        if value and (abs(value) < 1e-3 or abs(value) >= 1e6):
            return f"{value:.1e}"
        return f"{value:g}"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {fmt(v)}" for k, v in value.items()) or "none"
    if isinstance(value, list):
        return ", ".join(fmt(v) for v in value) or "none"
    if value is None:
        return "n/a"
    return str(value)


def table(rows: list[tuple[str, Any]], head: tuple[str, str] = ("figure", "value")) -> str:
    out = [f"| {head[0]} | {head[1]} |", "| --- | --- |"]
    out += [f"| {k} | {fmt(v).replace('|', '/')} |" for k, v in rows]
    return "\n".join(out)


def compared(value: float, target: float) -> str:
    """How a control run's figure stands against the target, said from the figures themselves."""
    if value > target:
        return f"above the {fmt(target)} target: the test sees the loophole"
    return f"not above the {fmt(target)} target: the control does not show the loophole"


def section_meta(s: dict) -> str:
    return f"_size `{s.get('size')}`, recorded {s.get('recorded_at')}_"


def brute_force(s: dict, p: dict | None) -> list[str]:
    out = [
        "## Brute force",
        "One phone, a new IP for every request, an injected clock. The attacker asks for a new code whenever "
        "the limits allow it and guesses distinct random codes until refused, then waits exactly the "
        "`Retry-After` it was given. The chance that k distinct guesses hit a uniform n-digit code is "
        "k / 10^n, so the bound per hour is the most guesses the server compared in any sliding hour / 10^n. "
        "Each time a guess was refused, the right code was submitted too and was refused as well (so refused "
        "guesses are not compared). The control run lifts the per-phone failure cap to show the test sees the "
        "loophole it closes (5 guesses per code x 5 codes an hour).",
        section_meta(s), "",
        table([
            ("simulated time", f"{fmt(s['simulated_hours'])} h"),
            ("codes obtained / sends refused", f"{s['codes_obtained']} / {s['sends_refused']}"),
            ("guesses compared by the server", s["guesses_compared"]),
            ("server compare calls (counted in otplogin.otp)", s.get("server_compare_calls")),
            ("guesses refused (too_many_attempts)", s["guesses_refused"]),
            ("refused, then the right code also refused", s["refused_then_right_code_also_refused"]),
            ("lucky successes", s["lucky_successes"]),
            ("most guesses in any hour", s["max_guesses_in_any_hour"]),
            ("**success probability bound per hour**", f"**{fmt(s['bound_per_hour'])}** (target <= {fmt(s['target_per_hour'])})"),
            ("success probability bound per day", fmt(s["bound_per_day"])),
            ("control: per-phone cap lifted, most guesses in an hour",
             f"{s['control_without_phone_cap']['max_guesses_in_any_hour']} -> bound "
             f"{fmt(s['control_without_phone_cap']['bound_per_hour'])} "
             f"({compared(s['control_without_phone_cap']['bound_per_hour'], s['target_per_hour'])})"),
            ("limits", s["limits"]),
        ]),
    ]
    if p:
        out += ["", "Parallel guessing (threads against one phone inside one simulated hour):", "",
                table([("threads x guesses x rounds", f"{p['threads']} x {p['guesses_per_thread']} x "
                                                      f"{p['rounds_within_one_hour']} = {p['attempts']}"),
                       ("outcomes", p["outcomes"]), ("compared", f"{p['compared']} (hourly budget {p['hourly_budget']})"),
                       ("failure events stored", p["failure_events_stored"])])]
    return out


def pumping(s: dict, h: dict | None) -> list[str]:
    out = [
        "## SMS pumping",
        "Bursts of send_otp every 5 simulated minutes over a corpus built from `phonenumbers` metadata: "
        "mobiles in the allowed countries (CD, MA), mobiles elsewhere, landlines, premium-rate, toll-free, "
        "shared-cost, VoIP, UAN, pager and personal numbers, and malformed input. Messages are counted at the "
        "SMS provider (the real Twilio SDK -> recording proxy -> Prism serving Twilio's OpenAPI contract).",
        section_meta(s), "",
    ]
    for name, title in (("few_ips", "Four IPs, the send guard on (each address's free allowance binds)"),
                        ("many_ips_global_cap", "Many IPs, global cap 40/hour, the guard off (the plain wall binds)")):
        r = s[name]
        out += [f"**{title}**", "", table([
            ("requests", r["requests"]), ("corpus", r["corpus"]), ("simulated hours", r["simulated_hours"]),
            ("accepted (202)", r["accepted_202"]), ("**messages that reached the provider**", f"**{r['reached_provider']}**"),
            ("most per IP in a clock hour (cap)", f"{r.get('max_per_ip_in_a_clock_hour')} ({r['per_ip_cap']})"),
            ("most per IP in any sliding hour", r["max_per_ip_in_any_hour"]),
            ("most in one clock hour (global cap)", f"{r['max_per_clock_hour']} ({r['global_cap_effective']})"),
            ("messages to invalid or disallowed numbers", r["sent_to_disallowed"]),
            ("answers by category", r["outcomes_by_category"]),
        ]), ""]
    if h:
        out += ["**Over HTTP, real send_otp process, 8 concurrent, spoofed left part of X-Forwarded-For**", "",
                table([("requests", h["requests"]), ("statuses", h["statuses"]), ("attacker IPs", h["attacker_ips"]),
                       ("accepted / reached the provider", f"{h['accepted_202']} / {h['reached_provider']}"),
                       ("most per IP (cap)", f"{h['max_per_ip']} ({h['per_ip_cap']})"),
                       ("global cap", h["global_cap"]), ("clock hours touched", h["clock_hours_touched"]),
                       ("messages to invalid or disallowed numbers", h["sent_to_disallowed"]),
                       ("wall time", f"{h['wall_seconds']} s")]), ""]
    return out


DAY_RUNS = (("burst", "Burst on one block (CD, Vodacom, 8123xxxxx) from a new address each request"),
            ("spread", "Numbers of every block of both countries, all day, from a pool of addresses"),
            ("slow", "Low and slow: a few addresses, one request every few minutes, all day"),
            ("control_burst_guard_off", "Control: the same burst, the guard off (the walls of before)"))


def pumping_day(s: dict) -> list[str]:
    out = [
        "## SMS pumping: a simulated day, real users and three attacks",
        "The send guard against a day of traffic on the emulator with an injected clock "
        "(tests/prove/pumping_day.py): real users on their own and on shared carrier-grade NAT addresses, "
        "new and returning numbers (returning: verified two days before), spread over the blocks of both "
        "countries (a few inside the attacked block), typing their code 90 % of the time; a user answered "
        "with a challenge solves it and asks again, one refused with a Retry-After of up to 10 minutes asks "
        "again after it. Served = a code on the first or second try. The attacker never verifies and never "
        "solves a challenge. Every Firestore write is recorded with its simulated time. Asserted: 5xx 0; "
        "texts per clock hour <= the cap; attacker texts in any clock hour <= 5 % of the cap; at most 1 "
        "write a second on any document over any minute; real users served >= 99 % (burst, slow); "
        "returning users >= 99 % and every challenge solver served (spread); the control fails them.",
        section_meta(s), "",
    ]
    for key, title in DAY_RUNS:
        r = s.get(key)
        if not r:
            continue
        w1, w60 = r.get("highest_writes_per_second_1s_window", {}), r.get("highest_writes_per_second_60s_window", {})
        out += [f"**{title}**", "", table([
            ("simulated hours / hourly cap", f"{r['simulated_hours']} / {r['hourly_cap']}"),
            ("real users (served on 1st / 2nd try / not)",
             f"{r['real_users']} ({r['real_served_first_try']} / {r['real_served_second_try']} / {r['real_not_served']})"),
            ("**real users served on the first or second try**", f"**{r['real_served_first_or_second_try_pct']} %**"),
            ("returning / new users served", f"{r['returning_served_pct']} % / {r['new_served_pct']} %"),
            ("users challenged / challenge solvers served", f"{r['challenged_users']} / {r['challenge_solvers_served_pct']} %"),
            ("users in the attacked block served", r["attacked_block_users_served"]),
            ("users behind CGNAT addresses served", r["cgnat_users_served"]),
            ("attacker requests / answers", f"{r['attacker_requests']}: {fmt(r['attacker_answers'])}"),
            ("**texts the attacker received** (most in a clock hour, % of the cap)",
             f"**{r['attacker_texts']}** ({r['attacker_texts_max_per_hour']}, {r['attacker_texts_max_per_hour_pct_of_cap']} %)"),
            ("the bill: texts / most in a clock hour (cap)", f"{r['texts_total']} / {r['texts_max_per_clock_hour']} ({r['hourly_cap']})"),
            ("5xx", r["server_errors_5xx"]),
            ("highest writes on one document, per second (1 s window; 60 s window)",
             f"{w1.get('rate')} ({w1.get('document')}); {w60.get('rate')} ({w60.get('document')})"),
            ("not served, by what they were answered", r["not_served_outcomes"]),
        ]), ""]
    return out


def state_machine(s: dict) -> list[str]:
    return [
        "## State machine",
        "Hypothesis stateful test of OtpService on the emulator with an injected clock: send (provider "
        "accepting or refusing), verify right / wrong / superseded / already used, advance the clock across "
        "the 60 s, 300 s and one-hour boundaries, restart (`runtime.reset()` + a new service: every in-memory "
        "cache dropped). A model predicts every answer exactly; invariants checked after every step against "
        "Firestore: single use, 5 wrong codes per code and 10 per phone per hour, expiry enforced in code, a "
        "superseded code never accepted (except the documented case: a resend whose delivery failed is undone "
        "and the older code stays valid), no plaintext phone or code stored.",
        section_meta(s), "",
        table([("examples", s["examples"]), ("max steps per example", s["max_steps_per_example"]),
               ("steps run", s["steps_run"]), ("actions and answers", s["actions"]),
               ("restart", s["restart_model"])]),
    ]


def fuzz_coverage(s: dict) -> dict[str, int]:
    """How the documented statuses of every operation were reached: by the fuzzer, a dedicated test, design, nothing."""
    out = {"fuzzer": 0, "dedicated test": 0, "by design": 0, "nothing": 0}
    for by in s.get("coverage", {}).values():
        for how in by.values():
            kind = ("nothing" if how is None else "fuzzer" if how.startswith("fuzzer") else
                    "by design" if how.startswith("not reached by design") else "dedicated test")
            out[kind] += 1
    return out


def fuzz_operations(s: dict) -> str:
    """One row per operation: examples per mode, statuses and error codes reached, and the rest of its statuses."""
    rows = ["| operation | examples (positive / negative) | statuses reached | error codes | other documented statuses |",
            "| --- | --- | --- | --- | --- |"]
    runs = s.get("by_operation", {})
    for op, by in s.get("coverage", {}).items():
        pos, neg = runs.get(f"{op} positive", {}), runs.get(f"{op} negative", {})
        examples = " / ".join("not run" if r.get("not_run") and not r.get("examples") else str(r.get("examples", 0))
                              for r in (pos, neg))
        reached = sorted({*pos.get("statuses", {}), *neg.get("statuses", {})})
        codes = sorted({*pos.get("codes", {}), *neg.get("codes", {})})
        rest = [f"{status}: {'NOT REACHED' if how is None else 'by design' if how.startswith('not reached by design') else how.split('::')[-1]}"
                for status, how in by.items() if how is None or not how.startswith("fuzzer")]
        rows.append(f"| `{op}` | {examples} | {', '.join(reached) or '-'} | {', '.join(codes) or '-'} | "
                    f"{'; '.join(rest) or '-'} |")
    return "\n".join(rows)


def fuzz(sections: dict) -> list[str]:
    out = ["## Fuzzing",
           "Schemathesis generates positive and negative requests for every operation of `openapi.yaml`; "
           "each answer must not be a 5xx, must have a documented status, content type, headers and body "
           "schema; negative data must get a 4xx, and positive data must be accepted (the statuses the "
           "operation lists for valid data: success, or a refusal valid data cannot avoid, never a 400). "
           "Positive data is meaningful: CD/MA mobiles from `phonenumbers`' metadata, codes of the configured "
           "length, and seeded state (a code really sent, a login's `mfa_token`, users that exist, a spent "
           "budget) so that success is reachable. A status the fuzzer cannot cause on a healthy stack is "
           "reached by the dedicated test named in the table."]
    for key, title in (("fuzz_openapi_processes", "Real processes"), ("fuzz_openapi_in_process", "In-process")):
        s = sections.get(key)
        if s:
            cov = fuzz_coverage(s)
            out += ["", f"**{title}** {section_meta(s)}", "",
                    table([("operations", s["operations"]), ("examples per operation and mode",
                                                             s["examples_per_operation_and_mode"]),
                           ("fewest examples of an operation", s.get("examples_min_per_operation")),
                           ("requests", s["requests"]), ("statuses", s["statuses"]),
                           ("server errors (5xx other than 503)", s["server_errors_5xx"]),
                           ("documented statuses reached by", cov),
                           ("modes not run, why", Counter(s.get("not_run", {}).values()) or "none")])]
            if s.get("coverage"):
                design = sorted({how.removeprefix("not reached by design: ") for by in s["coverage"].values()
                                 for how in by.values() if how and how.startswith("not reached by design")})
                out += ["", fuzz_operations(s)] + [f"\nBy design: {reason}." for reason in design]
    for key, title in (("nasty_inputs_over_http", "Hand-picked nasties, real processes"),
                       ("nasty_inputs_in_process", "Hand-picked nasties, in-process")):
        s = sections.get(key)
        if s:
            out += ["", f"**{title}** {section_meta(s)}", "",
                    table([("cases", s["cases"]), ("by category", s["by_category"]), ("statuses", s["statuses"]),
                           ("5xx", s["server_errors_5xx"]),
                           ("former 500s, now 4xx (regression cases)", s["former_500_cases_now_4xx"])]
                          + ([("HTTP-only cases", s["http_only_cases"])] if "http_only_cases" in s else []))]
    return out


def faults(sections: dict) -> list[str]:
    out = ["## Faults"]
    fs = sections.get("faults_firestore")
    if fs:
        out += ["", f"**Firestore emulator stopped under running functions, a new one started on the same port** "
                    f"{section_meta(fs)}", "",
                table([("requests in flight during the outage", fs["in_flight_during_outage"]),
                       ("their answers", fs["in_flight_answers"]),
                       ("their duration (s)", fs["in_flight_seconds"]),
                       ("texts sent while Firestore was down", fs["texts_sent_while_down"]),
                       ("emulator restart took (s)", fs["emulator_restart_seconds"]),
                       ("**recovered after the emulator was back (s)**", fs["recovered_seconds_after_emulator_back"]),
                       ("function restarted", fs["function_restarted"])])]
    fd = sections.get("faults_firestore_down")
    if fd:
        out += ["", f"**Requests while Firestore is down** {section_meta(fd)}", "",
                table([("answer", fd["answer"]), ("seconds to answer", fd["seconds"]),
                       ("slowest (bound)", f"{fd['slowest_seconds']} s ({fd['bound_seconds']} s)")])]
    cs = sections.get("faults_secret_manager_cold_start")
    if cs:
        out += ["", f"**Secret Manager down at cold start, then back** {section_meta(cs)}", "",
                table([("answer while down", f"{cs['while_down']['status']} {cs['while_down']['body']['error']['code']} "
                                             f"in {cs['while_down']['seconds']} s"),
                       ("health while down", f"{cs['while_down']['health']} {cs['while_down']['health_secrets']}"),
                       ("recovered after it was back (s)", cs["recovered_seconds"]),
                       ("function restarted", cs["function_restarted"])])]
    rs = sections.get("faults_secret_manager_refresh")
    if rs:
        d = rs["during_outage"]
        out += ["", f"**Secret Manager down during refresh (refresh every {rs['refresh_seconds']} s)** "
                    f"{section_meta(rs)}", "",
                table([("outage", f"{d['outage_seconds']} s"), ("send + verify flows", d["flows"]),
                       ("sends 202 / verifies 200", f"{d['send_202']} / {d['verify_200']}"),
                       ("latency median / max (s)", f"{d['median_latency_seconds']} / {d['max_latency_seconds']}"),
                       ("rotated signing key in use after return (s)", rs["new_key_in_use_seconds_after_return"]),
                       ("function restarted", rs["function_restarted"])])]
    tw = sections.get("faults_twilio")
    if tw:
        rows = []
        for mode in ("429", "500", "garbage", "invalid_to"):
            if mode in tw:
                r = tw[mode]
                rows.append((f"Twilio {mode}", f"{r['outcomes']}; provider hits {r['provider_hits']}; left behind: "
                                               f"codes {r['codes_stored']}, phone events {r['phone_send_events']}, "
                                               f"client count {r.get('client_count', r.get('ip_send_events'))}, "
                                               f"guard counts {r.get('guard_counts', r.get('global_count'))}"))
        for name, r in (tw.get("timeout") or {}).items():
            rows.append((f"Twilio {name.replace('_', ' ')}", f"{r['outcome']} in {r['wall_seconds']} s "
                                                             f"(client timeout {r['client_timeout_seconds']} s)"))
        out += ["", f"**Twilio failing, 8 sends each, 4 at a time** {section_meta(tw)}", "", table(rows, ("fault", "result"))]
    return out


def load_section(s: dict) -> list[str]:
    return [
        "## Load",
        "One functions-framework process per function on loopback; N virtual users (asyncio + aiohttp) send "
        "to a fresh phone, sometimes guess wrong first, submit the right code (half the time twice at once), "
        "and now and then sign in with a password. Codes are read at the provider (recording proxy -> Prism).",
        section_meta(s), "",
        table([("users x seconds", f"{s['users']} x {fmt(s['seconds'])} (wall {s['wall_seconds']} s)"),
               ("requests", f"{s['requests']} ({s['requests_per_second']}/s)"),
               ("statuses by function", s["statuses"]),
               ("latency by function (s)", s["latency_seconds"]),
               ("codes sent / messages at the provider", f"{s['codes_sent']} / {s['messages_at_provider']}"),
               ("codes submitted correctly", s["codes_submitted_correctly"]),
               ("**verified exactly once**", f"**{s['verified_exactly_once']}**"),
               ("**lost / doubled**", f"**{s['lost']} / {s['doubled']}**"),
               ("tokens / distinct", f"{s['tokens']} / {s['distinct_tokens']}"),
               ("unexpected answers", s["unexpected_answers"]),
               ("caps raised for the run", s["caps_raised_for_the_run"])]),
    ]


def leaks(sections: dict) -> list[str]:
    out = ["## Leaks",
           "Every flow (codes by SMS and WhatsApp, wrong and right guesses, password sign-in with PII, wrong "
           "password, unknown user, second factor, tampered token, bad input, Twilio refusing with an error "
           "that quotes the number, health, JWKS) through the Twilio path; then every log line and every "
           "error body is searched for each code, each full phone number (E.164 and national digits), the "
           "passwords, the address, every token and its signature, and every Secret Manager value (and the "
           "base64 body of the signing key, each keyring key)."]
    for key, title in (("leaks_processes", "Real processes (stdout/stderr files)"),
                       ("leaks_in_process", "In-process (the library's JSON formatter)")):
        s = sections.get(key)
        if s:
            out += ["", f"**{title}** {section_meta(s)}", "",
                    table([("requests", s["requests"]), ("log lines scanned", s["log_lines_scanned"]),
                           ("values searched", f"{s['values_searched']} ({s['codes_searched']} codes, "
                                               f"{s['tokens_searched']} tokens, {s['secret_values_searched']} secret values)"),
                           ("error bodies checked", s["error_bodies_checked"]),
                           ("**found in logs**", s["found_in_logs"] or "**nothing**"),
                           ("**found in error bodies**", s["found_in_error_bodies"] or "**nothing**"),
                           ("internals in error bodies", s["internals_in_error_bodies"] or "none")])]
    return out


def static(s: dict) -> list[str]:
    return ["## Static checks", section_meta(s), "",
            table([("ruff (incl. bandit's S rules), paths", s["ruff_paths"]),
                   ("ruff findings", s["ruff_findings"]),
                   ("ruff version", s["ruff_version"]),
                   ("dependency audit", audit_sentence(s["audit"]))])]


def audit_sentence(audit: dict) -> str:
    if not audit.get("ran"):
        return f"not run: {audit.get('reason')}"
    found = audit.get("vulnerable_packages") or {}
    return (f"{audit['audited']} of {audit['packages']} pinned packages audited, "
            f"{sum(len(v) for v in found.values())} known vulnerabilities")


def secret_and_twilio_summary(sections: dict) -> str:
    out = []
    cs = sections.get("faults_secret_manager_cold_start")
    if cs:
        out.append(f"Secret Manager down at cold start: {cs['while_down']['status']} while down, served again "
                   f"{cs['recovered_seconds']} s after its return")
    rs = sections.get("faults_secret_manager_refresh")
    if rs:
        d = rs["during_outage"]
        out.append(f"down during refresh: {d['send_202']} of {d['flows']} sends and {d['verify_200']} of {d['flows']} "
                   "verifies served from the cache")
    tw = sections.get("faults_twilio")
    if tw:
        # A definite refusal gives everything back; an unconfirmed answer (the text may have gone) keeps the code.
        refused = [m for m in ("429", "invalid_to") if m in tw]
        unconfirmed = [m for m in ("500", "garbage") if m in tw]
        left = sum(tw[m]["codes_stored"] + tw[m]["phone_send_events"] + tw[m]["client_count"] + tw[m]["guard_counts"]
                   for m in refused)
        kept = sum(tw[m]["codes_stored"] for m in unconfirmed)
        out.append(f"Twilio refusing ({', '.join(refused)}): {left} codes or counts left behind; unconfirmed "
                   f"({', '.join(unconfirmed)}): {kept} of {sum(tw[m]['sends'] for m in unconfirmed)} codes kept "
                   "with their quota")
    return (" " + "; ".join(out) + ".") if out else ""


def render(data: dict) -> str:
    sections = data.get("sections", {})
    meta = data.get("meta", {})
    lines = [
        "# Proof: abuse, faults, fuzzing, load and leaks",
        "",
        "<!-- Generated by tests/prove/report.py from reports/proof.json; do not edit by hand. -->",
        "",
        "The limits in README.md are claims; this page is what the test suite measured against the real "
        "parts (Firestore emulator, local Secret Manager over gRPC, Twilio's contract served by Prism, "
        "functions-framework processes), offline, on loopback, with bounded loops. Run it with `make prove` "
        "(`PROVE_SIZE=ci make prove` for the reduced size); small versions of the same proofs run in "
        "`make test`. Every figure below is asserted by a test, which fails if it does not hold.",
        "",
        table([("run size", meta.get("size")), ("started", meta.get("started_at")),
               ("duration", f"{meta.get('duration_seconds')} s"), ("commit", meta.get("commit")),
               ("machine", f"{meta.get('cpus')} CPUs, {meta.get('machine')}, Python {meta.get('python')}")],
              ("run", "")),
        "",
    ]
    summary = []
    if "brute_force" in sections:
        b = sections["brute_force"]
        summary.append(f"- Brute force: {b['guesses_compared']} guesses in {fmt(b['simulated_hours'])} simulated hours, "
                       f"at most {b['max_guesses_in_any_hour']} in any hour: success bound "
                       f"{fmt(b['bound_per_hour'])} per phone per hour (target {fmt(b['target_per_hour'])}).")
    if "sms_pumping" in sections:
        p = sections["sms_pumping"]
        reqs = p["few_ips"]["requests"] + p["many_ips_global_cap"]["requests"]
        sent = p["few_ips"]["reached_provider"] + p["many_ips_global_cap"]["reached_provider"]
        runs = (p["few_ips"], p["many_ips_global_cap"])
        over_ip = sum(r.get("max_per_ip_in_a_clock_hour", r["max_per_ip_in_any_hour"]) > r["per_ip_cap"] for r in runs)
        over_global = sum(r["max_per_clock_hour"] > r["global_cap_effective"] for r in runs)
        caps = ("all within the per-IP and global caps" if not (over_ip or over_global)
                else f"{over_ip + over_global} run(s) above a cap")
        disallowed = sum(r["sent_to_disallowed"] for r in runs)
        summary.append(f"- SMS pumping: {reqs} requests, {sent} messages reached the provider, {caps}; "
                       f"{disallowed} to invalid or disallowed numbers.")
    if "sms_pumping_day" in sections:
        d = sections["sms_pumping_day"]
        parts = [f"{k} {d[k]['real_served_first_or_second_try_pct']} % served, attacker "
                 f"{d[k]['attacker_texts_max_per_hour_pct_of_cap']} % of the cap at most in an hour"
                 for k in ("burst", "spread", "slow") if k in d]
        control = d.get("control_burst_guard_off", {})
        summary.append(f"- SMS pumping, a simulated day: {'; '.join(parts)}; the guard off: "
                       f"{control.get('real_served_first_or_second_try_pct')} % served, attacker "
                       f"{control.get('attacker_texts_max_per_hour_pct_of_cap')} % of the cap.")
    if "state_machine" in sections:
        sm = sections["state_machine"]
        answers = sum(n for action, n in sm["actions"].items() if action.startswith(("send:", "verify_")))
        summary.append(f"- State machine: {sm['steps_run']} steps; {answers} answers compared with the model's "
                       f"prediction, {sm.get('mismatches', 0)} different.")
    fz = sections.get("fuzz_openapi_processes") or sections.get("fuzz_openapi_in_process")
    if fz:
        nasties = [sections[k] for k in ("nasty_inputs_over_http", "nasty_inputs_in_process") if k in sections]
        nasty = (f"{sum(n['cases'] for n in nasties)} hand-picked nasties, "
                 f"{sum(n['server_errors_5xx'] for n in nasties)} server errors" if nasties else "no nasties figure")
        cov = fuzz_coverage(fz)
        documented = sum(cov.values())
        statuses = (f"{documented - cov['nothing']} of {documented} documented statuses reached "
                    f"({cov['fuzzer']} by the fuzzer, {cov['dedicated test']} by dedicated tests, "
                    f"{cov['by design']} a bug's 500 not reachable by design)" if documented else "no status coverage figure")
        summary.append(f"- Fuzzing: {fz['requests']} schemathesis requests, {fz['server_errors_5xx']} server errors, "
                       f"{statuses}; {nasty}; what the suite found is listed under Findings.")
    if "faults_firestore" in sections:
        down = sections.get("faults_firestore_down")
        while_down = (f"while it was down, concurrent requests answered {down['answer']} within {down['slowest_seconds']} s "
                      f"(bound {down['bound_seconds']} s)" if down else "no figure for requests while it was down")
        ff = sections["faults_firestore"]
        summary.append(f"- Faults: {ff['in_flight_during_outage']} requests in flight during a Firestore outage answered "
                       f"{fmt(ff['in_flight_answers'])}; new ones succeeded {ff['recovered_seconds_after_emulator_back']} s "
                       f"after the emulator returned (function restarted: {ff['function_restarted']}); {while_down}."
                       + secret_and_twilio_summary(sections))
    if "load" in sections:
        ld = sections["load"]
        summary.append(f"- Load: {ld['requests']} requests from {ld['users']} users in {fmt(ld['seconds'])} s; "
                       f"{ld['verified_exactly_once']} of {ld['codes_submitted_correctly']} codes verified exactly "
                       f"once, {ld['lost']} lost, {ld['doubled']} doubled.")
    lk = sections.get("leaks_processes") or sections.get("leaks_in_process")
    if lk:
        summary.append(f"- Leaks: {lk['log_lines_scanned']} log lines searched for {lk['values_searched']} values: "
                       f"{len(lk['found_in_logs'])} found.")
    if summary:
        lines += ["## Summary", "", *summary, ""]
    parts = []
    if "brute_force" in sections:
        parts += brute_force(sections["brute_force"], sections.get("brute_force_parallel"))
    if "sms_pumping" in sections:
        parts += [""] + pumping(sections["sms_pumping"], sections.get("sms_pumping_http"))
    if "sms_pumping_day" in sections:
        parts += [""] + pumping_day(sections["sms_pumping_day"])
    if "state_machine" in sections:
        parts += [""] + state_machine(sections["state_machine"])
    parts += [""] + fuzz(sections)
    parts += [""] + faults(sections)
    if "load" in sections:
        parts += [""] + load_section(sections["load"])
    parts += [""] + leaks(sections)
    if "static" in sections:
        parts += [""] + static(sections["static"])
    parts += ["", "## Findings", "", FINDINGS.strip()]
    parts += ["", "## What could not be done offline", "", OFFLINE.strip()]
    lines += parts
    return "\n".join(lines).rstrip() + "\n"


def write(source: Path = PROOF_JSON, out: Path = DEFAULT_OUT) -> Path:
    data = load(source)
    if not data.get("sections"):
        raise SystemExit(f"no figures in {source}: run `make prove` first")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(data), encoding="utf-8")
    return out


if __name__ == "__main__":
    args = sys.argv[1:]
    path = write(Path(args[0]) if args else PROOF_JSON, Path(args[1]) if len(args) > 1 else DEFAULT_OUT)
    print(f"wrote {path}")
