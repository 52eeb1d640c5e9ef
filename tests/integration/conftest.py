"""In-process functions (functions-framework apps) on the local stack."""

import pytest

from otplogin import store
from tests.support.apps import app_client
from tests.support.firestore_faults import FaultyFirestore


@pytest.fixture
def send(stack):
    return app_client("send_otp")


@pytest.fixture
def verify(stack):
    return app_client("verify_otp")


@pytest.fixture
def faulty_firestore(stack, monkeypatch):
    """This process's Firestore client, wrapped so its commits and reads fail on cue (the emulator underneath)."""
    faulty = FaultyFirestore(store.client())
    monkeypatch.setattr(store, "_client", faulty)
    return faulty
