"""In-process functions (functions-framework apps) on the local stack."""

import pytest

from tests.support.apps import app_client


@pytest.fixture
def send(stack):
    return app_client("send_otp")


@pytest.fixture
def verify(stack):
    return app_client("verify_otp")
