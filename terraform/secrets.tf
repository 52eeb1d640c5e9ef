# Terraform creates the secrets only. Their values never pass through
# Terraform (so never land in state): they are added out of band with
# scripts/add-secret-values.sh (gcloud, values from stdin or generated).
resource "google_secret_manager_secret" "secret" {
  for_each = local.other_secrets

  project   = var.project_id
  secret_id = each.key
  labels    = var.labels

  replication {
    dynamic "auto" {
      for_each = length(var.secret_replica_locations) == 0 ? [1] : []
      content {}
    }
    dynamic "user_managed" {
      for_each = length(var.secret_replica_locations) == 0 ? [] : [1]
      content {
        dynamic "replicas" {
          for_each = var.secret_replica_locations
          content {
            location = replicas.value
          }
        }
      }
    }
  }

  depends_on = [time_sleep.apis]
}

# The PII keyring decrypts every stored phone number, address and WhatsApp
# number: losing it loses that data for good. Declared on its own so that it
# alone carries prevent_destroy (a lifecycle block cannot vary per instance).
resource "google_secret_manager_secret" "pii_keyring" {
  project             = var.project_id
  secret_id           = local.pii_keyring_secret
  labels              = var.labels
  deletion_protection = true

  # Delayed destruction: destroying a version disables it at once and destroys
  # it only 30 days later; until then a Secret Manager admin restores it
  # (docs/runbook.md, "Restore a destroyed pii-keyring version").
  version_destroy_ttl = "2592000s" # 30 days

  replication {
    dynamic "auto" {
      for_each = length(var.secret_replica_locations) == 0 ? [1] : []
      content {}
    }
    dynamic "user_managed" {
      for_each = length(var.secret_replica_locations) == 0 ? [] : [1]
      content {
        dynamic "replicas" {
          for_each = var.secret_replica_locations
          content {
            location = replicas.value
          }
        }
      }
    }
  }

  depends_on = [time_sleep.apis]

  lifecycle {
    prevent_destroy = true
  }
}

locals {
  secrets = merge(google_secret_manager_secret.secret, { (local.pii_keyring_secret) = google_secret_manager_secret.pii_keyring })
}
