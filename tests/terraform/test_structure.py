"""Structural checks on the parsed HCL of terraform/ (no provider needed)."""

from __future__ import annotations

import json
import re

import pytest

from tests.terraform import support as tf

FUNCTIONS = {"send_otp", "verify_otp", "login"}
# docs/architecture.md: which function reads which secret.
SECRETS_READ = {
    "send_otp": {"otp-pepper", "twilio-account-sid", "twilio-auth-token", "twilio-sender"},
    "verify_otp": {"otp-pepper", "jwt-signing-keys"},
    "login": {
        "otp-pepper",
        "jwt-signing-keys",
        "pii-keyring",
        "twilio-account-sid",
        "twilio-auth-token",
        "twilio-sender",
    },
}
ALL_SECRETS = {
    "otp-pepper",
    "jwt-signing-keys",
    "pii-keyring",
    "twilio-account-sid",
    "twilio-auth-token",
    "twilio-sender",
    "admin-password",
}
EXPIRING_COLLECTIONS = {"otp_codes", "otp_counters", "refresh_families", "refresh_subjects"}


def literal_set(expr: str) -> set[str]:
    match = re.fullmatch(r"\$\{toset\((\[.*\])\)\}", expr, re.S)
    assert match, f"not a literal toset([...]): {expr}"
    return set(json.loads(match.group(1)))


def function_defaults() -> dict:
    return tf.locals_()["function_defaults"]


# --- functions ---------------------------------------------------------------


def test_the_three_functions_are_defined_once_and_deployed_with_for_each():
    assert set(function_defaults()) == FUNCTIONS
    fns = tf.resources("google_cloudfunctions2_function")
    assert list(fns) == [("google_cloudfunctions2_function", "function")], "one resource, for_each over the map"
    body = fns[("google_cloudfunctions2_function", "function")]
    assert body["for_each"] == "${local.deployed_functions}"
    assert (
        tf.locals_()["deployed_functions"]
        == "${{for name, fn in local.functions : name => fn if var.deploy_functions}}"
    )
    build = tf.single(body["build_config"])
    assert build["runtime"] == "python311"
    assert build["entry_point"] == "${each.key}", "entry point is named like the function's folder"


def test_every_function_runs_as_its_own_service_account():
    sa = tf.resource("google_service_account", "function")
    assert sa["for_each"] == "${local.functions}"
    assert sa["account_id"] == "fn-${each.value.resource_name}"
    service = tf.single(tf.resource("google_cloudfunctions2_function", "function")["service_config"])
    assert service["service_account_email"] == "${google_service_account.function[each.key].email}"
    # Account ids are 6-30 characters: fn-<name with hyphens>.
    for name in FUNCTIONS:
        account_id = "fn-" + name.replace("_", "-")
        assert 6 <= len(account_id) <= 30 and re.fullmatch(r"[a-z][a-z0-9-]+[a-z0-9]", account_id)


def test_sizing_is_set_and_login_memory_fits_its_argon2_concurrency():
    service = tf.single(tf.resource("google_cloudfunctions2_function", "function")["service_config"])
    for arg in (
        "available_memory",
        "available_cpu",
        "max_instance_request_concurrency",
        "max_instance_count",
        "timeout_seconds",
    ):
        assert service[arg].startswith("${each.value."), arg
    mib = {"Mi": 1, "Gi": 1024}
    for name, fn in function_defaults().items():
        memory = int(fn["memory"][:-2]) * mib[fn["memory"][-2:]]
        assert 1 <= fn["max_instance_count"] <= 100, f"{name}: max_instance_count is the cost ceiling"
        assert fn["timeout_seconds"] <= 60
        if fn["concurrency"] > 1:
            assert float(fn["cpu"]) >= 1, f"{name}: concurrency > 1 needs a whole vCPU"
        if name == "login":
            # Argon2id m=19 MiB per request in flight, plus ~150 MiB baseline.
            assert 19 * fn["concurrency"] + 150 <= memory, "login memory too small for its concurrency"
        else:
            assert fn["memory"] == "256Mi"


def test_environment_carries_configuration_only():
    service = tf.single(tf.resource("google_cloudfunctions2_function", "function")["service_config"])
    assert "secret_environment_variables" not in service and "secret_volumes" not in service
    env = tf.locals_()["base_env"]
    assert set(env) == {
        "GOOGLE_CLOUD_PROJECT",
        "SMS_PROVIDER",
        "OTP_ALLOWED_COUNTRIES",
        "CORS_ALLOWED_ORIGINS",
        "JWT_ISSUER",
        "JWT_AUDIENCE",
        "LOG_LEVEL",
        "LOG_EXECUTION_ID",
    }
    assert env["SMS_PROVIDER"] == "twilio"
    for value in env.values():
        assert "secret" not in str(value).lower(), value
    # extra_env comes first, so it cannot override the module's own settings.
    assert service["environment_variables"] == "${merge(each.value.extra_env, local.base_env)}"
    assert tf.variables()["otp_allowed_countries"]["default"] == ["CD", "MA"]
    assert tf.variables()["cors_allowed_origins"]["default"] == []


def test_public_invoker_on_each_function_with_a_reasoned_checkov_skip():
    invoker = tf.resource("google_cloud_run_service_iam_member", "public_invoker")
    assert invoker["for_each"] == "${google_cloudfunctions2_function.function}"
    assert invoker["member"] == "allUsers" and invoker["role"] == "roles/run.invoker"
    skips = [c for c in tf.comments(invoker) if c.startswith("checkov:skip=CKV_GCP_102:")]
    assert skips and len(skips[0].split(":", 2)[2]) > 40, "the skip must say why the functions are public"
    # Nothing else is public.
    for (rtype, name), body in tf.resources().items():
        if (rtype, name) != ("google_cloud_run_service_iam_member", "public_invoker"):
            assert "allUsers" not in json.dumps(body) and "allAuthenticatedUsers" not in json.dumps(body), (rtype, name)


# --- IAM and secrets -----------------------------------------------------------


def test_secret_accessor_only_per_secret_and_only_to_readers():
    for (rtype, name), body in tf.resources().items():
        text = json.dumps(body)
        if rtype.startswith(("google_project_iam", "google_organization_iam", "google_folder_iam")):
            assert "secretmanager" not in text, f"{rtype}.{name}: no project-wide Secret Manager grant"
        if "roles/secretmanager.secretAccessor" in text:
            assert rtype == "google_secret_manager_secret_iam_member", f"{rtype}.{name}"
        assert rtype not in {"google_project_iam_binding", "google_project_iam_policy"}, "no authoritative project IAM"
    accessor = tf.resource("google_secret_manager_secret_iam_member", "accessor")
    assert accessor["for_each"] == "${local.secret_access}"
    assert accessor["member"] == "serviceAccount:${google_service_account.function[each.value.function].email}"
    assert accessor["secret_id"] == "${local.secrets[each.value.secret].secret_id}"
    assert {name: set(fn["secrets"]) for name, fn in function_defaults().items()} == SECRETS_READ
    assert not any("admin-password" in fn["secrets"] for fn in function_defaults().values())


def test_datastore_user_per_function_account():
    ds = tf.resource("google_project_iam_member", "function_datastore")
    assert ds["for_each"] == "${local.functions}"
    assert ds["role"] == "roles/datastore.user"
    assert ds["member"] == "serviceAccount:${google_service_account.function[each.key].email}"


def test_all_secrets_exist_and_no_value_is_in_terraform():
    local = tf.locals_()
    assert local["pii_keyring_secret"] == "pii-keyring"
    assert literal_set(local["other_secrets"]) | {local["pii_keyring_secret"]} == ALL_SECRETS
    assert not tf.resources("google_secret_manager_secret_version"), "secret values never go through Terraform"
    assert not tf.blocks("data") or "secret_manager_secret_version" not in json.dumps(tf.blocks("data"))
    for doc in tf.parsed().values():
        text = json.dumps(doc)
        assert '"secret_data' not in text
    for path in [*tf.TERRAFORM.rglob("*.tf"), *tf.TERRAFORM.rglob("*.tfvars"), *tf.TERRAFORM.rglob("*.hcl")]:
        text = path.read_text()
        assert "PRIVATE KEY" not in text, path
        assert not re.search(r"\bAC[0-9a-f]{32}\b", text), f"{path}: looks like a Twilio SID"


def test_pii_keyring_cannot_be_destroyed():
    body = tf.resource("google_secret_manager_secret", "pii_keyring")
    assert body["secret_id"] == "${local.pii_keyring_secret}"
    assert tf.single(body["lifecycle"])["prevent_destroy"] is True
    assert body["deletion_protection"] is True


# --- Firestore ------------------------------------------------------------------


def test_ttl_policy_for_each_expiring_collection():
    assert literal_set(tf.locals_()["ttl_collections"]) == EXPIRING_COLLECTIONS
    fields = tf.resources("google_firestore_field")
    ttl = [b for b in fields.values() if "ttl_config" in b]
    assert len(ttl) == 1
    body = ttl[0]
    assert body["for_each"] == "${local.ttl_collections}"
    assert body["collection"] == "${each.key}"
    assert body["field"] == "expires_at"
    assert body["database"] == "${google_firestore_database.main.name}"


def test_firestore_database_loses_no_data():
    db = tf.resource("google_firestore_database", "main")
    assert db["name"] == "(default)" and db["type"] == "FIRESTORE_NATIVE"
    assert db["delete_protection_state"] == "DELETE_PROTECTION_ENABLED"
    assert db["point_in_time_recovery_enablement"] == "POINT_IN_TIME_RECOVERY_ENABLED"
    assert tf.single(db["lifecycle"])["prevent_destroy"] is True
    schedules = tf.resources("google_firestore_backup_schedule")
    assert any("daily_recurrence" in b for b in schedules.values())
    for body in schedules.values():
        assert body["database"] == "${google_firestore_database.main.name}"
    assert not tf.resources("google_firestore_index"), "all reads are direct gets: no composite index"


# --- source bucket and archives -------------------------------------------------


def test_source_bucket_is_private_and_versioned():
    bucket = tf.resource("google_storage_bucket", "sources")
    assert bucket["uniform_bucket_level_access"] is True
    assert bucket["public_access_prevention"] == "enforced"
    assert tf.single(bucket["versioning"])["enabled"] is True
    assert bucket["force_destroy"] is False


def test_one_object_per_function_named_by_content_hash():
    obj = tf.resource("google_storage_bucket_object", "source")
    assert obj["for_each"] == "${local.deployed_functions}"
    assert "filesha256(local.archives[each.key])" in obj["name"]
    assert obj["source"] == "${local.archives[each.key]}"
    build = tf.single(tf.resource("google_cloudfunctions2_function", "function")["build_config"])
    storage = tf.single(tf.single(build["source"])["storage_source"])
    assert storage["object"] == "${google_storage_bucket_object.source[each.key].name}"
    assert not tf.blocks("data") or "archive_file" not in json.dumps(tf.blocks("data"))


# --- module conventions -----------------------------------------------------------


def test_every_variable_is_typed_described_and_validated():
    for name, var in tf.variables().items():
        assert var.get("type"), f"variable {name} has no type"
        assert len(var.get("description", "")) > 20, f"variable {name} has no real description"
        if var["type"] != "bool":
            assert var.get("validation"), f"variable {name} has no validation"


def test_outputs_are_described_and_include_the_function_urls():
    outs = tf.outputs()
    for name, out in outs.items():
        assert out.get("description"), f"output {name} has no description"
    for name in FUNCTIONS:
        assert f'google_cloudfunctions2_function.function["{name}"].url' in outs[f"{name}_url"]["value"]
    assert "fn.url" in outs["function_urls"]["value"]


def test_required_apis_are_enabled():
    apis = set(tf.locals_()["apis"])
    assert {
        "cloudfunctions.googleapis.com",
        "run.googleapis.com",
        "cloudbuild.googleapis.com",
        "artifactregistry.googleapis.com",
        "firestore.googleapis.com",
        "secretmanager.googleapis.com",
    } <= apis
    api = tf.resource("google_project_service", "api")
    assert api["disable_on_destroy"] is False


@pytest.mark.parametrize(
    "name",
    [
        "versions.tf",
        "variables.tf",
        "outputs.tf",
        "firestore.tf",
        "iam.tf",
        "secrets.tf",
        "functions.tf",
        "storage.tf",
        "apis.tf",
    ],
)
def test_one_concern_per_file(name):
    assert (tf.TERRAFORM / name).is_file()


def test_readme_documents_every_input_and_output():
    readme = (tf.TERRAFORM / "README.md").read_text()
    for name in tf.variables():
        assert f"`{name}`" in readme, f"README misses input {name}"
    for name in tf.outputs():
        assert f"`{name}`" in readme, f"README misses output {name}"
