# Alert policies: the platform tells the infra team first.
#
# One resource over a map: each alert is data (its conditions, its
# documentation and its runbook section), checked by the preconditions of the
# resource, by tests/terraform/test_monitoring.py and by the log contract.
# Each policy's documentation says what it means and the first steps; the full
# procedure is in docs/runbook.md (section `runbook`, linked when
# var.runbook_url is set).
# Notification channels come from var.alert_notification_channels (create
# them once in the console or with google_monitoring_notification_channel
# elsewhere; an empty list still opens incidents in the console).
#
# Signals:
#   log-based metrics (monitoring.tf)  key mismatch, undecryptable PII, secret
#                                      load failures, OTP and SMS ratios, SMS
#                                      volume per country, global send cap,
#                                      Firestore unavailable as the code saw it
#   built-in Cloud Run metrics         5xx per function (run.googleapis.com/request_count)
#   built-in Firestore metrics         API errors (firestore.googleapis.com/api/request_count)
#   uptime checks (monitoring_uptime.tf)  health endpoints (one policy per function there)
locals {
  # resource.label.service_name of the functions' Cloud Run services.
  service_names_filter = "resource.label.service_name=one_of(${join(", ", [for fn in values(local.functions) : "\"${fn.resource_name}\""])})"

  sms_override_countries = keys(var.alert_sms_hourly_per_country_overrides)
  sms_other_countries_filter = length(local.sms_override_countries) == 0 ? "" : (
    " AND NOT metric.label.country=one_of(${join(", ", [for c in local.sms_override_countries : "\"${c}\""])})"
  )
}

resource "google_monitoring_alert_policy" "alert" {
  # Each alert is data: its conditions (each a threshold on the sum of a metric
  # over `period`, firing above `threshold`; a ratio has a denominator_filter),
  # its documentation (meaning, first steps) and its runbook section. The map
  # is literal here, so tests/integration/test_log_contract.py reads every
  # filter and checks it against the lines the code writes; the preconditions
  # below validate every entry at plan time.
  for_each = {
    # --- keys and secrets ---------------------------------------------------------
    pii_key = {
      display_name  = "otplogin: PII key problem (encryption_key_mismatch or undecryptable PII)"
      severity      = "CRITICAL"
      combiner      = "OR"
      auto_close    = "1800s"
      runbook       = "alert-pii-key-problem"
      runbook_title = "PII key problem"
      subject       = "otplogin: the PII keyring does not match the stored data"
      conditions = [
        {
          display_name       = "encryption_key_mismatch logged (any occurrence)"
          filter             = "metric.type=\"${local.log_metric_types["encryption_key_mismatch"]}\" AND resource.type=\"cloud_run_revision\""
          denominator_filter = null
          threshold          = 0
          period             = "60s"
          group_by           = ["resource.label.service_name"]
        },
        {
          display_name       = "pii_undecryptable logged (any occurrence)"
          filter             = "metric.type=\"${local.log_metric_types["pii_undecryptable"]}\" AND resource.type=\"cloud_run_revision\""
          denominator_filter = null
          threshold          = 0
          period             = "60s"
          group_by           = ["metric.label.field"]
        },
      ]
      content = <<-EOT
      **What it means.** `login` logged `encryption_key_mismatch` (its health check
      could not decrypt the stored canary `system/pii_canary` with `pii-keyring`)
      or `pii_undecryptable` (a user's phone, address or WhatsApp could not be
      decrypted). Logins still succeed, but those fields come back `null` in
      `unavailable_fields`, and a second factor cannot be sent to an unreadable
      phone. Almost always: a new `pii-keyring` version that lost the key the data
      was encrypted with (a replaced instead of rotated keyring).

      **First steps.**
      1. Do not disable or destroy any `pii-keyring` version, and do not run
         `otplogin-admin init --force` (it would hide the problem, not fix the data).
      2. Read the lines: `gcloud logging read 'jsonPayload.event="pii_undecryptable" OR jsonPayload.event="encryption_key_mismatch"' --freshness=1h --limit=20 --format=json`
         (`kid` is the key id the data needs; `kid_present=false`: the ring lacks it).
         Within `SECRETS_REFRESH_SECONDS` (5 min) of a rotation it can be an instance still
         holding the previous keyring: it clears by itself.
      3. `gcloud secrets versions list pii-keyring`: the version added just before the
         alert is the suspect. Add a new version holding the current keys plus the missing
         key, last (docs/operations.md, "Recovering from encryption_key_mismatch"), then
         `otplogin-admin check-keys --all`.
      4. `curl -sS "$(terraform output -raw login_url)"`: `checks.pii_keyring` must be `ok`.

      Runbook: docs/runbook.md, "Alert: PII key problem".
      EOT
    }

    secret_load = {
      display_name  = "otplogin: secret load failure"
      severity      = "CRITICAL"
      combiner      = "OR"
      auto_close    = "1800s"
      runbook       = "alert-secret-load-failure"
      runbook_title = "secret load failure"
      subject       = "otplogin: a function cannot read one of its secrets"
      conditions = [
        {
          display_name       = "secret_load_failed logged (any occurrence), by secret"
          filter             = "metric.type=\"${local.log_metric_types["secret_load_failed"]}\" AND resource.type=\"cloud_run_revision\""
          denominator_filter = null
          threshold          = 0
          period             = "60s"
          group_by           = ["metric.label.secret", "resource.label.service_name"]
        },
      ]
      content = <<-EOT
      **What it means.** A function could not read or use a Secret Manager secret
      (`secret_load_failed`, field `secret` names it, `reason` says why: not found,
      disabled, destroyed, permission denied, empty, malformed). Requests that need it
      answer `503 unavailable` (`pii-keyring`: logins succeed without PII), and the
      health check of that function answers 503.

      **First steps.**
      1. Which secret and why: `gcloud logging read 'jsonPayload.event="secret_load_failed"' --freshness=1h --limit=10 --format='value(resource.labels.service_name, jsonPayload.secret, jsonPayload.reason)'`
      2. `gcloud secrets versions list SECRET`: the newest version must be enabled
         (functions read `versions/latest`, whatever its state). Never disable the newest version.
      3. Permission denied: `terraform plan` shows a missing `secretAccessor` binding; apply it.
      4. Missing or empty: add the value with `terraform/scripts/add-secret-values.sh --project "$PROJECT_ID" --secret SECRET`.
      5. A rollback is a new version holding the old value, never a disabled newest version.

      Runbook: docs/runbook.md, "Alert: secret load failure".
      EOT
    }

    # --- OTP and SMS ---------------------------------------------------------------
    verify_ratio = {
      display_name  = "otplogin: OTP verify success ratio below ${var.alert_verify_success_ratio_min}"
      severity      = "ERROR"
      combiner      = "AND"
      auto_close    = "3600s"
      runbook       = "alert-verify-success-ratio-low"
      runbook_title = "verify success ratio low"
      subject       = "otplogin: most OTP verifications are failing"
      conditions = [
        # A ratio needs its numerator to exist: rejections are counted, so that a
        # window with no success at all (every code "lost") still fires.
        {
          display_name       = "rejected share of verifications above ${format("%.2f", 1 - var.alert_verify_success_ratio_min)} over 15 min"
          filter             = "metric.type=\"${local.log_metric_types["otp_verifications"]}\" AND resource.type=\"cloud_run_revision\" AND metric.label.outcome=\"otp_rejected\""
          denominator_filter = "metric.type=\"${local.log_metric_types["otp_verifications"]}\" AND resource.type=\"cloud_run_revision\""
          threshold          = 1 - var.alert_verify_success_ratio_min
          period             = "900s"
          group_by           = []
        },
        # Volume guard: a handful of typos at night is not an outage.
        {
          display_name       = "more than ${var.alert_verify_min_decisions} verifications over 15 min"
          filter             = "metric.type=\"${local.log_metric_types["otp_verifications"]}\" AND resource.type=\"cloud_run_revision\""
          denominator_filter = null
          threshold          = var.alert_verify_min_decisions
          period             = "900s"
          group_by           = []
        },
      ]
      content = <<-EOT
      **What it means.** Over the last 15 minutes fewer than
      ${format("%.0f", var.alert_verify_success_ratio_min * 100)}% of `verify_otp` decisions succeeded
      (`otp_verified` against `otp_rejected`). The shape of the first failure of this
      project: codes sent but unknown at verify time (`reason=code_expired` dominates),
      or codes that never reach phones, or a brute-force wave (`invalid_code`,
      `too_many_attempts`).

      **First steps.**
      1. Rejections by reason (dashboard "otplogin", tile "OTP funnel"), or:
         `gcloud logging read 'jsonPayload.event="otp_rejected"' --freshness=30m --format='value(jsonPayload.reason)' | sort | uniq -c`
      2. Mostly `code_expired`: check that send_otp and verify_otp use the same project and
         database and the same `otp-pepper` version (a changed pepper changes every document id):
         `gcloud secrets versions list otp-pepper`; check Firestore errors (alert "Firestore errors").
      3. Mostly `invalid_code` / `too_many_attempts` from few phones: an attack, bounded by the
         attempt budget; check `rate_limited` by limit on the dashboard.
      4. Codes not arriving: compare `otp_sent` with Twilio's delivery status in the Twilio console.

      Runbook: docs/runbook.md, "Alert: verify success ratio low".
      EOT
    }

    sms_failure = {
      display_name  = "otplogin: SMS delivery failure ratio above ${var.alert_sms_failure_ratio_max}"
      severity      = "ERROR"
      combiner      = "AND"
      auto_close    = "3600s"
      runbook       = "alert-sms-delivery-failure-ratio-high"
      runbook_title = "SMS delivery failure ratio high"
      subject       = "otplogin: the SMS provider is refusing codes"
      conditions = [
        {
          display_name       = "failed share of deliveries above ${var.alert_sms_failure_ratio_max} over 15 min"
          filter             = "metric.type=\"${local.log_metric_types["otp_deliveries"]}\" AND resource.type=\"cloud_run_revision\" AND metric.label.outcome=\"otp_delivery_failed\""
          denominator_filter = "metric.type=\"${local.log_metric_types["otp_deliveries"]}\" AND resource.type=\"cloud_run_revision\""
          threshold          = var.alert_sms_failure_ratio_max
          period             = "900s"
          group_by           = []
        },
        {
          display_name       = "more than ${var.alert_sms_min_attempts} delivery attempts over 15 min"
          filter             = "metric.type=\"${local.log_metric_types["otp_deliveries"]}\" AND resource.type=\"cloud_run_revision\""
          denominator_filter = null
          threshold          = var.alert_sms_min_attempts
          period             = "900s"
          group_by           = []
        },
      ]
      content = <<-EOT
      **What it means.** More than ${format("%.0f", var.alert_sms_failure_ratio_max * 100)}% of delivery
      attempts over 15 minutes failed (`otp_delivery_failed`: send_otp answered
      `502 sms_delivery_failed`; the quota was given back). Twilio is down or rate
      limiting, the Twilio credentials or sender changed, or the account ran out of balance.

      **First steps.**
      1. The provider's reason: `gcloud logging read 'jsonPayload.event="otp_delivery_failed"' --freshness=30m --limit=10 --format='value(jsonPayload.country, jsonPayload.channel, jsonPayload.message)'`
      2. One country only: a carrier or a Twilio geo-permission problem (Twilio console,
         Messaging > Geo permissions). All countries: https://status.twilio.com, then the account balance.
      3. 401/20003 in the message: `twilio-account-sid` / `twilio-auth-token` no longer match:
         add the right values with `terraform/scripts/add-secret-values.sh --project "$PROJECT_ID" --secret twilio-auth-token --force`.

      Runbook: docs/runbook.md, "Alert: SMS delivery failure ratio high".
      EOT
    }

    sms_pumping = {
      display_name  = "otplogin: SMS volume spike per country (possible SMS pumping)"
      severity      = "ERROR"
      combiner      = "OR"
      auto_close    = "7200s"
      runbook       = "alert-sms-volume-spike-per-country"
      runbook_title = "SMS volume spike per country"
      subject       = "otplogin: unusual SMS volume to one country"
      conditions = [
        {
          display_name       = "codes sent to any other single country above ${var.alert_sms_hourly_per_country} in an hour"
          filter             = "metric.type=\"${local.log_metric_types["otp_sent"]}\" AND resource.type=\"cloud_run_revision\"${local.sms_other_countries_filter}"
          denominator_filter = null
          threshold          = var.alert_sms_hourly_per_country
          period             = "3600s"
          group_by           = ["metric.label.country"]
        },
      ]
      # Plus one condition per country with its own hourly ceiling (at most 5:
      # a policy holds at most 6 conditions); the resource fills in $${country}
      # and $${ceiling}.
      per_country = {
        ceilings     = var.alert_sms_hourly_per_country_overrides
        display_name = "codes sent to $${country} above $${ceiling} in an hour"
        filter       = "metric.type=\"${local.log_metric_types["otp_sent"]}\" AND resource.type=\"cloud_run_revision\" AND metric.label.country=\"$${country}\""
        period       = "3600s"
        group_by     = ["metric.label.country"]
      }
      content = <<-EOT
      **What it means.** More codes were sent to one country in the last hour than its
      ceiling (`otp_sent` by `country`). Every code is a paid SMS: a sudden rise to one
      country, often to number ranges nobody of your users holds, is the signature of
      SMS pumping (toll fraud). It can also be a real launch or a marketing campaign.

      **First steps.**
      1. Which country and channel: dashboard "otplogin", tile "SMS sent by country", or
         `gcloud logging read 'jsonPayload.event="otp_sent"' --freshness=1h --format='value(jsonPayload.country, jsonPayload.phone)' | sort | uniq -c | sort -rn | head`
         (`phone` is masked: the prefix shows the number range).
      2. Few IPs / sequential numbers / no verifications following (dashboard "OTP funnel"):
         treat as pumping. Block the country: remove it from `otp_allowed_countries` and apply
         (send_otp answers 403 country_not_allowed), or lower the caps (`OTP_SENDS_GLOBAL_PER_HOUR`,
         `OTP_SENDS_PER_IP_PER_HOUR` in `extra_env.send_otp`).
      3. Real traffic: raise this country's ceiling in `alert_sms_hourly_per_country_overrides`.

      Runbook: docs/runbook.md, "Alert: SMS volume spike per country".
      EOT
    }

    send_global_cap = {
      display_name  = "otplogin: global send cap reached"
      severity      = "WARNING"
      combiner      = "OR"
      auto_close    = "3600s"
      runbook       = "alert-global-send-cap-reached"
      runbook_title = "global send cap reached"
      subject       = "otplogin: the project-wide hourly send cap is refusing codes"
      conditions = [
        {
          display_name       = "rate_limited with limit=send_global (any occurrence)"
          filter             = "metric.type=\"${local.log_metric_types["rate_limited"]}\" AND resource.type=\"cloud_run_revision\" AND metric.label.limit=\"send_global\""
          denominator_filter = null
          threshold          = 0
          period             = "300s"
          group_by           = []
        },
      ]
      content = <<-EOT
      **What it means.** send_otp refused codes because the project-wide hourly cap
      (`OTP_SENDS_GLOBAL_PER_HOUR`, default 1000) was reached (`rate_limited`,
      `limit=send_global`): every user asking for a code gets `429 rate_limited`
      until the hour window moves on. Either pumping (see the SMS volume alert) or
      real growth.

      **First steps.**
      1. SMS by country and the OTP funnel on the dashboard: pumping or growth?
      2. Pumping: block the country (runbook) and keep the cap.
      3. Growth: raise the cap in `extra_env.send_otp.OTP_SENDS_GLOBAL_PER_HOUR` and apply.

      Runbook: docs/runbook.md, "Alert: global send cap reached".
      EOT
    }

    # --- sessions ---------------------------------------------------------------------
    refresh_reuse = {
      display_name  = "otplogin: refresh tokens reused (session families revoked)"
      severity      = "WARNING"
      combiner      = "OR"
      auto_close    = "3600s"
      runbook       = "alert-refresh-tokens-reused"
      runbook_title = "refresh tokens reused"
      subject       = "otplogin: spent refresh tokens are being presented"
      conditions = [
        {
          display_name       = "more than ${var.alert_refresh_reuse_per_hour} refresh_token_reused in 1 h"
          filter             = "metric.type=\"${local.log_metric_types["refresh_token_reused"]}\" AND resource.type=\"cloud_run_revision\""
          denominator_filter = null
          threshold          = var.alert_refresh_reuse_per_hour
          period             = "3600s"
          group_by           = []
        },
      ]
      content = <<-EOT
      **What it means.** login refused spent refresh tokens presented after the grace
      window (`refresh_token_reused`) and revoked each one's whole session family:
      the users concerned must sign in again. A few are a stolen token or a client that
      kept an old one; many at once are a client release that stores tokens wrongly,
      or tokens leaked in bulk.

      **First steps.**
      1. When did it start? Right after an app release: that release's token storage.
      2. Grouped by user agent or client: `gcloud logging read 'jsonPayload.event="refresh_token_reused"' --freshness=1h --limit=50 --format=json`.
      3. A leak: revoke the subjects' sessions (`otplogin-admin revoke-sessions`).

      Runbook: docs/runbook.md, "Alert: refresh tokens reused".
      EOT
    }

    # --- platform ---------------------------------------------------------------------
    http_5xx = {
      display_name  = "otplogin: 5xx answers on a function"
      severity      = "ERROR"
      combiner      = "OR"
      auto_close    = "1800s"
      runbook       = "alert-5xx-on-a-function"
      runbook_title = "5xx on a function"
      subject       = "otplogin: a function answers 5xx"
      conditions = [
        {
          display_name       = "more than ${var.alert_5xx_per_function} 5xx answers in 5 min, per function"
          filter             = "metric.type=\"run.googleapis.com/request_count\" AND resource.type=\"cloud_run_revision\" AND metric.label.response_code_class=\"5xx\" AND ${local.service_names_filter}"
          denominator_filter = null
          threshold          = var.alert_5xx_per_function
          period             = "300s"
          group_by           = ["resource.label.service_name", "metric.label.response_code"]
        },
      ]
      content = <<-EOT
      **What it means.** A function answered 5xx (Cloud Run's own request count, so it
      also sees crashes, timeouts and instance limits the code never logged):
      `500 internal` (an unhandled error: a bug), `502 sms_delivery_failed` (send_otp;
      see the SMS delivery alert), `503 unavailable` (a secret or Firestore; its health
      check fails too), `504` (timeout), `429` is not counted.

      **First steps.**
      1. What the code logged: `gcloud logging read 'resource.type="cloud_run_revision" AND severity>=ERROR' --freshness=30m --limit=20 --format=json`
         (`stack_trace` for a 500, `jsonPayload.event` for the known causes).
      2. Another alert open at the same time (secret, PII key, Firestore, SMS) names the cause: follow it.
      3. A 500 right after a deploy: roll back (revert the commit on main, CI redeploys the previous archive).
      4. 503 without a log line, `max_instance_count` reached: dashboard "Instances per function".

      Runbook: docs/runbook.md, "Alert: 5xx on a function".
      EOT
    }

    firestore = {
      display_name  = "otplogin: Firestore errors"
      severity      = "ERROR"
      combiner      = "OR"
      auto_close    = "1800s"
      runbook       = "alert-firestore-errors"
      runbook_title = "Firestore errors"
      subject       = "otplogin: Firestore is failing requests"
      conditions = [
        # What the code saw: a read-check-write that Firestore did not answer (503 to the client).
        {
          display_name       = "firestore_unavailable logged (any occurrence)"
          filter             = "metric.type=\"${local.log_metric_types["firestore_unavailable"]}\" AND resource.type=\"cloud_run_revision\""
          denominator_filter = null
          threshold          = 0
          period             = "300s"
          group_by           = ["metric.label.error"]
        },
        # What Firestore saw: server-side errors. Precondition failures (FAILED_PRECONDITION,
        # ALREADY_EXISTS, ABORTED) are the normal retries of the optimistic read-check-write
        # and are left out on purpose.
        {
          display_name       = "Firestore API errors above ${var.alert_firestore_errors} in 5 min"
          filter             = "metric.type=\"firestore.googleapis.com/api/request_count\" AND resource.type=\"firestore.googleapis.com/Database\" AND metric.label.response_code=one_of(\"UNAVAILABLE\", \"INTERNAL\", \"DEADLINE_EXCEEDED\", \"UNKNOWN\", \"RESOURCE_EXHAUSTED\", \"PERMISSION_DENIED\")"
          denominator_filter = null
          threshold          = var.alert_firestore_errors
          period             = "300s"
          group_by           = ["metric.label.response_code"]
        },
      ]
      content = <<-EOT
      **What it means.** Either the functions logged `firestore_unavailable` (Firestore
      did not answer a read-check-write; the client got `503 unavailable`), or
      Firestore's own request count shows server-side errors. Every OTP and login
      decision needs Firestore, so this is user-facing.

      **First steps.**
      1. What the code saw: `gcloud logging read 'jsonPayload.event="firestore_unavailable"' --freshness=30m --format='value(resource.labels.service_name, jsonPayload.error)'`
      2. Google side: https://status.cloud.google.com (Firestore, your location).
      3. `RESOURCE_EXHAUSTED`: a quota or a hot document (Firestore sustains about one write
         per second per document); the global send counter is sharded, check `OTP_*` tuning.
      4. `PERMISSION_DENIED`: the function's service account lost `roles/datastore.user`: `terraform plan`.

      Runbook: docs/runbook.md, "Alert: Firestore errors".
      EOT
    }
  }

  project               = var.project_id
  display_name          = each.value.display_name
  combiner              = each.value.combiner
  severity              = each.value.severity
  notification_channels = var.alert_notification_channels
  user_labels           = var.labels

  dynamic "conditions" {
    for_each = each.value.conditions
    content {
      display_name = conditions.value.display_name
      condition_threshold {
        filter             = conditions.value.filter
        denominator_filter = conditions.value.denominator_filter
        comparison         = "COMPARISON_GT"
        threshold_value    = conditions.value.threshold
        duration           = "0s"
        aggregations {
          alignment_period     = conditions.value.period
          per_series_aligner   = "ALIGN_SUM"
          cross_series_reducer = "REDUCE_SUM"
          group_by_fields      = length(conditions.value.group_by) == 0 ? null : conditions.value.group_by
        }
        dynamic "denominator_aggregations" {
          for_each = conditions.value.denominator_filter == null ? [] : [1]
          content {
            alignment_period     = conditions.value.period
            per_series_aligner   = "ALIGN_SUM"
            cross_series_reducer = "REDUCE_SUM"
          }
        }
        trigger {
          count = 1
        }
      }
    }
  }

  # One condition per country with its own ceiling (only sms_pumping has any).
  dynamic "conditions" {
    for_each = try(each.value.per_country.ceilings, {})
    content {
      display_name = replace(replace(each.value.per_country.display_name, "$${country}", conditions.key), "$${ceiling}", tostring(conditions.value))
      condition_threshold {
        filter          = replace(each.value.per_country.filter, "$${country}", conditions.key)
        comparison      = "COMPARISON_GT"
        threshold_value = conditions.value
        duration        = "0s"
        aggregations {
          alignment_period     = each.value.per_country.period
          per_series_aligner   = "ALIGN_SUM"
          cross_series_reducer = "REDUCE_SUM"
          group_by_fields      = each.value.per_country.group_by
        }
        trigger {
          count = 1
        }
      }
    }
  }

  alert_strategy {
    auto_close = each.value.auto_close
  }

  documentation {
    subject   = each.value.subject
    mime_type = "text/markdown"
    content   = each.value.content

    dynamic "links" {
      for_each = var.runbook_url == null ? [] : [each.value.runbook]
      content {
        display_name = "Runbook: ${each.value.runbook_title}"
        url          = "${var.runbook_url}#${links.value}"
      }
    }
  }

  lifecycle {
    precondition {
      condition     = contains(["CRITICAL", "ERROR", "WARNING"], each.value.severity) && contains(["OR", "AND"], each.value.combiner)
      error_message = "alert ${each.key}: severity must be CRITICAL, ERROR or WARNING and combiner OR or AND."
    }
    precondition {
      # An alert policy holds 1 to 6 conditions; an AND of one condition is a mistake.
      condition     = length(each.value.conditions) >= 1 && length(each.value.conditions) + length(try(each.value.per_country.ceilings, {})) <= 6 && (each.value.combiner == "OR" || length(each.value.conditions) > 1)
      error_message = "alert ${each.key}: 1 to 6 conditions (more than one when the combiner is AND)."
    }
    precondition {
      condition     = alltrue([for c in each.value.conditions : c.threshold >= 0 && can(regex("resource\\.type=", c.filter)) && can(regex("^[0-9]+s$", c.period))])
      error_message = "alert ${each.key}: every condition needs a threshold of 0 or more, a filter naming its resource.type and a period in seconds."
    }
    precondition {
      condition     = can(regex("^alert-[a-z0-9-]+$", each.value.runbook)) && strcontains(each.value.content, "docs/runbook.md")
      error_message = "alert ${each.key}: runbook must be the anchor of its docs/runbook.md section (alert-...), named in its documentation."
    }
  }

  # The log-based metrics must exist, and be known to alerting (minutes later), first.
  depends_on = [time_sleep.apis, time_sleep.log_metrics]
}

# The policies were one resource each; keep their identity (and incident history).
moved {
  from = google_monitoring_alert_policy.pii_key
  to   = google_monitoring_alert_policy.alert["pii_key"]
}

moved {
  from = google_monitoring_alert_policy.secret_load
  to   = google_monitoring_alert_policy.alert["secret_load"]
}

moved {
  from = google_monitoring_alert_policy.verify_ratio
  to   = google_monitoring_alert_policy.alert["verify_ratio"]
}

moved {
  from = google_monitoring_alert_policy.sms_failure
  to   = google_monitoring_alert_policy.alert["sms_failure"]
}

moved {
  from = google_monitoring_alert_policy.sms_pumping
  to   = google_monitoring_alert_policy.alert["sms_pumping"]
}

moved {
  from = google_monitoring_alert_policy.send_global_cap
  to   = google_monitoring_alert_policy.alert["send_global_cap"]
}

moved {
  from = google_monitoring_alert_policy.http_5xx
  to   = google_monitoring_alert_policy.alert["http_5xx"]
}

moved {
  from = google_monitoring_alert_policy.firestore
  to   = google_monitoring_alert_policy.alert["firestore"]
}
