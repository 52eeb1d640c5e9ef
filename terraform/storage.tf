# Function archives, as built by `make build` (tools/build.py).
resource "google_storage_bucket" "sources" {
  project                     = var.project_id
  name                        = local.source_bucket_name
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false
  labels                      = var.labels

  # Earlier archives stay available for a rollback for a while.
  versioning {
    enabled = true
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = var.source_noncurrent_retention_days
      with_state                 = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [time_sleep.apis]

  #checkov:skip=CKV_GCP_62:Holds only the deterministic source archives of the functions, written by Terraform; Cloud Audit Logs (Data Access) cover who reads them, a usage-log bucket would add nothing.
}

# One object per function, named by the SHA-256 of its archive: an unchanged
# function keeps its object name, so its function is not redeployed.
resource "google_storage_bucket_object" "source" {
  for_each = local.deployed_functions

  bucket       = google_storage_bucket.sources.name
  name         = "${each.key}/${filesha256(local.archives[each.key])}.zip"
  source       = local.archives[each.key]
  content_type = "application/zip"

  lifecycle {
    create_before_destroy = true
  }
}
