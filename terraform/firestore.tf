# All OTP, rate-limit and user state lives here (no process memory is trusted
# across requests). Losing no data: delete protection, point-in-time recovery
# (7 days of versions) and scheduled backups; prevent_destroy keeps
# `terraform destroy` from even trying.
resource "google_firestore_database" "main" {
  project                           = var.project_id
  name                              = "(default)"
  location_id                       = var.firestore_location
  type                              = "FIRESTORE_NATIVE"
  concurrency_mode                  = var.firestore_concurrency_mode
  app_engine_integration_mode       = "DISABLED"
  point_in_time_recovery_enablement = "POINT_IN_TIME_RECOVERY_ENABLED"
  delete_protection_state           = "DELETE_PROTECTION_ENABLED"
  # Removing it from Terraform forgets it; only a person disabling delete
  # protection in the console can delete it.
  deletion_policy = "ABANDON"

  depends_on = [time_sleep.apis]

  lifecycle {
    prevent_destroy = true
  }
}

# TTL policies: Firestore deletes documents whose `expires_at` (a Timestamp)
# has passed, typically within 24 hours. Cleanup only: expiry itself is
# enforced in code.
resource "google_firestore_field" "ttl" {
  for_each = local.ttl_collections

  project    = var.project_id
  database   = google_firestore_database.main.name
  collection = each.key
  field      = "expires_at"

  ttl_config {}

  # No single-field index on expires_at: nothing queries it, and an index on
  # an ever-increasing timestamp only costs writes (and hotspots at scale).
  index_config {}
}

# Indexes: none needed. Every read is a direct document get by id (otp_codes
# by HMAC of the phone, refresh_families and refresh_subjects by HMAC of the
# family id and of the subject, otp_counters by limit/key/bucket, users by user code,
# user_emails by lower-cased email), and gets need no index. Add a
# google_firestore_index here if a query on several fields is ever introduced.

resource "google_firestore_backup_schedule" "daily" {
  project   = var.project_id
  database  = google_firestore_database.main.name
  retention = "${var.firestore_daily_backup_retention_days * 86400}s"

  daily_recurrence {}
}

resource "google_firestore_backup_schedule" "weekly" {
  count = var.firestore_weekly_backup_retention_weeks > 0 ? 1 : 0

  project   = var.project_id
  database  = google_firestore_database.main.name
  retention = "${var.firestore_weekly_backup_retention_weeks * 7 * 86400}s"

  weekly_recurrence {
    day = "SUNDAY"
  }
}
