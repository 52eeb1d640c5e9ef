# GitHub Actions deploys each function through Workload Identity Federation:
# no service account key exists. Only workflow runs of var.github_repository,
# on its main branch, in var.github_environment, may impersonate the deployer.
# Created only when var.github_repository is set.
locals {
  ci_enabled  = var.github_repository != null
  github_repo = local.ci_enabled ? split("/", var.github_repository) : ["none", "none"]
  github_org  = local.github_repo[0]
  github_name = local.github_repo[1]
  # What a targeted `terraform apply` of one function reads or changes
  # (its archive object and function, refreshing what they depend on).
  deployer_project_roles = toset([
    "roles/cloudfunctions.developer",
    "roles/iam.securityReviewer",
    "roles/iam.serviceAccountViewer",
    "roles/run.viewer",
    "roles/secretmanager.viewer",
    "roles/serviceusage.serviceUsageViewer",
  ])
}

resource "google_iam_workload_identity_pool" "github" {
  count = local.ci_enabled ? 1 : 0

  project                   = var.project_id
  workload_identity_pool_id = "github"
  display_name              = "GitHub Actions"
  description               = "Identities of GitHub Actions workflow runs."

  depends_on = [google_project_service.api]
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
  description  = "Impersonated by GitHub Actions (Workload Identity Federation) to deploy one function at a time."
}

resource "google_service_account_iam_member" "deployer_wif" {
  count = local.ci_enabled ? 1 : 0

  service_account_id = google_service_account.deployer[0].name
  role               = "roles/iam.workloadIdentityUser"
  member             = "principalSet://iam.googleapis.com/${google_iam_workload_identity_pool.github[0].name}/attribute.repository/${var.github_repository}"
}

resource "google_project_iam_member" "deployer" {
  for_each = local.ci_enabled ? local.deployer_project_roles : toset([])

  project = var.project_id
  role    = each.key
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

# Upload archives (and read the bucket when refreshing).
resource "google_storage_bucket_iam_member" "deployer_sources" {
  count = local.ci_enabled ? 1 : 0

  bucket = google_storage_bucket.sources.name
  role   = "roles/storage.admin"
  member = "serviceAccount:${google_service_account.deployer[0].email}"
}

# Read, write and lock the Terraform state.
resource "google_storage_bucket_iam_member" "deployer_state" {
  count = local.ci_enabled && var.state_bucket != null ? 1 : 0

  bucket = var.state_bucket
  role   = "roles/storage.objectUser"
  member = "serviceAccount:${google_service_account.deployer[0].email}"
}
