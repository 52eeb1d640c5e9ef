# One service account per function: a compromised function reaches only
# what its own code needs.
resource "google_service_account" "function" {
  for_each = local.functions

  project      = var.project_id
  account_id   = "fn-${each.value.resource_name}"
  display_name = "Cloud Function ${each.key}"
  description  = "Runtime identity of the ${each.key} function (otplogin)."
}

# Firestore read/write. Firestore IAM has no per-collection grant.
resource "google_project_iam_member" "function_datastore" {
  for_each = local.functions

  project = var.project_id
  role    = "roles/datastore.user"
  member  = "serviceAccount:${google_service_account.function[each.key].email}"
}

# secretAccessor on each secret a function reads, and on nothing else: never
# a project-wide grant. admin-password is read by no function.
resource "google_secret_manager_secret_iam_member" "accessor" {
  for_each = local.secret_access

  project   = var.project_id
  secret_id = local.secrets[each.value.secret].secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.function[each.value.function].email}"
}

# The operator CLI (otplogin-admin) runs as a person, not as a function.
resource "google_secret_manager_secret_iam_member" "admin_password" {
  for_each = toset(var.admin_password_accessors)

  project   = var.project_id
  secret_id = google_secret_manager_secret.secret["admin-password"].secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = each.key
}

# Cloud Build runs the function builds as this account, not as the default
# compute service account.
resource "google_service_account" "build" {
  project      = var.project_id
  account_id   = "otplogin-build"
  display_name = "otplogin function builds"
  description  = "Builds the otplogin Cloud Functions from their source archives."
}

resource "google_project_iam_member" "build" {
  for_each = toset(["roles/logging.logWriter", "roles/artifactregistry.writer"])

  project = var.project_id
  role    = each.key
  member  = "serviceAccount:${google_service_account.build.email}"
}

resource "google_storage_bucket_iam_member" "build_source_reader" {
  bucket = google_storage_bucket.sources.name
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${google_service_account.build.email}"
}
