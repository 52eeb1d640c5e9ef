"""Structure of the monitoring Terraform: log metrics, alerts, uptime checks, dashboard, runbook.

Offline, on the parsed HCL. Whether the metric filters match what the code
really writes is tests/integration/test_log_contract.py's job (it runs the
flows); here: every alert the issue asks for exists, reads a metric that
exists by a label that exists, notifies the channels given as input, carries
its documentation and a runbook section; the uptime checks cover every
function; the dashboard JSON is valid, shows what operators need and reads
only metrics that exist.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.terraform import support as tf

LIBRARY = tf.REPO / "shared" / "otplogin"
RUNBOOK = tf.REPO / "docs" / "runbook.md"
DASHBOARD = tf.TERRAFORM / "dashboards" / "otplogin.json"
USER_METRIC = re.compile(r"logging\.googleapis\.com/user/otplogin/([a-z_]+)")
LOCAL_METRIC = re.compile(r'local\.log_metric_types\["([a-z_]+)"\]')

# What the issue asks the log-based metrics to count (metric name -> labels it needs).
REQUIRED_METRICS = {
    "otp_sent": {"channel", "country"},
    "otp_delivery_failed": {"country"},
    "otp_verified": set(),
    "otp_rejected": {"reason"},
    "login_succeeded": set(),
    "login_failed": set(),
    "login_locked": set(),
    "refresh_token_reused": set(),
    "encryption_key_mismatch": set(),
    "pii_undecryptable": {"field"},
    "secret_load_failed": {"secret"},
    "rate_limited": {"limit"},
}
# Alert policy (resource name) -> metric types its conditions must read.
REQUIRED_ALERTS = {
    "pii_key": {"encryption_key_mismatch", "pii_undecryptable"},
    "secret_load": {"secret_load_failed"},
    "verify_ratio": {"otp_verifications"},
    "sms_failure": {"otp_deliveries"},
    "sms_pumping": {"otp_sent"},
    "refresh_reuse": {"refresh_token_reused"},
    "http_5xx": {"run.googleapis.com/request_count"},
    "firestore": {"firestore_unavailable", "firestore.googleapis.com/api/request_count"},
    "health": {"monitoring.googleapis.com/uptime_check/check_passed"},
    "send_global_cap": {"rate_limited"},
}
FUNCTIONS = {"send_otp": "send-otp", "verify_otp": "verify-otp", "login": "login"}


def log_metrics() -> dict:
    return {k: v for k, v in tf.locals_()["log_metrics"].items() if not k.startswith("__")}


def condition_entries(entry: dict) -> list[dict]:
    """An alert's conditions: its literal list, plus (sms_pumping) the per-country
    template the resource repeats for each country with its own ceiling."""
    found = list(entry["conditions"])
    if "per_country" in entry:
        template = entry["per_country"]
        found.append({"filter": template["filter"], "denominator_filter": None, "threshold": "${conditions.value}",
                      "period": template["period"], "group_by": template["group_by"]})
    return found


def threshold_view(condition: dict, template: dict) -> dict:
    """One condition of the alert map, as the alert resource writes its condition_threshold."""
    written = tf.single(template["aggregations"])
    aggregation = {"alignment_period": condition["period"], "per_series_aligner": written["per_series_aligner"],
                   "cross_series_reducer": written["cross_series_reducer"]}
    view = {"filter": condition["filter"], "comparison": template["comparison"],
            "threshold_value": condition["threshold"],
            "aggregations": [dict(aggregation, group_by_fields=condition["group_by"]) if condition["group_by"]
                             else aggregation]}
    if condition.get("denominator_filter"):
        view["denominator_filter"] = condition["denominator_filter"]
        view["denominator_aggregations"] = [aggregation]
    return view


def alert_map() -> dict[str, dict]:
    """The alerts as data: the literal map the alert resource iterates over."""
    entries = tf.resource("google_monitoring_alert_policy", "alert")["for_each"]
    assert isinstance(entries, dict), "the alert policies are one resource over a literal map"
    return {k: v for k, v in entries.items() if not k.startswith("__")}


def policies() -> dict[str, dict]:
    """Every alert policy as {severity, combiner, notification_channels, documentation,
    runbook, thresholds}: the entries of the alert map through the one resource
    that creates them, and the per-function health policy."""
    alert = tf.resource("google_monitoring_alert_policy", "alert")
    [listed] = [d["conditions"] for d in alert["dynamic"] if d.get("conditions", {}).get("for_each") == "${each.value.conditions}"]
    template = tf.single(tf.single(listed["content"])["condition_threshold"])
    doc = tf.single(alert["documentation"])
    found = {}
    for name, entry in alert_map().items():
        found[name] = {
            "notification_channels": alert["notification_channels"],
            "severity": entry["severity"],
            "combiner": entry["combiner"],
            "mime_type": doc["mime_type"],
            "content": entry["content"] if doc["content"] == "${each.value.content}" else doc["content"],
            "runbook": entry["runbook"] if "each.value.runbook" in tf.single(doc["dynamic"])["links"]["for_each"] else None,
            "thresholds": [threshold_view(c, template) for c in condition_entries(entry)],
        }
    health = tf.resource("google_monitoring_alert_policy", "health")
    hdoc = tf.single(health["documentation"])
    found["health"] = {
        "notification_channels": health["notification_channels"],
        "severity": health["severity"],
        "combiner": health["combiner"],
        "mime_type": hdoc["mime_type"],
        "content": hdoc["content"],
        "runbook": re.search(r'\["([a-z0-9-]+)"\]', tf.single(hdoc["dynamic"])["links"]["for_each"]).group(1),
        "thresholds": [tf.single(c["condition_threshold"]) for c in health["conditions"]],
    }
    return found


def thresholds(policy: dict) -> list[dict]:
    return policy["thresholds"]


def metrics_read(policy: dict) -> set[str]:
    read = set()
    for threshold in thresholds(policy):
        for key in ("filter", "denominator_filter"):
            text = threshold.get(key, "")
            read |= set(LOCAL_METRIC.findall(text))
            read |= set(re.findall(r'metric\.type="([a-z.]+googleapis\.com/[a-z_/]+)"', text))
    return read


def slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    return re.sub(r"[^a-z0-9 _-]", "", heading.strip().lower()).replace(" ", "-")


def runbook_anchors() -> set[str]:
    return {slug(h) for h in re.findall(r"^#{2,4} (.+)$", RUNBOOK.read_text(encoding="utf-8"), re.M)}


# --- log-based metrics -------------------------------------------------------------


def test_log_metrics_are_one_resource_over_a_map_of_literal_filters():
    metric = tf.resource("google_logging_metric", "event")
    assert metric["for_each"] == "${local.log_metrics}"
    assert metric["name"] == "${local.log_metric_prefix}/${each.key}"
    assert tf.locals_()["log_metric_prefix"] == "otplogin"
    descriptor = tf.single(metric["metric_descriptor"])
    assert descriptor["metric_kind"] == "DELTA" and descriptor["value_type"] == "INT64"
    labels = tf.single(descriptor["dynamic"])["labels"]
    assert labels["for_each"] == "${each.value.labels}"
    for name, spec in log_metrics().items():
        assert re.fullmatch(r"[a-z][a-z_]+", name)
        assert len(spec["description"]) > 30, name
        assert "${" not in spec["filter"], f"{name}: a literal filter, so the log contract test can evaluate it"
        for key, label in spec["labels"].items():
            assert re.fullmatch(r"EXTRACT\(jsonPayload\.[a-z_]+\)", label["extractor"]), (name, key)


def test_the_issue_s_metrics_exist_with_their_labels():
    metrics = log_metrics()
    for name, labels in REQUIRED_METRICS.items():
        assert name in metrics, f"missing log-based metric {name}"
        assert labels <= set(metrics[name]["labels"]), (name, labels)


def test_every_event_a_filter_names_is_logged_by_the_library():
    source = "\n".join(p.read_text(encoding="utf-8") for p in LIBRARY.rglob("*.py"))
    logged = set(re.findall(r'log\.event\(\s*"([a-z_]+)"', source))
    for name, spec in log_metrics().items():
        events = set(re.findall(r'jsonPayload\.event=\\?"([a-z_]+)', spec["filter"]))
        assert events, f"{name}: filters on no event"
        assert events <= logged, f"{name}: {events - logged} is not logged anywhere in shared/otplogin"
        for label in spec["labels"].values():
            field = re.search(r"jsonPayload\.([a-z_]+)", label["extractor"]).group(1)
            assert field == "event" or re.search(rf"\b{field}=", source), f"{name}: no log.event passes {field}="


# --- alert policies ------------------------------------------------------------------


def test_every_alert_the_issue_asks_for_reads_its_signal():
    found = policies()
    for name, signals in REQUIRED_ALERTS.items():
        assert name in found, f"missing alert policy {name}"
        assert signals <= metrics_read(found[name]), (name, metrics_read(found[name]))


def test_alerts_read_only_metrics_and_labels_that_exist():
    metrics = log_metrics()
    for name, policy in policies().items():
        for threshold in thresholds(policy):
            text = threshold["filter"] + threshold.get("denominator_filter", "")
            for metric in LOCAL_METRIC.findall(text):
                assert metric in metrics, (name, metric)
                labels = set(metrics[metric]["labels"])
                used = set(re.findall(r"metric\.label\.([a-z_]+)", text))
                for agg in threshold.get("aggregations", []):
                    used |= {f.split(".")[-1] for f in agg.get("group_by_fields", []) if f.startswith("metric.label.")}
                assert used <= labels, f"{name}: {metric} has no label {used - labels}"
            assert 'resource.type="' in text, f"{name}: every alert filter names its resource type"


def test_every_alert_notifies_the_channels_given_and_documents_its_first_steps():
    anchors = runbook_anchors()
    for name, policy in policies().items():
        assert policy["notification_channels"] == "${var.alert_notification_channels}", name
        assert policy["severity"] in ("CRITICAL", "ERROR", "WARNING"), name
        assert policy["combiner"] in ("OR", "AND"), name
        assert policy["mime_type"] == "text/markdown"
        content = policy["content"]
        assert "What it means" in content and "First steps" in content, name
        assert "docs/runbook.md" in content, name
        assert len(content) > 400, f"{name}: the documentation should say enough to act on"
        assert policy["runbook"] in anchors, f"{name}: docs/runbook.md has no section #{policy['runbook']}"


def test_ratio_alerts_count_failures_and_need_a_minimum_volume():
    for name in ("verify_ratio", "sms_failure"):
        policy = policies()[name]
        assert policy["combiner"] == "AND"
        ratio, volume = thresholds(policy)
        # The numerator must exist when things go wrong: count the failures, not the successes.
        assert 'metric.label.outcome="otp_rejected"' in ratio["filter"] or 'outcome="otp_delivery_failed"' in ratio["filter"]
        assert "metric.label" not in ratio["denominator_filter"]
        assert ratio["comparison"] == "COMPARISON_GT" and volume["comparison"] == "COMPARISON_GT"
        assert tf.single(ratio["aggregations"]) == tf.single(ratio["denominator_aggregations"])


def test_alerts_on_any_key_or_secret_problem():
    for name in ("pii_key", "secret_load"):
        for threshold in thresholds(policies()[name]):
            assert threshold["threshold_value"] == 0 and threshold["comparison"] == "COMPARISON_GT"


def test_5xx_covers_every_function():
    threshold = thresholds(policies()["http_5xx"])[0]
    assert 'metric.label.response_code_class="5xx"' in threshold["filter"]
    assert "${local.service_names_filter}" in threshold["filter"]
    assert "local.functions" in tf.locals_()["service_names_filter"]
    assert "resource.label.service_name" in tf.single(threshold["aggregations"])["group_by_fields"]


def test_sms_pumping_is_per_country_with_overrides():
    policy = policies()["sms_pumping"]
    for threshold in thresholds(policy):
        agg = tf.single(threshold["aggregations"])
        assert agg["group_by_fields"] == ["metric.label.country"] and agg["alignment_period"] == "3600s"
    assert alert_map()["sms_pumping"]["per_country"]["ceilings"] == "${var.alert_sms_hourly_per_country_overrides}"
    alert = tf.resource("google_monitoring_alert_policy", "alert")
    repeated = [d["conditions"] for d in alert["dynamic"] if "conditions" in d]
    assert [r["for_each"] for r in repeated] == ["${each.value.conditions}", "${try(each.value.per_country.ceilings, {})}"]
    assert len(thresholds(policy)) == 2, "one template per country with an override, one for the rest"
    assert "NOT metric.label.country=one_of(" in tf.locals_()["sms_other_countries_filter"]


def test_firestore_alert_leaves_out_the_optimistic_retries():
    text = " ".join(t["filter"] for t in thresholds(policies()["firestore"]))
    assert "firestore.googleapis.com/Database" in text
    for normal in ("FAILED_PRECONDITION", "ABORTED", "ALREADY_EXISTS", '"OK"'):
        assert normal not in text


def test_notification_channels_are_an_input():
    var = tf.variables()["alert_notification_channels"]
    assert var["type"] == "${list(string)}" and var["default"] == []
    assert not tf.resources("google_monitoring_notification_channel"), "channels are passed in, not created here"


# --- uptime checks --------------------------------------------------------------------


def test_an_uptime_check_on_each_function_health_endpoint():
    check = tf.resource("google_monitoring_uptime_check_config", "health")
    assert check["for_each"] == "${google_cloudfunctions2_function.function}"
    http = tf.single(check["http_check"])
    assert http["path"] == "/healthz" and http["use_ssl"] is True and http["validate_ssl"] is True and http["port"] == 443
    assert tf.single(http["accepted_response_status_codes"])["status_class"] == "STATUS_CLASS_2XX"
    resource = tf.single(check["monitored_resource"])
    assert resource["type"] == "uptime_url"
    assert "each.value.service_config[0].uri" in resource["labels"]["host"]
    alert = tf.resource("google_monitoring_alert_policy", "health")
    assert alert["for_each"] == "${google_monitoring_uptime_check_config.health}"
    assert "each.value.uptime_check_id" in thresholds(policies()["health"])[0]["filter"]


# --- dashboard ----------------------------------------------------------------------------


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def test_dashboard_json_is_the_file_in_the_repository():
    body = tf.resource("google_monitoring_dashboard", "main")
    assert body["dashboard_json"] == '${file("${path.module}/dashboards/otplogin.json")}'
    assert "google_logging_metric.event" in json.dumps(body["depends_on"])


def test_dashboard_layout_is_valid():
    layout = dashboard()["mosaicLayout"]
    columns = layout["columns"]
    cells: set[tuple[int, int]] = set()
    for tile in layout["tiles"]:
        assert tile.get("xPos", 0) + tile["width"] <= columns, tile["widget"]["title"]
        for x in range(tile.get("xPos", 0), tile.get("xPos", 0) + tile["width"]):
            for y in range(tile.get("yPos", 0), tile.get("yPos", 0) + tile["height"]):
                assert (x, y) not in cells, f"tiles overlap at {x},{y}"
                cells.add((x, y))


def test_dashboard_shows_what_the_issue_asks_for():
    titles = " | ".join(t["widget"]["title"].lower() for t in dashboard()["mosaicLayout"]["tiles"])
    for words in (
        ("funnel", "sent", "verified", "expired", "failed"),
        ("login outcomes",),
        ("latency per function",),
        ("instances per function",),
        ("sms", "cost"),
    ):
        assert all(w in titles for w in words), words
    text = DASHBOARD.read_text(encoding="utf-8")
    for builtin in ("run.googleapis.com/request_latencies", "run.googleapis.com/container/instance_count",
                    "run.googleapis.com/request_count"):
        assert builtin in text


def test_dashboard_reads_only_metrics_that_exist_on_the_functions_services():
    text = DASHBOARD.read_text(encoding="utf-8")
    used = set(USER_METRIC.findall(text))
    assert used and used <= set(log_metrics()), used - set(log_metrics())
    services = set(re.findall(r'service_name=one_of\(([^)]*)\)', text))
    for group in services:
        assert set(re.findall(r'\\"([a-z-]+)\\"', group)) == set(FUNCTIONS.values())
    # Cloud Run service names are the functions' names with hyphens (locals.tf, resource_name).
    assert set(tf.locals_()["function_defaults"]) == set(FUNCTIONS)
    assert all(service == name.replace("_", "-") for name, service in FUNCTIONS.items())


# --- runbook ---------------------------------------------------------------------------


def test_runbook_has_cause_diagnosis_and_fix_for_every_alert():
    text = RUNBOOK.read_text(encoding="utf-8")
    sections = re.split(r"^## ", text, flags=re.M)
    alerts = {s.split("\n", 1)[0]: s for s in sections if s.startswith("Alert: ")}
    assert {slug(title) for title in alerts} == {policy["runbook"] for policy in policies().values()}
    for title, body in alerts.items():
        for part in ("**Cause", "**Diagnosis", "**Fix"):
            assert part in body, f"runbook {title!r} lacks {part}"
        assert "```sh" in body, f"runbook {title!r} gives no command"
    for procedure in ("rotate-keys", "restore a key version", "raising or lowering a cap", "blocking a country"):
        assert procedure.lower() in text.lower(), procedure


def test_readme_documents_monitoring():
    readme = (tf.TERRAFORM / "README.md").read_text(encoding="utf-8")
    assert "## Monitoring" in readme
    for name in log_metrics():
        assert f"`{name}`" in readme, name


@pytest.mark.parametrize("path", sorted(Path(tf.TERRAFORM).glob("monitoring*.tf")))
def test_monitoring_files_pass_the_schema_check(path):
    from tools import tf_schema

    assert tf_schema.check_paths([path]) == []
