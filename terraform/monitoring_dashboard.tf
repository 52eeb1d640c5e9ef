# The operations dashboard: OTP funnel, verify and delivery ratios, login
# outcomes, rate-limit hits, SMS by country (the cost proxy), key / secret /
# Firestore errors, and Cloud Run's latency, requests and instances per
# function. Its JSON lives in dashboards/otplogin.json (edit it in the console,
# export it with `gcloud monitoring dashboards describe`, keep the layout here).
resource "google_monitoring_dashboard" "main" {
  project        = var.project_id
  dashboard_json = file("${path.module}/dashboards/otplogin.json")

  # The charts read the log-based metrics; create those first.
  depends_on = [time_sleep.apis, google_logging_metric.event]
}
