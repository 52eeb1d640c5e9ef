"""`terraform fmt -check` and checkov, offline."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from tests.terraform import support as tf

# Every skip is deliberate and carries its reason in the skip comment.
EXPECTED_SKIPS = {
    ("CKV_GCP_102", "google_cloud_run_service_iam_member.public_invoker"),
    ("CKV_GCP_124", "google_cloudfunctions2_function.function"),
    ("CKV_GCP_62", "google_storage_bucket.sources"),
    ("CKV_GCP_84", "google_artifact_registry_repository.functions"),
}


def fmt(path) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CLI_CONFIG_FILE": os.devnull}
    return subprocess.run(
        [tf.terraform_bin(), "fmt", "-check", "-recursive", "-diff", str(path)], capture_output=True, text=True, env=env
    )


def test_terraform_fmt_check_passes():
    done = fmt(tf.TERRAFORM)
    assert done.returncode == 0, done.stdout + done.stderr


def test_terraform_fmt_check_catches_bad_formatting(tmp_path):
    (tmp_path / "bad.tf").write_text('resource "google_storage_bucket" "b" {\nname="b"\n      location = "EU"\n}\n')
    assert fmt(tmp_path).returncode != 0


def run_checkov(directory, *extra) -> dict:
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false", "LOG_LEVEL": "WARNING"}
    done = subprocess.run(
        [
            tf.checkov_bin(),
            "-d",
            str(directory),
            "--framework",
            "terraform",
            "--skip-download",
            "--compact",
            "-o",
            "json",
            *extra,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode in (0, 1), done.stderr[-3000:]
    report = json.loads(done.stdout)
    if isinstance(report, list):  # one report per framework
        report = next(r for r in report if r["check_type"] == "terraform")
    return report


@pytest.fixture(scope="module")
def checkov_report():
    # With the example inputs, so checkov can resolve variables (e.g. the
    # GitHub repository pinned in the Workload Identity trust condition).
    return run_checkov(tf.TERRAFORM, "--var-file", str(tf.TERRAFORM / "examples" / "production" / "terraform.tfvars"))


def test_checkov_has_no_failure(checkov_report):
    failed = [(c["check_id"], c["resource"], c["check_name"]) for c in checkov_report["results"]["failed_checks"]]
    assert failed == []
    assert checkov_report["summary"]["parsing_errors"] == 0
    assert checkov_report["summary"]["resource_count"] >= 30
    passed = {c["check_id"] for c in checkov_report["results"]["passed_checks"]}
    # A few that must be evaluated (and pass) rather than silently not apply.
    assert {"CKV_GCP_29", "CKV_GCP_114", "CKV_GCP_78", "CKV_GCP_125"} <= passed


def test_checkov_skips_are_exactly_the_explained_ones(checkov_report):
    skipped = checkov_report["results"]["skipped_checks"]
    assert {(c["check_id"], c["resource"]) for c in skipped} == EXPECTED_SKIPS
    for check in skipped:
        assert len(check["check_result"].get("suppress_comment") or "") > 40, (
            f"{check['check_id']}: the skip needs its reason"
        )


def test_checkov_does_fail_an_insecure_bucket(tmp_path):
    (tmp_path / "main.tf").write_text(
        'resource "google_storage_bucket" "open" {\n  name     = "open"\n  location = "EU"\n}\n'
    )
    report = run_checkov(tmp_path)
    failed = {c["check_id"] for c in report["results"]["failed_checks"]}
    assert {"CKV_GCP_29", "CKV_GCP_114"} <= failed
