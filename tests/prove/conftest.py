"""The proof suite: abuse, faults, fuzzing, load and leaks (docs/proof.md).

Tests marked `prove` are the long runs of `make prove` (`-m prove`, size from
`PROVE_SIZE`: `full` by default, `ci` reduced). They run only when the `-m`
expression names `prove`, so a plain `pytest tests` stays fast. Unmarked tests
here are small versions of the same proofs and run in `make test`.
"""

from __future__ import annotations

import time

import pytest

from otplogin import runtime
from tests.prove import figures as figures_mod
from tests.prove.sizes import FAST, prove_size
from tests.support.fakes import Clock, Outbox, code_in  # noqa: F401 (re-exported to the prove tests)

PROVE = "prove"
_session: dict = {"started": time.time(), "prove_ran": False, "outcomes": {}}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "prove: a long proof of `make prove` (abuse, faults, fuzzing, load); select with -m prove"
    )


def _prove_selected(config: pytest.Config) -> bool:
    return PROVE in (config.getoption("markexpr", "") or "") and "not prove" not in config.getoption("markexpr", "")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _prove_selected(config):
        return
    skip = pytest.mark.skip(reason="long proof: run with `make prove` (pytest -m prove)")
    for item in items:
        if item.get_closest_marker(PROVE) is not None:
            item.add_marker(skip)


def pytest_sessionstart(session: pytest.Session) -> None:
    _session["started"] = time.time()
    _session["outcomes"] = {}
    if _prove_selected(session.config):
        # A run starts from nothing: no section of an earlier run may survive into this report.
        figures_mod.PROOF_JSON.unlink(missing_ok=True)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Each prove test's verdict: passed only if setup, call and teardown all passed."""
    if PROVE not in report.keywords:
        return
    outcomes = _session["outcomes"]
    if report.failed or report.skipped:
        outcomes[report.nodeid] = report.outcome
    else:
        outcomes.setdefault(report.nodeid, "passed")


def report_refusal(config: pytest.Config, exitstatus: int, collected: int) -> str | None:
    """Why this run may not render docs/proof.md, or None when it may.

    Only a complete, passing, unfiltered run of the full size renders the report: a failed,
    skipped, `-k`/`--deselect`/node-id-filtered or reduced run never overwrites it."""
    outcomes: dict[str, str] = _session["outcomes"]
    if exitstatus != 0:
        return f"the run failed (exit status {exitstatus})"
    if config.getoption("keyword", "") or config.getoption("deselect", None):
        return "the run was filtered with -k or --deselect"
    if any("::" in arg for arg in config.args):
        return "the run selected single tests"
    if any(arg.endswith(".py") for arg in config.args):
        return "the run selected single files, not the whole of tests/prove"
    if prove_size().name != "full":
        return f"PROVE_SIZE={prove_size().name} is a reduced run"
    not_passed = sorted(node for node, outcome in outcomes.items() if outcome != "passed")
    if not_passed:
        return f"{len(not_passed)} proof(s) did not pass: {', '.join(not_passed[:3])}"
    if len(outcomes) != collected or collected == 0:
        return f"{len(outcomes)} of {collected} proofs ran"
    return None


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not _prove_selected(session.config):
        return
    collected = sum(1 for item in session.items if item.get_closest_marker(PROVE) is not None)
    refusal = report_refusal(session.config, int(exitstatus), collected)
    if refusal:
        print(f"\ndocs/proof.md not rendered: {refusal}")
        return
    figures_mod.record_meta(figures_mod.PROOF_JSON, prove_size().name, _session["started"], time.time())
    from tests.prove import report

    report.write(figures_mod.PROOF_JSON, report.DEFAULT_OUT)
    print(f"\nrendered {report.DEFAULT_OUT.relative_to(figures_mod.REPO)} from a complete, passing run")


def is_prove(request: pytest.FixtureRequest) -> bool:
    return request.node.get_closest_marker(PROVE) is not None


@pytest.fixture
def size(request):
    """The size this test runs at: PROVE_SIZE for `prove` tests, `fast` otherwise."""
    if is_prove(request):
        if not _session["prove_ran"]:
            _session["prove_ran"] = True
            figures_mod.record_meta(figures_mod.PROOF_JSON, prove_size().name, _session["started"])
        return prove_size()
    return FAST


@pytest.fixture
def figures(request, size):
    """`figures(section, data)`: keep this test's figures (proof.json for prove runs, fast.json otherwise)."""
    path = figures_mod.PROOF_JSON if is_prove(request) else figures_mod.FAST_JSON

    def record(section: str, data: dict) -> None:
        figures_mod.record(section, data, path=path, size=size.name)

    return record


# The small fakes live in tests/support/fakes.py (shared with tests/integration).


@pytest.fixture
def twilio_env(stack):
    """The stack with send_otp's provider switched to Twilio (for fixtures that set TWILIO_API_BASE)."""
    return stack | {"SMS_PROVIDER": "twilio"}


@pytest.fixture
def reset_runtime():
    runtime.reset()
    yield
    runtime.reset()
