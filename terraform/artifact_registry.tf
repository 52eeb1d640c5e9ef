# The functions' container images. Cloud Functions would otherwise push into
# the gcf-artifacts repository it creates itself, which no module can grant on
# before it exists, so the build account would need artifactregistry.writer on
# every repository of the project. Here it writes into this one only.
resource "google_artifact_registry_repository" "functions" {
  project       = var.project_id
  location      = var.region
  repository_id = "otplogin-functions"
  description   = "Container images of the otplogin Cloud Functions, built by Cloud Build."
  format        = "DOCKER"
  labels        = var.labels

  # Every deploy adds an image: keep the recent ones (a rollback redeploys an
  # archive, which rebuilds; these only speed it up) and delete the rest.
  cleanup_policy_dry_run = false

  cleanup_policies {
    id     = "keep-recent"
    action = "KEEP"
    most_recent_versions {
      keep_count = 10
    }
  }

  cleanup_policies {
    id     = "delete-old"
    action = "DELETE"
    condition {
      older_than = "2592000s" # 30 days
    }
  }

  depends_on = [time_sleep.apis]

  #checkov:skip=CKV_GCP_84:Holds only images built from the function sources in this repository (no secret, no user data: secrets are read at run time from Secret Manager); Google-managed encryption at rest. A customer-managed key would add a KMS key and grants to the Cloud Functions and Artifact Registry service agents for nothing to protect.
}

resource "google_artifact_registry_repository_iam_member" "build" {
  project    = var.project_id
  location   = google_artifact_registry_repository.functions.location
  repository = google_artifact_registry_repository.functions.name
  role       = "roles/artifactregistry.writer"
  member     = "serviceAccount:${google_service_account.build.email}"
}
