# Log-based metrics: counters over the functions' structured logs.
#
# Every line the library writes with `log.event(name, ...)` is one JSON object
# on stdout; Cloud Run (2nd gen functions) turns it into a LogEntry with
# resource.type "cloud_run_revision", the JSON in jsonPayload and `severity`
# lifted to the entry. The filters and label extractors below are a contract
# with those lines: tests/integration/test_log_contract.py runs the real flows
# locally, captures what the code writes, and checks that every filter here
# matches it and every extractor finds its field. Keep each filter a literal
# string in the subset of the Logging query language that test understands
# (AND, OR, NOT, =, !=, :, parentheses; never AND and OR mixed without
# parentheses, since OR binds tighter than AND in that language).
#
# Alert policies (monitoring_alerts.tf), uptime checks (monitoring_uptime.tf)
# and the dashboard (monitoring_dashboard.tf) read these metrics as
# logging.googleapis.com/user/otplogin/<name>.
locals {
  log_metric_prefix = "otplogin"

  log_metrics = {
    otp_sent = {
      description = "Codes handed to the SMS provider (send_otp, and login's second factor), by channel, country and purpose. Also the SMS volume and cost proxy per country."
      filter      = "resource.type=\"cloud_run_revision\" AND jsonPayload.event=\"otp_sent\""
      labels = {
        channel = { extractor = "EXTRACT(jsonPayload.channel)", description = "sms or whatsapp" }
        country = { extractor = "EXTRACT(jsonPayload.country)", description = "ISO 3166-1 alpha-2 region of the phone number" }
        purpose = { extractor = "EXTRACT(jsonPayload.purpose)", description = "phone (send_otp) or login (second factor)" }
      }
    }
    otp_delivery_failed = {
      description = "Codes the SMS provider refused or did not answer for (send_otp answered 502 sms_delivery_failed), by channel and country."
      filter      = "resource.type=\"cloud_run_revision\" AND jsonPayload.event=\"otp_delivery_failed\""
      labels = {
        channel = { extractor = "EXTRACT(jsonPayload.channel)", description = "sms or whatsapp" }
        country = { extractor = "EXTRACT(jsonPayload.country)", description = "ISO 3166-1 alpha-2 region of the phone number" }
      }
    }
    otp_deliveries = {
      description = "Every delivery attempt, delivered or failed (the denominator of the SMS delivery failure ratio)."
      filter      = "resource.type=\"cloud_run_revision\" AND (jsonPayload.event=\"otp_sent\" OR jsonPayload.event=\"otp_delivery_failed\")"
      labels = {
        outcome = { extractor = "EXTRACT(jsonPayload.event)", description = "otp_sent or otp_delivery_failed" }
        country = { extractor = "EXTRACT(jsonPayload.country)", description = "ISO 3166-1 alpha-2 region of the phone number" }
      }
    }
    otp_verified = {
      description = "Codes verified (verify_otp answered a token), by purpose."
      filter      = "resource.type=\"cloud_run_revision\" AND jsonPayload.event=\"otp_verified\""
      labels = {
        purpose = { extractor = "EXTRACT(jsonPayload.purpose)", description = "phone or login (second factor)" }
      }
    }
    otp_rejected = {
      description = "Codes rejected by verify_otp, by reason (invalid_code, code_expired: expired or never sent, too_many_attempts)."
      filter      = "resource.type=\"cloud_run_revision\" AND jsonPayload.event=\"otp_rejected\""
      labels = {
        reason = { extractor = "EXTRACT(jsonPayload.reason)", description = "invalid_code, code_expired or too_many_attempts" }
      }
    }
    otp_verifications = {
      description = "Every verification decision, verified or rejected (the denominator of the verify success ratio)."
      filter      = "resource.type=\"cloud_run_revision\" AND (jsonPayload.event=\"otp_verified\" OR jsonPayload.event=\"otp_rejected\")"
      labels = {
        outcome = { extractor = "EXTRACT(jsonPayload.event)", description = "otp_verified or otp_rejected" }
      }
    }
    login_succeeded = {
      description = "Sign-ins that issued an access token (login without a second factor; verify_otp completing one)."
      filter      = "resource.type=\"cloud_run_revision\" AND jsonPayload.event=\"login_succeeded\""
      labels      = {}
    }
    login_mfa_sent = {
      description = "Passwords accepted for users with a second factor: a code was sent, the sign-in completes at verify_otp."
      filter      = "resource.type=\"cloud_run_revision\" AND jsonPayload.event=\"login_mfa_sent\""
      labels      = {}
    }
    login_failed = {
      description = "Sign-ins refused for a wrong password or an unknown user, by reason."
      filter      = "resource.type=\"cloud_run_revision\" AND jsonPayload.event=\"login_failed\""
      labels = {
        reason = { extractor = "EXTRACT(jsonPayload.reason)", description = "invalid_credentials" }
      }
    }
    login_locked = {
      description = "Sign-ins refused because the account is locked after repeated failures."
      filter      = "resource.type=\"cloud_run_revision\" AND jsonPayload.event=\"login_locked\""
      labels      = {}
    }
    refresh_token_reused = {
      description = "Spent refresh tokens presented after the grace window: each revoked its whole session family (a stolen token, or a client that keeps an old one)."
      filter      = "resource.type=\"cloud_run_revision\" AND jsonPayload.event=\"refresh_token_reused\""
      labels      = {}
    }
    encryption_key_mismatch = {
      description = "The login health check found that pii-keyring cannot decrypt the stored canary: the deployed keyring is not the one the data was encrypted with."
      filter      = "resource.type=\"cloud_run_revision\" AND jsonPayload.event=\"encryption_key_mismatch\""
      labels      = {}
    }
    pii_undecryptable = {
      description = "PII fields (phone, address, whatsapp) a login could not decrypt (answered null and listed in unavailable_fields), by field."
      filter      = "resource.type=\"cloud_run_revision\" AND jsonPayload.event=\"pii_undecryptable\""
      labels = {
        field = { extractor = "EXTRACT(jsonPayload.field)", description = "phone, address or whatsapp" }
      }
    }
    secret_load_failed = {
      description = "A Secret Manager secret could not be read or used (missing, disabled, permission denied, malformed), by secret id."
      filter      = "resource.type=\"cloud_run_revision\" AND jsonPayload.event=\"secret_load_failed\""
      labels = {
        secret = { extractor = "EXTRACT(jsonPayload.secret)", description = "Secret Manager secret id (never a value)" }
      }
    }
    rate_limited = {
      description = "Requests refused by an abuse limit, by limit (resend_cooldown, send_phone, send_ip, send_global, login_ip)."
      filter      = "resource.type=\"cloud_run_revision\" AND jsonPayload.event=\"rate_limited\""
      labels = {
        limit = { extractor = "EXTRACT(jsonPayload.limit)", description = "name of the limit that refused the request" }
      }
    }
    firestore_unavailable = {
      description = "Firestore did not answer an atomic read-check-write (the client got 503 unavailable), by error class."
      filter      = "resource.type=\"cloud_run_revision\" AND jsonPayload.event=\"firestore_unavailable\""
      labels = {
        error = { extractor = "EXTRACT(jsonPayload.error)", description = "google.api_core exception class" }
      }
    }
  }
}

# Alerting and dashboards need the Monitoring API (apis.tf enables the rest
# and waits for both: time_sleep.apis).
resource "google_project_service" "monitoring" {
  project                    = var.project_id
  service                    = "monitoring.googleapis.com"
  disable_on_destroy         = false
  disable_dependent_services = false
}

resource "google_logging_metric" "event" {
  for_each = local.log_metrics

  project          = var.project_id
  name             = "${local.log_metric_prefix}/${each.key}"
  description      = each.value.description
  filter           = each.value.filter
  label_extractors = { for key, label in each.value.labels : key => label.extractor }

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "INT64"
    unit         = "1"
    display_name = "otplogin ${replace(each.key, "_", " ")}"

    dynamic "labels" {
      for_each = each.value.labels
      content {
        key         = labels.key
        value_type  = "STRING"
        description = labels.value.description
      }
    }
  }

  depends_on = [time_sleep.apis]
}

# Alerting knows a new log-based metric only minutes after the metric exists:
# an alert policy created at once gets 404 "Cannot find metric(s) that match
# type ... If a metric was created recently, it could take up to 10 minutes to
# become available" (terraform-provider-google#11102). The alert policies wait
# these 10 minutes after the metrics, in the same apply; a new metric changes
# the trigger and waits again.
resource "time_sleep" "log_metrics" {
  create_duration = "600s"

  triggers = {
    metrics = join(",", sort([for metric in google_logging_metric.event : metric.name]))
  }

  depends_on = [google_logging_metric.event]
}

locals {
  # metric.type of each log-based metric, read from the resource so that an
  # alert policy is created only once its metric exists.
  log_metric_types = { for name, metric in google_logging_metric.event : name => "logging.googleapis.com/user/${metric.name}" }
}
