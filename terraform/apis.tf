# The APIs this stack needs. Never disabled on destroy: other workloads in
# the project may rely on them, and disabling Firestore's API is destructive.
resource "google_project_service" "api" {
  for_each = toset(local.apis)

  project                    = var.project_id
  service                    = each.key
  disable_on_destroy         = false
  disable_dependent_services = false
}
