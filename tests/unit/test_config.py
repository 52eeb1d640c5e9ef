"""Settings from the environment: test numbers only where they cannot hand out real access."""

from __future__ import annotations

import logging

import pytest

from otplogin.config import ConfigError, Settings

EMULATOR = {"GOOGLE_CLOUD_PROJECT": "demo-otp", "FIRESTORE_EMULATOR_HOST": "127.0.0.1:8080"}
PRODUCTION = {"GOOGLE_CLOUD_PROJECT": "acme-prod"}


def test_test_numbers_work_in_emulator_mode():
    settings = Settings.from_env(EMULATOR | {"OTP_TEST_NUMBERS": "+243800000001=424242"})
    assert settings.test_numbers == {"+243800000001": "424242"}


@pytest.mark.parametrize("phone", ["+243\u0668\u0660\u0660000001", "+2438000000\uff101", "+0243800000001", "243800000001"])
def test_a_test_number_not_spelled_as_ascii_e164_is_refused(phone):
    # Such an entry could never match a request (codes are looked up by their ASCII E.164): say so at start-up.
    with pytest.raises(ConfigError, match="OTP_TEST_NUMBERS entries"):
        Settings.from_env(EMULATOR | {"OTP_TEST_NUMBERS": f"{phone}=424242"})


@pytest.mark.parametrize("env", [PRODUCTION, {"GOOGLE_CLOUD_PROJECT": "acme-prod", "FIRESTORE_EMULATOR_HOST": "x:1"}])
def test_test_numbers_are_refused_outside_emulator_mode(env):
    # A real project (even one pointed at an emulator host by mistake) must not give fixed codes.
    with pytest.raises(ConfigError, match="OTP_TEST_NUMBERS_IN_PRODUCTION"):
        Settings.from_env(env | {"OTP_TEST_NUMBERS": "+243812345678=424242"})


def test_the_production_flag_allows_only_reserved_fiction_ranges():
    flag = {"OTP_TEST_NUMBERS_IN_PRODUCTION": "true"}
    with pytest.raises(ConfigError, match="reserved") as info:
        Settings.from_env(PRODUCTION | flag | {"OTP_TEST_NUMBERS": "+447700900123=424242,+243812345678=111111"})
    assert "243812345678" not in str(info.value)  # a real number is never echoed into logs
    settings = Settings.from_env(PRODUCTION | flag | {"OTP_TEST_NUMBERS": "+447700900123=424242,+12025550142=111111"})
    assert settings.test_numbers == {"+447700900123": "424242", "+12025550142": "111111"}
    assert settings.test_numbers_in_production


@pytest.mark.parametrize("value", ["yes please", "2"])
def test_the_production_flag_is_a_strict_boolean(value):
    with pytest.raises(ConfigError, match="OTP_TEST_NUMBERS_IN_PRODUCTION"):
        Settings.from_env(PRODUCTION | {"OTP_TEST_NUMBERS_IN_PRODUCTION": value})


def test_the_production_flag_alone_changes_nothing():
    settings = Settings.from_env(PRODUCTION | {"OTP_TEST_NUMBERS_IN_PRODUCTION": "true"})
    assert settings.test_numbers == {} and not settings.test_numbers_in_production


def test_the_failure_cap_per_client_is_configurable():
    assert Settings.from_env(PRODUCTION).failures_per_ip_per_hour == 50
    assert Settings.from_env(PRODUCTION | {"OTP_FAILURES_PER_IP_PER_HOUR": "7"}).failures_per_ip_per_hour == 7


def test_production_test_numbers_are_logged_when_the_service_starts(caplog):
    from otplogin.otp import OtpService

    settings = Settings.from_env(
        PRODUCTION | {"OTP_TEST_NUMBERS_IN_PRODUCTION": "true", "OTP_TEST_NUMBERS": "+447700900123=424242"}
    )
    with caplog.at_level(logging.WARNING, logger="otplogin"):
        OtpService(settings, pepper=lambda: "p" * 43, sender=lambda: None)  # type: ignore[arg-type,return-value]
    [record] = [r for r in caplog.records if getattr(r, "fields", {}).get("event") == "otp_test_numbers_enabled"]
    assert record.levelno == logging.WARNING and record.fields["count"] == 1
    assert "447700900123" not in record.getMessage()
