"""docs/deploy.md walks a fresh project from nothing to a passing smoke test.

The order matters as much as the steps: each step below needs what an earlier
one made, and a step out of order fails on a real project with an error the
first-apply checklist quotes.
"""

from __future__ import annotations

import re

import pytest

from tests.terraform import support as tf

DOC = tf.REPO / "docs" / "deploy.md"


def text() -> str:
    return DOC.read_text(encoding="utf-8")


def commands() -> str:
    """The shell blocks only, in order (what an operator pastes)."""
    return "\n".join(re.findall(r"```sh\n(.*?)```", text(), re.S))


def position(needle: str, haystack: str) -> int:
    found = haystack.find(needle)
    assert found >= 0, f"docs/deploy.md never runs: {needle}"
    return found


# Each step, as the command that does it, in the order a fresh project needs them.
BOOTSTRAP = [
    "gcloud auth login",  # gcloud's own credentials (projects, buckets)
    "gcloud projects create",
    "gcloud services enable",  # what Terraform itself needs before it can enable the rest
    "gcloud auth application-default login",  # Terraform and the GCS backend use ADC
    "gcloud storage buckets create",  # the state bucket
    "make build",
    "terraform init -backend-config=",
    "-var deploy_functions=false",  # apply 1: everything but the functions
    "add-secret-values.sh --project",
    "otplogin-admin init",  # the PII canary: login's health is 503 without it
    "otplogin-admin bootstrap-admin",
    "otplogin-admin check-keys",
    "terraform apply -var-file=environments/production.tfvars\n",  # apply 2: the functions
    'curl -sS "$LOGIN"',  # the smoke test: health of each function
    "gh secret set GCP_WORKLOAD_IDENTITY_PROVIDER",  # CI last: no push deploys a half-built project
]


def test_bootstrap_steps_come_in_an_order_that_works():
    cmds = commands()
    positions = [position(step, cmds) for step in BOOTSTRAP]
    out_of_order = [(BOOTSTRAP[i], BOOTSTRAP[i + 1]) for i in range(len(BOOTSTRAP) - 1) if positions[i] > positions[i + 1]]
    assert out_of_order == [], out_of_order


def test_application_default_credentials_come_before_terraform():
    """gcloud's login does not give Terraform credentials: the google provider and the
    gcs backend read Application Default Credentials."""
    cmds = commands()
    assert position("gcloud auth application-default login", cmds) < position("terraform init", cmds)
    assert "gcloud auth application-default set-quota-project" in cmds


def test_the_smoke_test_checks_health_and_the_key_canary():
    doc = text()
    smoke = re.split(r"^## (?:\d+\. )?Smoke test$", doc, maxsplit=1, flags=re.M)[1].split("\n## ", 1)[0]
    assert '"status": "ok"' in smoke and '"pii_keyring": "ok"' in smoke
    assert "canary_missing" in smoke and "otplogin-admin init" in smoke


def test_the_org_policy_exception_for_public_functions_is_explained():
    doc = text()
    assert "iam.allowedPolicyMemberDomains" in doc
    assert "do not belong to a permitted customer" in doc
    assert "gcloud org-policies set-policy" in doc and "allowAll" in doc


def test_the_deploy_pipeline_is_explained():
    doc = text()
    section = re.split(r"^## (?:\d+\. )?Continuous deployment$", doc, maxsplit=1, flags=re.M)[1].split("\n## ", 1)[0]
    for idea in ("deploy-production", "one pending", "cancel", "against the state", "-target",
                 "needs: test", "otplogin-admin init"):
        assert idea in section, idea


# Where only a real project can tell: the exact text an operator would see.
CHECKLIST_ERRORS = [
    "could not find default credentials",  # no ADC
    "SERVICE_DISABLED",  # an API not (yet) enabled
    "Cannot find metric(s) that match type",  # alert before its log metric propagated
    "Access to bucket gcf-v2-sources-",  # build account cannot read the copied source
    "do not belong to a permitted customer",  # allUsers blocked by org policy
    "Saved plan is stale",  # two applies from plans of the same state
    "canary_missing",  # login health before otplogin-admin init
    "is not valid., badRequest",  # a custom role permission the API refuses
]


@pytest.mark.parametrize("error", CHECKLIST_ERRORS)
def test_first_apply_checklist_quotes_what_the_operator_would_see(error):
    doc = text()
    assert "## First apply checklist" in doc
    checklist = doc.split("## First apply checklist", 1)[1].split("\n## ", 1)[0]
    assert error in checklist, error


def test_the_split_applies_and_waits_are_said():
    doc = text()
    for wait in ("time_sleep.apis", "time_sleep.iam", "time_sleep.log_metrics", "10 minutes"):
        assert wait in doc, wait
