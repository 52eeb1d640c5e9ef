output "function_urls" {
  description = "HTTPS URL of each function, keyed by function name."
  value       = { for name, fn in google_cloudfunctions2_function.function : name => fn.url }
}

output "send_otp_url" {
  description = "URL of the send_otp function (POST a phone number to receive a code)."
  value       = try(google_cloudfunctions2_function.function["send_otp"].url, null)
}

output "verify_otp_url" {
  description = "URL of the verify_otp function (POST phone and code, get an access token)."
  value       = try(google_cloudfunctions2_function.function["verify_otp"].url, null)
}

output "login_url" {
  description = "URL of the login function (POST email or code and password)."
  value       = try(google_cloudfunctions2_function.function["login"].url, null)
}

output "function_service_accounts" {
  description = "Runtime service account email of each function."
  value       = { for name, sa in google_service_account.function : name => sa.email }
}

output "source_bucket" {
  description = "Bucket holding the function archives."
  value       = google_storage_bucket.sources.name
}

output "source_objects" {
  description = "Archive object deployed for each function (its name carries the archive's SHA-256)."
  value       = { for name, object in google_storage_bucket_object.source : name => object.name }
}

output "secret_ids" {
  description = "Secret Manager secrets to fill with scripts/add-secret-values.sh."
  value       = sort(keys(local.secrets))
}

output "firestore_database" {
  description = "Name of the Firestore database."
  value       = google_firestore_database.main.name
}

output "ci_workload_identity_provider" {
  description = "Full name of the Workload Identity provider for GitHub Actions: store it as the secret GCP_WORKLOAD_IDENTITY_PROVIDER of the production environment (the deploy workflow reads secrets.GCP_WORKLOAD_IDENTITY_PROVIDER)."
  value       = try(google_iam_workload_identity_pool_provider.github[0].name, null)
}

output "ci_service_account" {
  description = "Email of the deployer service account for GitHub Actions: store it as the secret GCP_DEPLOY_SERVICE_ACCOUNT of the production environment (the deploy workflow reads secrets.GCP_DEPLOY_SERVICE_ACCOUNT)."
  value       = try(google_service_account.deployer[0].email, null)
}

output "log_metrics" {
  description = "metric.type of each log-based metric (logging.googleapis.com/user/otplogin/...), keyed by the log event it counts."
  value       = local.log_metric_types
}

output "alert_policies" {
  description = "Name (projects/.../alertPolicies/...) of each otplogin alert policy, keyed by alert; health checks as health/<function>."
  value = merge(
    { for name, policy in google_monitoring_alert_policy.alert : name => policy.name },
    { for name, policy in google_monitoring_alert_policy.health : "health/${name}" => policy.name },
  )
}

output "uptime_check_ids" {
  description = "Uptime check id of each function's /healthz check, keyed by function name."
  value       = { for name, check in google_monitoring_uptime_check_config.health : name => check.uptime_check_id }
}

output "monitoring_dashboard" {
  description = "Id of the otplogin operations dashboard (Cloud Monitoring > Dashboards > otplogin)."
  value       = google_monitoring_dashboard.main.id
}

output "artifact_repository" {
  description = "Artifact Registry repository the function builds push their images to."
  value       = google_artifact_registry_repository.functions.id
}
