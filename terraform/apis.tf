# The APIs this stack needs. Never disabled on destroy: other workloads in
# the project may rely on them, and disabling Firestore's API is destructive.
resource "google_project_service" "api" {
  for_each = toset(local.apis)

  project                    = var.project_id
  service                    = each.key
  disable_on_destroy         = false
  disable_dependent_services = false
}

# Enabling an API returns before every Google front end accepts calls to it:
# a service account created right after enabling iam.googleapis.com gets
# 403 SERVICE_DISABLED ("If you enabled this API recently, wait a few
# minutes"). Every resource waits for this (tests/terraform/test_deployable.py).
# Adding an API changes the trigger, so the wait runs again.
resource "time_sleep" "apis" {
  create_duration = "90s"

  triggers = {
    apis = join(",", sort(concat(local.apis, [google_project_service.monitoring.service])))
  }

  depends_on = [google_project_service.api, google_project_service.monitoring]
}
