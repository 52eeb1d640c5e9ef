resource "google_cloudfunctions2_function" "function" {
  for_each = local.deployed_functions

  project     = var.project_id
  location    = var.region
  name        = each.value.resource_name
  description = each.value.description
  labels      = merge(var.labels, { function = each.key })

  build_config {
    runtime           = "python311"
    entry_point       = each.key
    service_account   = google_service_account.build.id
    docker_repository = google_artifact_registry_repository.functions.id

    source {
      storage_source {
        bucket = google_storage_bucket.sources.name
        object = google_storage_bucket_object.source[each.key].name
        # The generation this apply uploaded, not "the latest": a new archive
        # is never built from a stale (or a concurrent) upload.
        generation = google_storage_bucket_object.source[each.key].generation
      }
    }
  }

  service_config {
    available_memory                 = each.value.memory
    available_cpu                    = each.value.cpu
    max_instance_request_concurrency = each.value.concurrency
    # The cost ceiling: no traffic spike scales past this many instances.
    max_instance_count             = each.value.max_instance_count
    min_instance_count             = each.value.min_instance_count
    timeout_seconds                = each.value.timeout_seconds
    ingress_settings               = "ALLOW_ALL"
    all_traffic_on_latest_revision = true
    service_account_email          = google_service_account.function[each.key].email
    # Configuration only; no secret value is ever an environment variable.
    environment_variables = merge(each.value.extra_env, local.base_env)
  }

  lifecycle {
    precondition {
      condition     = each.value.concurrency == 1 || tonumber(each.value.cpu) >= 1
      error_message = "${each.key}: a concurrency above 1 needs cpu of at least 1."
    }
  }

  # Access first, and propagated (iam.tf, time_sleep.iam), so a new function
  # starts with its secrets and Firestore readable, and its build reads its
  # source and writes its log and image.
  depends_on = [time_sleep.iam]

  #checkov:skip=CKV_GCP_124:Public by design: the mobile and web client apps call these HTTP functions directly from the internet; abuse is bounded in code (rate limits, attempt budgets) and by max_instance_count.
}

# Anyone may invoke: the client apps call the function URLs without Google
# credentials. Authentication is the job of these very functions.
resource "google_cloud_run_service_iam_member" "public_invoker" {
  for_each = google_cloudfunctions2_function.function

  project  = var.project_id
  location = each.value.location
  # A 2nd gen function is served by the Cloud Run service of the same name.
  service = each.value.name
  role    = "roles/run.invoker"
  member  = "allUsers"

  #checkov:skip=CKV_GCP_102:Public by design: send_otp, verify_otp and login are the unauthenticated entry points of the client apps (they are what issues credentials); abuse is bounded in code and by max_instance_count.
}
