# GitHub Actions deploys each function through Workload Identity Federation:
# no service account key exists. Only workflow runs of var.github_repository,
# on its main branch, in var.github_environment, may impersonate the deployer.
# Created only when var.github_repository is set.
locals {
  ci_enabled  = var.github_repository != null
  github_repo = local.ci_enabled ? split("/", var.github_repository) : ["none", "none"]
  github_org  = local.github_repo[0]
  github_name = local.github_repo[1]
  # What `terraform plan -target` of the functions' archive objects and
  # functions reads (the targets and everything they depend on: the project,
  # its APIs, the accounts and their grants, the secrets, the bucket, the image
  # repository, the database) and what its apply changes (the function; the
  # objects are granted on the bucket below). Reads of metadata and policies,
  # and one write: cloudfunctions.functions.update, never create or delete.
  # tests/terraform/test_deployable.py pins the list.
  deployer_permissions = [
    "artifactregistry.repositories.get",
    "artifactregistry.repositories.getIamPolicy",
    "cloudfunctions.functions.get",
    "cloudfunctions.functions.update",
    "cloudfunctions.operations.get",
    "datastore.databases.getMetadata",
    "iam.serviceAccounts.get",
    "resourcemanager.projects.get",
    "resourcemanager.projects.getIamPolicy",
    "secretmanager.secrets.get",
    "secretmanager.secrets.getIamPolicy",
    "serviceusage.services.get",
    "serviceusage.services.list",
    "storage.buckets.get",
    "storage.buckets.getIamPolicy",
  ]
}

resource "google_iam_workload_identity_pool" "github" {
  count = local.ci_enabled ? 1 : 0

  project                   = var.project_id
  workload_identity_pool_id = "github"
  display_name              = "GitHub Actions"
  description               = "Identities of GitHub Actions workflow runs."

  depends_on = [time_sleep.apis]
}

resource "google_iam_workload_identity_pool_provider" "github" {
  count = local.ci_enabled ? 1 : 0

  project                            = var.project_id
  workload_identity_pool_id          = google_iam_workload_identity_pool.github[0].workload_identity_pool_id
  workload_identity_pool_provider_id = "github-actions"
  display_name                       = "GitHub Actions OIDC"

  attribute_mapping = {
    "google.subject"       = "assertion.sub"
    "attribute.repository" = "assertion.repository"
    "attribute.ref"        = "assertion.ref"
  }

  # Tokens of any other repository, branch or environment are refused here,
  # before any IAM binding is even considered.
  # A job that declares a GitHub environment gets the subject
  # repo:<owner>/<name>:environment:<environment>.
  attribute_condition = "assertion.sub == 'repo:${local.github_org}/${local.github_name}:environment:${var.github_environment}' && assertion.ref == 'refs/heads/main'"

  oidc {
    issuer_uri = "https://token.actions.githubusercontent.com"
  }
}

resource "google_service_account" "deployer" {
  count = local.ci_enabled ? 1 : 0

  project      = var.project_id
  account_id   = "otplogin-deployer"
  display_name = "otplogin CI deployer"
  description  = "Impersonated by GitHub Actions (Workload Identity Federation) to deploy the functions."

  depends_on = [time_sleep.apis]
}

resource "google_service_account_iam_member" "deployer_wif" {
  count = local.ci_enabled ? 1 : 0

  service_account_id = google_service_account.deployer[0].name
  role               = "roles/iam.workloadIdentityUser"
  member             = "principalSet://iam.googleapis.com/${google_iam_workload_identity_pool.github[0].name}/attribute.repository/${var.github_repository}"
}

resource "google_project_iam_custom_role" "deployer" {
  count = local.ci_enabled ? 1 : 0

  project     = var.project_id
  role_id     = "otploginDeployer"
  title       = "otplogin CI deployer"
  description = "Plan and apply the otplogin functions' archives and functions (targeted): read what they depend on, update the functions."
  permissions = local.deployer_permissions

  depends_on = [time_sleep.apis]
}

resource "google_project_iam_member" "deployer" {
  count = local.ci_enabled ? 1 : 0

  project = var.project_id
  role    = google_project_iam_custom_role.deployer[0].id
  member  = "serviceAccount:${google_service_account.deployer[0].email}"
}

# Deploying a function means acting as its runtime and build accounts.
resource "google_service_account_iam_member" "deployer_act_as" {
  for_each = {
    for key, account in merge(google_service_account.function, { build = google_service_account.build }) :
    key => account.name if local.ci_enabled
  }

  service_account_id = each.value
  role               = "roles/iam.serviceAccountUser"
  member             = "serviceAccount:${google_service_account.deployer[0].email}"
}

# Upload the archives and delete the replaced ones: objects of this bucket,
# not the bucket's settings or policy.
resource "google_storage_bucket_iam_member" "deployer_sources" {
  count = local.ci_enabled ? 1 : 0

  bucket = google_storage_bucket.sources.name
  role   = "roles/storage.objectUser"
  member = "serviceAccount:${google_service_account.deployer[0].email}"
}

# Read, write and lock the Terraform state.
resource "google_storage_bucket_iam_member" "deployer_state" {
  count = local.ci_enabled && var.state_bucket != null ? 1 : 0

  bucket = var.state_bucket
  role   = "roles/storage.objectUser"
  member = "serviceAccount:${google_service_account.deployer[0].email}"
}
