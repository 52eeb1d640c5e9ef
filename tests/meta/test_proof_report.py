"""docs/proof.md only from a complete, passing, unfiltered full run; its sentences from its data."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from tests.prove import conftest as prove_conftest
from tests.prove import report


def config(args: list[str] | None = None, keyword: str = "", deselect: list[str] | None = None) -> Any:
    options = {"keyword": keyword, "deselect": deselect, "markexpr": "prove"}
    return SimpleNamespace(args=args or ["tests/prove"], getoption=lambda name, default=None: options.get(name, default))


@pytest.fixture
def full_size(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROVE_SIZE", "full")


@pytest.fixture
def outcomes(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    ran: dict[str, str] = {"tests/prove/test_a.py::test_one": "passed", "tests/prove/test_b.py::test_two": "passed"}
    monkeypatch.setitem(prove_conftest._session, "outcomes", ran)
    return ran


def test_a_complete_passing_full_run_renders(full_size: None, outcomes: dict[str, str]) -> None:
    assert prove_conftest.report_refusal(config(), 0, collected=2) is None


@pytest.mark.parametrize(
    ("cfg", "exitstatus", "collected", "reason"),
    [
        (config(), 1, 2, "the run failed"),
        (config(keyword="pumping"), 0, 2, "filtered"),
        (config(deselect=["tests/prove/test_a.py::test_one"]), 0, 2, "filtered"),
        (config(args=["tests/prove/test_a.py::test_one"]), 0, 2, "single tests"),
        (config(args=["tests/prove/test_a.py"]), 0, 2, "single files"),
        (config(), 0, 3, "2 of 3 proofs ran"),
    ],
)
def test_partial_or_failed_runs_never_render(
    full_size: None, outcomes: dict[str, str], cfg: Any, exitstatus: int, collected: int, reason: str
) -> None:
    refusal = prove_conftest.report_refusal(cfg, exitstatus, collected)
    assert refusal is not None and reason in refusal


def test_a_skipped_or_failed_proof_refuses_the_report(full_size: None, outcomes: dict[str, str]) -> None:
    outcomes["tests/prove/test_b.py::test_two"] = "skipped"
    refusal = prove_conftest.report_refusal(config(), 0, collected=2)
    assert refusal is not None and "did not pass" in refusal


def test_a_reduced_run_never_renders(monkeypatch: pytest.MonkeyPatch, outcomes: dict[str, str]) -> None:
    monkeypatch.setenv("PROVE_SIZE", "ci")
    refusal = prove_conftest.report_refusal(config(), 0, collected=2)
    assert refusal is not None and "reduced" in refusal


def pumping_run(per_ip_max: int, disallowed: int) -> dict[str, Any]:
    return {"requests": 100, "reached_provider": 40, "max_per_ip_in_any_hour": per_ip_max, "per_ip_cap": 20,
            "max_per_clock_hour": 40, "global_cap_effective": 40, "sent_to_disallowed": disallowed,
            "corpus": {}, "simulated_hours": 1, "accepted_202": 40, "outcomes_by_category": {}}


def summary_of(sections: dict[str, Any]) -> str:
    text = report.render({"sections": sections, "meta": {}})
    return text.split("## Summary", 1)[1].split("\n## ", 1)[0]


def test_summary_sentences_follow_the_figures() -> None:
    good = summary_of({"sms_pumping": {"few_ips": pumping_run(20, 0), "many_ips_global_cap": pumping_run(3, 0)}})
    assert "all within the per-IP and global caps; 0 to invalid or disallowed numbers" in good
    bad = summary_of({"sms_pumping": {"few_ips": pumping_run(25, 2), "many_ips_global_cap": pumping_run(3, 1)}})
    assert "1 run(s) above a cap; 3 to invalid or disallowed numbers" in bad
    assert "all within" not in bad


def test_state_machine_summary_counts_what_was_compared() -> None:
    sm = {"steps_run": 12, "actions": {"send:sent": 4, "verify_right:ok": 3, "advance": 5, "restart": 1},
          "examples": 1, "max_steps_per_example": 12, "restart_model": "reset"}
    assert "12 steps; 7 answers compared with the model's prediction, 0 different" in summary_of({"state_machine": sm})


def test_a_dependency_audit_that_did_not_run_says_so() -> None:
    assert report.audit_sentence({"ran": False, "reason": "no vulnerability data"}) == "not run: no vulnerability data"
    sentence = report.audit_sentence({"ran": True, "audited": 9, "packages": 10, "vulnerable_packages": {"x": ["CVE-1"]}})
    assert sentence == "9 of 10 pinned packages audited, 1 known vulnerabilities"


def fuzz_run(reached_503: bool) -> dict[str, Any]:
    how_503 = "tests/x.py::test_down" if reached_503 else None
    return {"requests": 10, "server_errors_5xx": 0, "operations": 1, "examples_per_operation_and_mode": 5,
            "statuses": {"202": 10}, "by_operation": {"POST /send_otp positive": {"examples": 5, "statuses": {"202": 5}}},
            "coverage": {"POST /send_otp": {"202": "fuzzer (5)", "500": "not reached by design: a bug", "503": how_503}}}


def test_fuzz_summary_counts_the_statuses_reached_from_the_figures() -> None:
    good = summary_of({"fuzz_openapi_processes": fuzz_run(True)})
    assert "3 of 3 documented statuses reached (1 by the fuzzer, 1 by dedicated tests, 1 a bug's 500" in good
    bad = summary_of({"fuzz_openapi_processes": fuzz_run(False)})
    assert "2 of 3 documented statuses reached (1 by the fuzzer, 0 by dedicated tests" in bad
    page = report.render({"sections": {"fuzz_openapi_processes": fuzz_run(False)}, "meta": {}})
    assert "503: NOT REACHED" in page
