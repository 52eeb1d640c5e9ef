"""What a real project refuses on the first apply, encoded on the parsed HCL.

Each rule here is one a fresh Google Cloud project enforces and no offline
check sees: an API that must be enabled (and propagated) before its first
call, a grant that must exist (and propagate) before a build reads with it, a
metric that must exist for minutes before an alert may name it, a diff the
API's normalisation makes on every plan, and grants no wider than what the
functions and the CI deployer use. docs/deploy.md ("First apply checklist")
quotes the error each rule prevents.
"""

from __future__ import annotations

import json
import re

from tests.terraform import support as tf

FUNCTIONS = {"send_otp", "verify_otp", "login"}
PROJECT_SERVICES = {"google_project_service.api", "google_project_service.monitoring"}


def condition(body: dict) -> dict:
    assert "condition" in body, "no IAM condition"
    return tf.single(body["condition"])


def members_of(account: str) -> dict[tuple[str, str], dict]:
    """IAM grants (any *_iam_member) whose member is `google_service_account.<account>`."""
    return {
        key: body
        for key, body in tf.resources().items()
        if key[0].endswith("_iam_member") and f"google_service_account.{account}" in body.get("member", "")
    }


# --- providers ----------------------------------------------------------------------


def test_every_provider_used_is_pinned():
    """A resource of hashicorp/time (time_sleep) needs the provider pinned next to google."""
    required: dict = {}
    for block in tf.blocks("terraform"):
        for group in block.get("required_providers", []):
            required.update({k: v for k, v in group.items() if not k.startswith("__")})
    assert required["time"]["source"] == "hashicorp/time"
    assert re.fullmatch(r">= ?0\.\d+\.\d+, ?< ?\d+\.\d+\.\d+", required["time"]["version"]), required["time"]
    for rtype, _ in tf.resources():
        assert rtype.split("_", 1)[0] in required, f"{rtype}: its provider is not in required_providers"


# --- the order of the first apply -------------------------------------------------------


def test_apis_are_enabled_then_given_time_to_propagate():
    wait = tf.resource("time_sleep", "apis")
    assert set(tf.references(wait["depends_on"])) == PROJECT_SERVICES
    assert tf.duration_seconds(wait["create_duration"]) >= 60
    # A newly added API waits again: the trigger changes, the sleep is replaced.
    assert "local.apis" in json.dumps(wait["triggers"])


def test_every_resource_waits_for_the_apis():
    """Service accounts were created in parallel with enabling iam.googleapis.com
    (403 SERVICE_DISABLED on a fresh project): nothing may be created before the APIs."""
    no_api, no_wait = [], []
    for rtype, name in tf.resources():
        address = f"{rtype}.{name}"
        if address in PROJECT_SERVICES or address == "time_sleep.apis":
            continue
        before = tf.upstream(address)
        if not before & PROJECT_SERVICES:
            no_api.append(address)
        elif "time_sleep.apis" not in before:
            no_wait.append(address)
    assert no_api == [], f"created in parallel with enabling the APIs: {no_api}"
    assert no_wait == [], f"created before the enabled APIs had time to propagate: {no_wait}"


def test_functions_wait_for_every_grant_their_build_and_runtime_use():
    """A grant takes up to minutes to apply everywhere (the provider's
    cloudfunctions2_basic_builder example waits 60 s): a build started at once
    cannot read its source, a new function cannot read its secrets."""
    wait = tf.resource("time_sleep", "iam")
    assert tf.duration_seconds(wait["create_duration"]) >= 60
    waited = tf.references(wait["depends_on"])
    grants = {f"{t}.{n}" for t, n in [*members_of("build"), *members_of("function")]}
    assert grants, "no grant to the build or runtime accounts found"
    assert grants <= waited, f"not waited for: {sorted(grants - waited)}"
    fn = tf.resource("google_cloudfunctions2_function", "function")
    assert "time_sleep.iam" in tf.references(fn["depends_on"])


def test_alert_policies_wait_for_the_log_metrics_they_read():
    """A log-based metric is unknown to alerting for up to 10 minutes after it is created:
    404 "Cannot find metric(s) that match type ..." (terraform-provider-google#11102)."""
    wait = tf.resource("time_sleep", "log_metrics")
    assert "google_logging_metric.event" in tf.references(wait["depends_on"])
    assert tf.duration_seconds(wait["create_duration"]) >= 600
    assert "google_logging_metric.event" in json.dumps(wait["triggers"]), "a new metric waits again"
    assert "time_sleep.log_metrics" in tf.upstream("google_monitoring_alert_policy.alert")
    for (rtype, name), body in tf.resources("google_monitoring_alert_policy").items():
        if "log_metric_types" in json.dumps(body):
            assert "time_sleep.log_metrics" in tf.upstream(f"{rtype}.{name}"), name


# --- the function build ---------------------------------------------------------------


def test_build_account_may_read_the_gcf_v2_sources_bucket_and_nothing_else():
    """2nd gen copies storage_source into gcf-v2-sources-<project number>-<region> and
    Cloud Build fetches it from there (terraform-provider-google#20571): "Access to
    bucket gcf-v2-sources-... denied" unless the build account may read it."""
    grants = members_of("build")
    project_storage = {k: b for k, b in grants.items() if k[0] == "google_project_iam_member" and "storage" in b["role"]}
    assert len(project_storage) == 1, project_storage
    (_, body), = project_storage.items()
    assert body["role"] == "roles/storage.objectViewer"
    expression = condition(body)["expression"].replace("${local.gcf_sources_bucket}", tf.locals_()["gcf_sources_bucket"])
    bucket = "projects/_/buckets/gcf-v2-sources-${data.google_project.this.number}-${var.region}"
    # The bucket itself (objects.list) and its objects (objects.get), and no other bucket
    # whose name merely starts the same.
    assert expression == f'resource.name == "{bucket}" || resource.name.startsWith("{bucket}/")'
    assert tf.data_sources()["data.google_project.this"]["project_id"] == "${var.project_id}"


def test_build_account_pushes_images_only_to_the_functions_repository():
    """artifactregistry.writer project-wide let a build overwrite any image: the
    build writes into one repository, granted on that repository."""
    grants = members_of("build")
    assert not [k for k, b in grants.items() if k[0] == "google_project_iam_member" and "artifactregistry" in b["role"]]
    repo = tf.resource("google_artifact_registry_repository", "functions")
    assert repo["format"] == "DOCKER" and repo["location"] == "${var.region}"
    assert repo.get("cleanup_policies"), "every deploy adds an image: old ones must go"
    writer = [b for k, b in grants.items() if k[0] == "google_artifact_registry_repository_iam_member"]
    assert len(writer) == 1 and writer[0]["role"] == "roles/artifactregistry.writer"
    assert "google_artifact_registry_repository.functions" in writer[0]["repository"]
    build = tf.single(tf.resource("google_cloudfunctions2_function", "function")["build_config"])
    assert build["docker_repository"] == "${google_artifact_registry_repository.functions.id}"
    roles = {b["role"] for k, b in grants.items() if k[0] == "google_project_iam_member"}
    assert roles == {"roles/logging.logWriter", "roles/storage.objectViewer"}, roles


def test_storage_source_generation_is_the_uploaded_objects():
    """Without a generation the build takes "the latest"; with the object's own, a new
    zip is never built from a stale or a concurrent upload."""
    build = tf.single(tf.resource("google_cloudfunctions2_function", "function")["build_config"])
    storage = tf.single(tf.single(build["source"])["storage_source"])
    assert storage["generation"] == "${google_storage_bucket_object.source[each.key].generation}"


# --- plans that stay empty ---------------------------------------------------------------


def test_dashboard_json_holds_only_what_the_api_keeps():
    """The Monitoring API drops zero, false, empty and default-enum fields; whatever the
    file holds that the API drops is a diff on every plan (terraform-provider-google#16173)."""
    dashboard = json.loads((tf.TERRAFORM / "dashboards" / "otplogin.json").read_text(encoding="utf-8"))
    dropped: list[str] = []

    def walk(value, path):
        if isinstance(value, dict):
            if not value:
                dropped.append(path)
            for key, item in value.items():
                walk(item, f"{path}.{key}")
        elif isinstance(value, list):
            if not value:
                dropped.append(path)
            for i, item in enumerate(value):
                walk(item, f"{path}[{i}]")
        elif value is False or value in ("", "0s") or (value == 0 and value is not True):  # "0s": a zero Duration
            dropped.append(f"{path}={value!r}")
        elif isinstance(value, str) and re.fullmatch(r"[A-Z_]*(UNSPECIFIED|_NONE)", value):
            dropped.append(f"{path}={value}")

    walk(dashboard, "$")
    assert dropped == [], f"the API drops these, so every plan shows them as a change: {dropped}"


# --- losing no key -------------------------------------------------------------------------


def test_a_destroyed_pii_keyring_version_stays_restorable():
    """A destroyed keyring version is every ciphertext it encrypted, gone. With delayed
    destruction, "destroy" disables the version and destroys it only after the TTL:
    until then `gcloud secrets versions enable` restores it (docs/runbook.md)."""
    body = tf.resource("google_secret_manager_secret", "pii_keyring")
    assert tf.duration_seconds(body["version_destroy_ttl"]) >= 30 * 86400
    runbook = (tf.REPO / "docs" / "runbook.md").read_text(encoding="utf-8")
    section = runbook.split("## Restore a destroyed pii-keyring version", 1)
    assert len(section) == 2, "docs/runbook.md has no keyring restore section"
    text = section[1].split("\n## ", 1)[0]
    for needed in ("gcloud secrets versions enable", "scheduledDestroyTime", "30 days", "roles/secretmanager.admin",
                   "otplogin-admin check-keys"):
        assert needed in text, needed


# --- least privilege -------------------------------------------------------------------------


def test_functions_reach_only_their_own_database():
    """Firestore IAM has no per-collection grant, but a condition keeps datastore.user
    to this database (not any other database of the project)."""
    body = tf.resource("google_project_iam_member", "function_datastore")
    assert body["role"] == "roles/datastore.user"
    expression = condition(body)["expression"]
    assert expression == 'resource.name == "projects/${var.project_id}/databases/${google_firestore_database.main.name}"'


# What refreshing (or, for the function, updating) each kind of block costs the
# deployer: the permissions the provider's read of it calls.
PERMISSIONS_BY_TYPE = {
    "data.google_project": {"resourcemanager.projects.get"},
    "google_project_service": {"serviceusage.services.get", "serviceusage.services.list"},
    "google_project_iam_member": {"resourcemanager.projects.getIamPolicy"},
    "google_service_account": {"iam.serviceAccounts.get"},
    "google_secret_manager_secret": {"secretmanager.secrets.get"},
    "google_secret_manager_secret_iam_member": {"secretmanager.secrets.getIamPolicy"},
    "google_storage_bucket": {"storage.buckets.get"},
    "google_storage_bucket_iam_member": {"storage.buckets.getIamPolicy"},
    "google_storage_bucket_object": set(),  # objects: roles/storage.objectUser on the bucket only
    "google_artifact_registry_repository": {"artifactregistry.repositories.get"},
    "google_artifact_registry_repository_iam_member": {"artifactregistry.repositories.getIamPolicy"},
    "google_firestore_database": {"datastore.databases.getMetadata"},
    "google_cloudfunctions2_function": {
        "cloudfunctions.functions.get", "cloudfunctions.functions.update", "cloudfunctions.operations.get",
    },
    "time_sleep": set(),  # no API
}
TARGETS = ("google_storage_bucket_object.source", "google_cloudfunctions2_function.function")


def test_deployer_holds_only_what_a_targeted_function_apply_needs():
    """`terraform plan -target` of the archives and functions refreshes the targets and
    everything they depend on; the apply updates a function. The custom role holds
    exactly the permissions of that set, nothing project-wide beyond it."""
    planned = set(TARGETS).union(*(tf.upstream(t) for t in TARGETS))
    kinds = {a.rsplit(".", 1)[0] for a in planned}
    unknown = kinds - set(PERMISSIONS_BY_TYPE)
    assert not unknown, f"the targeted plan now reads {unknown}: say which permissions that needs"
    needed = set().union(*(PERMISSIONS_BY_TYPE[k] for k in kinds))
    role = tf.resource("google_project_iam_custom_role", "deployer")
    assert role["permissions"] == "${local.deployer_permissions}"
    assert set(tf.locals_()["deployer_permissions"]) == needed
    assert not [p for p in needed if re.search(r"\.(create|delete|setIamPolicy|actAs)$", p)]
    grants = members_of("deployer")
    project_roles = {b["role"] for k, b in grants.items() if k[0] == "google_project_iam_member"}
    assert project_roles == {"${google_project_iam_custom_role.deployer[0].id}"}, project_roles
    sources = tf.resource("google_storage_bucket_iam_member", "deployer_sources")
    assert sources["role"] == "roles/storage.objectUser", "objects of this bucket, not the bucket's admin"
    text = json.dumps([b for b in grants.values()])
    for broad in ("roles/storage.admin", "roles/run.viewer", "roles/iam.securityReviewer",
                  "roles/cloudfunctions.developer", "roles/editor", "roles/owner"):
        assert broad not in text, broad
    # Acting as the build and runtime accounts: on those accounts only.
    act_as = tf.resource("google_service_account_iam_member", "deployer_act_as")
    assert act_as["role"] == "roles/iam.serviceAccountUser"
    assert "google_service_account.function" in act_as["for_each"] and "google_service_account.build" in act_as["for_each"]


def test_ci_outputs_name_the_secrets_the_workflows_read():
    outputs = tf.outputs()
    workflows = "\n".join(p.read_text() for p in (tf.REPO / ".github" / "workflows").glob("*.yml"))
    for output, secret in (("ci_workload_identity_provider", "GCP_WORKLOAD_IDENTITY_PROVIDER"),
                           ("ci_service_account", "GCP_DEPLOY_SERVICE_ACCOUNT")):
        description = outputs[output]["description"]
        assert "variable" not in description, f"{output}: the workflows read a secret, not a variable"
        assert f"secret {secret}" in description and "production" in description, description
        assert f"secrets.{secret}" in workflows and f"vars.{secret}" not in workflows


# --- alert policies as data -------------------------------------------------------------------


def test_alert_policies_are_one_resource_over_a_validated_map():
    policies = tf.resources("google_monitoring_alert_policy")
    assert set(policies) == {("google_monitoring_alert_policy", "alert"), ("google_monitoring_alert_policy", "health")}
    alert = policies[("google_monitoring_alert_policy", "alert")]
    assert isinstance(alert["for_each"], dict), "for_each over a literal map (the log contract reads its filters)"
    checks = " ".join(p["condition"] for p in tf.single(alert["lifecycle"])["precondition"])
    for validated in ("severity", "combiner", "conditions", "runbook"):
        assert f"each.value.{validated}" in checks, f"{validated} is not validated"
    entries = {k: v for k, v in alert["for_each"].items() if not k.startswith("__")}
    assert set(entries) == {"pii_key", "secret_load", "verify_ratio", "sms_failure", "sms_pumping",
                            "send_global_cap", "refresh_reuse", "http_5xx", "firestore"}
    for name, entry in entries.items():
        assert {"display_name", "severity", "combiner", "auto_close", "runbook", "subject", "content",
                "conditions"} <= set(entry), name
    # Existing policies keep their identity (no destroy and re-create of the incidents' history).
    moved = {tf.single(m)["from"] for m in tf.blocks("moved")} if tf.blocks("moved") else set()
    added_since = {"refresh_reuse"}  # created in the map: no resource of its own ever existed
    assert {f"${{google_monitoring_alert_policy.{name}}}" for name in set(entries) - added_since} <= moved, moved
    text = (tf.TERRAFORM / "monitoring_alerts.tf").read_text(encoding="utf-8")
    assert text.count('resource "google_monitoring_alert_policy"') == 1
