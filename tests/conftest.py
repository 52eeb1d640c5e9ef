"""Session-wide real dependencies: the Firestore emulator and the local Secret Manager.

Each starts once per test session on free ports; tests that need a clean
database use `stack` (clears Firestore, points the library at both servers).
"""

from __future__ import annotations

import os

import pytest

from otplogin import runtime
from tests.support.fakes import Clock, Outbox
from tests.support.firestore import FirestoreEmulator
from tests.support.secret_manager import LocalSecretManager
from tests.support.stack import PROJECT, local_env

#: host:port of a Firestore emulator already running (one for a whole mutation run, tools/mutate.py):
#: the session attaches to it instead of starting, and stopping, its own.
SHARED_FIRESTORE = "OTPLOGIN_TEST_FIRESTORE_HOST"


@pytest.fixture(scope="session")
def firestore_emulator():
    shared = os.environ.get(SHARED_FIRESTORE)
    if shared:
        yield FirestoreEmulator(port=int(shared.rpartition(":")[2]), project=PROJECT)
        return
    emulator = FirestoreEmulator(project=PROJECT).start()
    yield emulator
    emulator.stop()


@pytest.fixture(scope="session")
def secret_manager():
    server = LocalSecretManager(PROJECT, seed_dev_secrets=True)
    yield server
    server.close()


@pytest.fixture(scope="session")
def prism():
    from tests.support.prism import PrismMock

    with PrismMock() as mock:
        yield mock


@pytest.fixture
def stack_env(firestore_emulator, secret_manager) -> dict[str, str]:
    """Environment for a function (in-process or a child process) on the local stack."""
    return local_env(firestore_emulator, secret_manager)


@pytest.fixture
def stack(stack_env, firestore_emulator, monkeypatch):
    """A clean database and this process's library pointed at the local stack."""
    firestore_emulator.clear()
    for name, value in stack_env.items():
        monkeypatch.setenv(name, value)
    runtime.reset()
    yield stack_env
    runtime.reset()


@pytest.fixture
def clock():
    """An injected clock for OtpService and SignIn (tests/support/fakes.py)."""
    return Clock()


@pytest.fixture
def outbox():
    """A recording SMS provider (tests/support/fakes.py)."""
    return Outbox()


COLLECTED_FILES = pytest.StashKey[set[str]]()


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Remember every collected test file before `-m` deselects any (tests/meta/test_collection.py)."""
    config.stash[COLLECTED_FILES] = {str(item.path) for item in items}
