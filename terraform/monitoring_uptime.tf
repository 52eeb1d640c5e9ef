# Uptime checks on each function's health endpoint, and an alert when one fails.
#
# GET /healthz reports the readiness of the function's dependencies (Firestore,
# its secrets, the SMS provider, and for login the PII key canary) and answers
# 200 only when all are ok, 503 otherwise, never with a secret in the body. The
# checks call the Cloud Run service URL of each function (service_config.uri),
# where the path reaches the function unchanged. Created only with the functions.
resource "google_monitoring_uptime_check_config" "health" {
  for_each = google_cloudfunctions2_function.function

  project            = var.project_id
  display_name       = "otplogin ${each.key} /healthz"
  period             = var.uptime_check_period
  timeout            = "10s"
  checker_type       = "STATIC_IP_CHECKERS"
  log_check_failures = true
  user_labels        = merge(var.labels, { function = each.key })

  http_check {
    request_method = "GET"
    path           = "/healthz"
    port           = 443
    use_ssl        = true
    validate_ssl   = true

    accepted_response_status_codes {
      status_class = "STATUS_CLASS_2XX"
    }
  }

  content_matchers {
    content = "\"status\": \"ok\""
    matcher = "CONTAINS_STRING"
  }

  monitored_resource {
    type = "uptime_url"
    labels = {
      project_id = var.project_id
      host       = trimsuffix(trimprefix(each.value.service_config[0].uri, "https://"), "/")
    }
  }

  depends_on = [time_sleep.apis]
}

# One policy per function, so an incident names the function in its title.
resource "google_monitoring_alert_policy" "health" {
  for_each = google_monitoring_uptime_check_config.health

  project               = var.project_id
  display_name          = "otplogin: ${each.key} health check failing"
  combiner              = "OR"
  severity              = "ERROR"
  notification_channels = var.alert_notification_channels
  user_labels           = merge(var.labels, { function = each.key })

  conditions {
    display_name = "${each.key} /healthz failing from more than one checker region"
    condition_threshold {
      filter          = "metric.type=\"monitoring.googleapis.com/uptime_check/check_passed\" AND resource.type=\"uptime_url\" AND metric.label.check_id=\"${each.value.uptime_check_id}\""
      comparison      = "COMPARISON_GT"
      threshold_value = 1
      duration        = "${2 * tonumber(trimsuffix(var.uptime_check_period, "s"))}s"
      aggregations {
        alignment_period     = "1200s"
        per_series_aligner   = "ALIGN_NEXT_OLDER"
        cross_series_reducer = "REDUCE_COUNT_FALSE"
        group_by_fields      = ["resource.label.host"]
      }
      trigger {
        count = 1
      }
    }
  }

  alert_strategy {
    auto_close = "1800s"
  }

  documentation {
    subject   = "otplogin: ${each.key} reports a dependency down"
    mime_type = "text/markdown"
    content   = <<-EOT
      **What it means.** `GET /healthz` of `${each.key}` failed from more than one
      checker region for two periods: it answered 503 (a dependency is not ready) or
      did not answer at all (no instance could start: a start-up crash, a bad deploy).

      **First steps.**
      1. See what it reports (no secret is ever in it):
         `curl -sS "$(terraform output -raw ${each.key}_url)"` (a GET is the health check)
         `checks.firestore`, `checks.secrets.<id>` (a reason such as `not found`,
         `permission denied`, `disabled`), `checks.pii_keyring` (login: `encryption_key_mismatch`,
         `keyring_unavailable`, `canary_missing`).
      2. Follow the alert that names the cause (secret load failure, PII key problem, Firestore errors).
      3. No answer at all: `gcloud functions logs read ${local.functions[each.key].resource_name} --region=${var.region} --gen2 --limit=50`
         for a start-up error; roll back the last deploy if it started then.

      Runbook: docs/runbook.md, "Alert: health check failing".
    EOT

    dynamic "links" {
      for_each = var.runbook_url == null ? [] : ["alert-health-check-failing"]
      content {
        display_name = "Runbook: health check failing"
        url          = "${var.runbook_url}#${links.value}"
      }
    }
  }

  depends_on = [time_sleep.apis]
}
