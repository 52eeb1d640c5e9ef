"""Every test file under the folders this run was asked for is collected.

pytest's default `norecursedirs` skips folders named `build`, which once hid
tests/build/ from `make test` entirely; this fails if any folder is skipped again.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import COLLECTED_FILES

TESTS = Path(__file__).resolve().parents[1]


def _requested_roots(config: pytest.Config) -> list[Path]:
    roots = []
    for arg in config.args or [str(TESTS)]:
        path = (config.invocation_params.dir / arg.split("::")[0]).resolve()
        if path.is_dir() and (path == TESTS or TESTS in path.parents):
            roots.append(path)
    return roots


def test_every_test_file_under_the_requested_folders_is_collected(request: pytest.FixtureRequest) -> None:
    collected = request.config.stash[COLLECTED_FILES]
    roots = _requested_roots(request.config)
    on_disk = {str(p) for root in roots for p in root.rglob("test_*.py") if "node_modules" not in p.parts}
    assert str(Path(__file__).resolve()) in on_disk  # the scan sees this file: it is not vacuous
    missing = sorted(on_disk - collected)
    assert not missing, f"test files pytest did not collect (check norecursedirs in pytest.ini): {missing}"

