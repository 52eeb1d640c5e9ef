"""`make bench` at reduced size (CI): every section is produced, and the round-trip targets hold.

Timing ratios are reported by the benchmark, not asserted here (the machines are
shared and noisy); RPC counts are deterministic, so they are asserted exactly.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ONE_READ_ONE_COMMIT = {"BatchGetDocuments": 1, "Commit": 1}


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("bench") / "results.json"
    run = subprocess.run(
        [sys.executable, str(REPO / "bench" / "run.py"), "--quick", "--out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )
    assert run.returncode == 0, f"bench failed:\n{run.stdout[-4000:]}\n{run.stderr[-4000:]}"
    assert "Targets" in run.stdout  # the table was printed
    return json.loads(out.read_text())


def test_every_section_is_there(results):
    functions = {"send_otp", "verify_otp", "login"}
    assert results["meta"]["mode"] == "quick"
    assert set(results["cold_start"]["import"]) == functions
    assert set(results["cold_start"]["first_response"]) == functions
    for c in results["cold_start"]["import"].values():
        assert c["import_main_ms"] > 0 and c["import_floor_ms"] > 0 and c["ratio"] > 0
    for f in results["cold_start"]["first_response"].values():
        assert 0 < f["function"]["listen_ms"] <= f["function"]["first_response_ms"]
    assert set(results["warm_latency"]) == functions
    for w in results["warm_latency"].values():
        assert w["function"]["p50_ms"] > 0 and w["floor"]["p50_ms"] > 0 and "ratio_p50" in w
    assert set(results["scaling"]["throughput"]) == functions
    for t in results["scaling"]["throughput"].values():
        assert set(t["levels"]) == {"1", "8", "32"}
        assert all(level["throughput_rps"] > 0 for level in t["levels"].values())
    assert len(results["scaling"]["users_growth"]["sizes"]) >= 2
    assert set(results["scaling"]["send_contention"]["levels"]) == {"1", "8", "32"}
    assert results["memory"]["peak_pss_mib"] > results["memory"]["idle_pss_mib"] > 0
    assert results["targets"] and all({"target", "value", "goal", "met"} <= set(t) for t in results["targets"])


def test_verify_otp_is_one_read_and_one_commit(results):
    warm = results["round_trips"]["warm"]["verify_otp"]
    assert warm["firestore_rpcs_per_request"] == ONE_READ_ONE_COMMIT
    assert warm["firestore_rpcs_per_request_all_same"]


def test_a_refresh_is_one_read_and_one_commit(results):
    refresh = results["sessions"]["refresh"]
    assert refresh["round_trips"]["firestore_rpcs_per_request"] == ONE_READ_ONE_COMMIT
    assert refresh["round_trips"]["firestore_rpcs_per_request_all_same"]
    assert refresh["round_trips"]["query_scans"] == refresh["round_trips"]["secret_manager_calls"] == 0
    assert refresh["function"]["p50_ms"] > 0 and refresh["floor"]["p50_ms"] > 0


def test_login_uses_direct_gets_and_no_scans(results):
    warm = results["round_trips"]["warm"]
    # email pointer; the reservation (IP, account, client windows + user) and its commit; the release and its commit
    assert warm["login"]["firestore_rpcs_per_request"] == {"BatchGetDocuments": 3, "Commit": 2}
    assert warm["login_by_code"]["firestore_rpcs_per_request"] == {"BatchGetDocuments": 2, "Commit": 2}
    assert warm["login"]["query_scans"] == warm["login_by_code"]["query_scans"] == 0
    growth = results["scaling"]["users_growth"]
    assert growth["rpcs_constant"] and growth["query_scans"] == 0


def test_no_secret_manager_calls_when_warm(results):
    for name in ("send_otp", "verify_otp", "login", "login_by_code"):
        warm = results["round_trips"]["warm"][name]
        assert warm["warm_requests"] > 0
        assert warm["secret_manager_calls"] == 0, name
        # The quick run is shorter than one refresh period: the schedule allows one call per cached secret.
        assert warm["warm_seconds"] < 300 and warm["secret_manager_refreshes_allowed"] >= 1, name
        assert warm["secret_manager_calls_beyond_schedule"] == 0, name


def test_every_outcome_costs_the_expected_round_trips(results):
    expected = {
        ("send_otp", "sent"): ({"BatchGetDocuments": 1, "Commit": 1}, 1),
        ("verify_otp", "right code"): (ONE_READ_ONE_COMMIT, 0),
        ("verify_otp", "wrong code"): (ONE_READ_ONE_COMMIT, 0),
        ("verify_otp", "no active code"): ({"BatchGetDocuments": 1}, 0),
        ("login", "by email"): ({"BatchGetDocuments": 3, "Commit": 2}, 0),
        ("login", "by code"): ({"BatchGetDocuments": 2, "Commit": 2}, 0),
        ("login", "wrong password"): ({"BatchGetDocuments": 2, "Commit": 1}, 0),
        ("login", "unknown user"): ({"BatchGetDocuments": 2, "Commit": 1}, 0),
    }
    got = {(o["function"], o["outcome"]): (o["firestore"], o["twilio_http"]) for o in results["round_trips"]["outcomes"]}
    assert got == expected
    assert all(o["secret_manager"] == 0 and o["query_scans"] == 0 for o in results["round_trips"]["outcomes"])


def test_login_peak_memory_fits_the_terraform_memory(results):
    memory = results["memory"]
    assert memory["peak_pss_mib"] <= memory["memory_mib"], memory


def test_results_are_stamped_with_the_exact_commit_and_tree_state(results):
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True)
    assert results["meta"]["commit"] == head.stdout.strip()
    assert isinstance(results["meta"]["uncommitted_changes"], bool)


def test_a_missed_target_fails_the_run_and_never_becomes_the_results(results, tmp_path):
    from bench import report, run

    broken = copy.deepcopy(results)
    broken["memory"]["met"] = False  # a deterministic target: gated by the quick run too
    out = tmp_path / "results.json"
    assert run.publish(broken, out) == 1
    assert not out.exists()
    missed = json.loads((tmp_path / "results.missed.json").read_text())
    assert [t["target"] for t in report.missed(missed["targets"], "quick")] == [
        t["target"] for t in missed["targets"] if t["target"].startswith("login peak memory")]


def test_timing_targets_are_gated_by_the_full_run(results, tmp_path):
    from bench import run

    slow = copy.deepcopy(results)
    slow["warm_latency"]["verify_otp"]["met"] = False
    slow["cold_start"]["first_response"]["login"]["met"] = False
    assert run.publish(slow, tmp_path / "quick.json") == 0  # the quick run reports timing, gates the rest
    slow["meta"]["mode"] = "full"
    assert run.publish(slow, tmp_path / "full.json") == 1
    assert (tmp_path / "full.missed.json").exists() and not (tmp_path / "full.json").exists()


def test_secret_calls_beyond_the_refresh_schedule_fail_the_run(results, tmp_path):
    from bench import run

    per_request = copy.deepcopy(results)
    per_request["round_trips"]["warm"]["login"]["secret_manager_calls_beyond_schedule"] = 1
    assert run.publish(per_request, tmp_path / "results.json") == 1
    assert not (tmp_path / "results.json").exists()


def test_cold_starts_run_on_precompiled_project_sources():
    # Both sides load bytecode, whatever PYTHONDONTWRITEBYTECODE says: the library is not compiled per start.
    import importlib.util

    from bench import coldstart

    trees = coldstart.precompile()
    sources = [p for tree in trees for p in (REPO / tree).rglob("*.py")]
    assert any(p.name == "main.py" for p in sources) and len(sources) > 30
    assert all(Path(importlib.util.cache_from_source(str(p))).exists() for p in sources)
