# One service account per function: a compromised function reaches only
# what its own code needs.
resource "google_service_account" "function" {
  for_each = local.functions

  project      = var.project_id
  account_id   = "fn-${each.value.resource_name}"
  display_name = "Cloud Function ${each.key}"
  description  = "Runtime identity of the ${each.key} function (otplogin)."

  depends_on = [time_sleep.apis]
}

# Firestore read/write. Firestore IAM has no per-collection grant; the
# condition keeps it to this database, not any other of the project.
resource "google_project_iam_member" "function_datastore" {
  for_each = local.functions

  project = var.project_id
  role    = "roles/datastore.user"
  member  = "serviceAccount:${google_service_account.function[each.key].email}"

  condition {
    title       = "otplogin database only"
    description = "Documents of the otplogin Firestore database."
    expression  = "resource.name == \"projects/${var.project_id}/databases/${google_firestore_database.main.name}\""
  }
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
# compute service account. What a build does, and the grant for each step:
#   fetch the source   2nd gen copies storage_source into its own bucket
#                      gcf-v2-sources-<project number>-<region> and the build
#                      reads it from there (build_sources below)
#   push the image     the functions' repository (artifact_registry.tf)
#   write its log      roles/logging.logWriter
resource "google_service_account" "build" {
  project      = var.project_id
  account_id   = "otplogin-build"
  display_name = "otplogin function builds"
  description  = "Builds the otplogin Cloud Functions from their source archives."

  depends_on = [time_sleep.apis]
}

data "google_project" "this" {
  project_id = var.project_id
}

locals {
  # The bucket Cloud Functions (2nd gen) copies each source archive into.
  gcf_sources_bucket = "projects/_/buckets/gcf-v2-sources-${data.google_project.this.number}-${var.region}"
}

resource "google_project_iam_member" "build_logs" {
  project = var.project_id
  role    = "roles/logging.logWriter"
  member  = "serviceAccount:${google_service_account.build.email}"
}

# Read the copied source: that bucket (objects.list) and its objects
# (objects.get), and no other bucket. A bucket the platform creates cannot
# take a resource-level grant from this module, hence the condition.
resource "google_project_iam_member" "build_sources" {
  project = var.project_id
  role    = "roles/storage.objectViewer"
  member  = "serviceAccount:${google_service_account.build.email}"

  condition {
    title       = "gcf-v2-sources bucket only"
    description = "The bucket Cloud Functions copies the otplogin source archives into."
    expression  = "resource.name == \"${local.gcf_sources_bucket}\" || resource.name.startsWith(\"${local.gcf_sources_bucket}/\")"
  }
}

# The archives as uploaded (the build may read the original object too).
resource "google_storage_bucket_iam_member" "build_source_reader" {
  bucket = google_storage_bucket.sources.name
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${google_service_account.build.email}"
}

# A grant reaches every Google front end only after a while (the provider's
# cloudfunctions2_basic_builder example waits 60 s): a build started at once
# fails with "Access to bucket gcf-v2-sources-... denied", a new function
# cannot read its secrets. The functions wait for every grant their build and
# runtime accounts hold; a new grant (a new function, a new secret) waits again.
resource "time_sleep" "iam" {
  create_duration = "90s"

  triggers = {
    grants = join(",", sort(concat(
      [for m in google_project_iam_member.function_datastore : m.id],
      [for m in google_secret_manager_secret_iam_member.accessor : m.id],
      [google_project_iam_member.build_logs.id, google_project_iam_member.build_sources.id],
      [google_storage_bucket_iam_member.build_source_reader.id, google_artifact_registry_repository_iam_member.build.id],
    )))
  }

  depends_on = [
    google_project_iam_member.function_datastore,
    google_secret_manager_secret_iam_member.accessor,
    google_project_iam_member.build_logs,
    google_project_iam_member.build_sources,
    google_storage_bucket_iam_member.build_source_reader,
    google_artifact_registry_repository_iam_member.build,
  ]
}

# The build account's log grant was one instance of a for_each over roles (the
# other, artifactregistry.writer project-wide, is gone: artifact_registry.tf).
moved {
  from = google_project_iam_member.build["roles/logging.logWriter"]
  to   = google_project_iam_member.build_logs
}
