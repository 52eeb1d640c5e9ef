"""`make mutate` exists, is listed by `make help`, and stays out of `make test` (it takes many minutes)."""

from __future__ import annotations

import re
from pathlib import Path

MAKEFILE = (Path(__file__).resolve().parents[2] / "Makefile").read_text()


def _rule(target: str) -> tuple[list[str], str]:
    """A target's prerequisites and its recipe."""
    match = re.search(rf"^{target}:([^#\n]*)(?:##[^\n]*)?\n((?:\t[^\n]*\n)*)", MAKEFILE, re.MULTILINE)
    assert match, f"no `{target}` rule in the Makefile"
    return match.group(1).split(), match.group(2)


def test_mutate_is_a_listed_target_that_runs_the_driver() -> None:
    assert re.search(r"^mutate:[^\n]*## \S", MAKEFILE, re.MULTILINE), "`mutate` needs a `##` line for `make help`"
    _, recipe = _rule("mutate")
    assert "tools/mutate.py" in recipe


def test_test_does_not_run_mutate() -> None:
    for target in ("test", "test-fast", "lint"):
        prerequisites, recipe = _rule(target)
        assert "mutate" not in prerequisites
        assert "mutate" not in recipe
