"""terraform/ against the hashicorp/google 6.50.0 schema cached from the cdktf wheel."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.terraform import support as tf
from tools import tf_schema


@pytest.fixture(scope="module")
def schema():
    return tf_schema.load_schema()


def test_cached_schema_is_the_pinned_provider(schema):
    assert schema["provider"] == "hashicorp/google" and schema["version"] == "6.50.0"
    assert len(schema["resource"]) > 1000 and len(schema["data"]) > 300
    assert tf_schema.SCHEMA_FILE.stat().st_size < 2_000_000
    fn = schema["resource"]["google_cloudfunctions2_function"]
    assert fn["service_config"]["max_instance_count"] == 0
    assert fn["build_config"]["source"]["storage_source"]["object"] == 0
    assert schema["resource"]["google_firestore_field"]["ttl_config"] == {}
    assert schema["provider_config"]["default_labels"] == 0


def test_terraform_uses_only_known_types_and_arguments(schema):
    problems = tf_schema.check_paths([tf.TERRAFORM], schema)
    assert problems == []
    used = {rtype for rtype, _ in tf.resources()}
    assert used <= set(schema["resource"]) | set(tf_schema.OTHER_RESOURCES)
    assert len(used) >= 15


BAD = """
resource "google_cloudfunctions2_function" "f" {
  name     = "x"
  location = "europe-west1"
  service_config {
    max_instance_counts = 3
  }
}
"""


@pytest.mark.parametrize(
    ("snippet", "expected"),
    [
        (BAD, "google_cloudfunctions2_function.f.service_config: unknown argument 'max_instance_counts'"),
        (
            'resource "google_storage_bucket" "b" {\n  name = "b"\n  location = "EU"\n  uniform_access = true\n}\n',
            "google_storage_bucket.b: unknown argument 'uniform_access'",
        ),
        (
            'resource "google_storage_bucket" "b" {\n  name = "b"\n  location = "EU"\n  versioning {\n    enable = true\n  }\n}\n',
            "google_storage_bucket.b.versioning: unknown argument 'enable'",
        ),
        (
            'resource "google_firestore_feild" "f" {\n  field = "x"\n}\n',
            "unknown resource type 'google_firestore_feild'",
        ),
        ('provider "google" {\n  projct = "x"\n}\n', "provider.google: unknown argument 'projct'"),
        (
            'data "google_project" "p" {\n  project_idd = "x"\n}\n',
            "data.google_project.p: unknown argument 'project_idd'",
        ),
        (
            'resource "google_secret_manager_secret" "s" {\n  secret_id = "x"\n  replication {\n    dynamic "user_managed" {\n      for_each = [1]\n      content {\n        replica {\n          location = "x"\n        }\n      }\n    }\n  }\n}\n',
            "google_secret_manager_secret.s.replication.user_managed: unknown argument 'replica'",
        ),
        (
            'resource "google_storage_bucket" "b" {\n  name = "b"\n  location = "EU"\n  lifecycle {\n    prevent_destroyed = true\n  }\n}\n',
            "unknown lifecycle argument 'prevent_destroyed'",
        ),
    ],
)
def test_a_misspelling_is_reported(schema, snippet, expected):
    problems = tf_schema.check_document(tf_schema.parse_hcl(snippet), schema, "bad.tf")
    assert any(expected in p for p in problems), problems


def test_correct_snippet_passes(schema):
    good = BAD.replace("max_instance_counts", "max_instance_count")
    assert tf_schema.check_document(tf_schema.parse_hcl(good), schema, "good.tf") == []


def test_cli_exits_non_zero_on_a_finding(tmp_path):
    (tmp_path / "bad.tf").write_text(BAD)
    done = subprocess.run(
        [sys.executable, str(tf.REPO / "tools" / "tf_schema.py"), "check", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1
    assert "max_instance_counts" in done.stdout
    ok = subprocess.run(
        [sys.executable, str(tf.REPO / "tools" / "tf_schema.py"), "check"], capture_output=True, text=True
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr


def test_extraction_from_a_jsii_assembly():
    """The regenerate path, on a miniature assembly shaped like the wheel's."""
    link = "{@link https://registry.terraform.io/providers/hashicorp/google/6.50.0/docs/resources/google_thing#%s Thing#%s}"
    assembly = {
        "types": {
            "@cdktf/provider-google.thing.Thing": {
                "kind": "class",
                "initializer": {
                    "docs": {
                        "summary": "Create a new {@link https://registry.terraform.io/providers/hashicorp/google/6.50.0/docs/resources/thing google_thing} Resource."
                    },
                    "parameters": [
                        {"name": "scope"},
                        {"name": "id"},
                        {"name": "config", "type": {"fqn": "@cdktf/provider-google.thing.ThingConfig"}},
                    ],
                },
            },
            "@cdktf/provider-google.thing.ThingConfig": {
                "kind": "interface",
                "properties": [
                    {
                        "name": "maxCount",
                        "docs": {"remarks": "Docs at Terraform Registry: " + link % ("max_count", "max_count")},
                        "type": {"primitive": "number"},
                    },
                    {
                        "name": "detectMd5Hash",
                        "docs": {
                            "summary": "Docs at Terraform Registry: "
                            + link % ("detect_md5hash", "detect_md5hash")
                            + "."
                        },
                        "type": {"primitive": "string"},
                    },
                    {
                        "name": "innerBlock",
                        "docs": {"custom": {"x": link % ("inner_block", "inner_block")}},
                        "type": {
                            "union": {
                                "types": [
                                    {"fqn": "cdktf.IResolvable"},
                                    {
                                        "collection": {
                                            "kind": "array",
                                            "elementtype": {"fqn": "@cdktf/provider-google.thing.ThingInnerBlock"},
                                        }
                                    },
                                ]
                            }
                        },
                    },
                ],
            },
            "@cdktf/provider-google.thing.ThingInnerBlock": {
                "kind": "interface",
                "properties": [{"name": "someValue", "docs": {}, "type": {"primitive": "string"}}],
            },
        }
    }
    extracted = tf_schema.extract(assembly)
    assert extracted == {
        "provider_config": {},
        "resource": {"google_thing": {"max_count": 0, "detect_md5hash": 0, "inner_block": {"some_value": 0}}},
        "data": {},
    }
    json.dumps(extracted)


# --- other providers: a small explicit allow-list, checked like google's ---------------------


def test_other_providers_resources_are_an_explicit_allow_list():
    """hashicorp/time is not in the google schema; its resource is listed by hand (with
    its arguments, from the provider's docs) and pinned in versions.tf."""
    assert set(tf_schema.OTHER_PROVIDERS) == {"hashicorp/time"}
    assert set(tf_schema.OTHER_PROVIDERS["hashicorp/time"]) == {"time_sleep"}
    assert set(tf_schema.OTHER_PROVIDERS["hashicorp/time"]["time_sleep"]) == {
        "create_duration", "destroy_duration", "triggers",
    }


@pytest.mark.parametrize(
    ("snippet", "expected"),
    [
        (
            'resource "time_sleep" "w" {\n  create_durations = "60s"\n}\n',
            "time_sleep.w: unknown argument 'create_durations'",
        ),
        (
            'resource "random_id" "r" {\n  byte_length = 4\n}\n',
            "unknown resource type 'random_id': not hashicorp/google and not in the allow-list",
        ),
        (
            'resource "time_rotating" "r" {\n  rotation_days = 30\n}\n',
            "unknown resource type 'time_rotating'",
        ),
    ],
)
def test_a_resource_of_another_provider_is_checked_too(schema, snippet, expected):
    problems = tf_schema.check_document(tf_schema.parse_hcl(snippet), schema, "other.tf")
    assert any(expected in p for p in problems), problems


def test_an_allowed_time_sleep_passes(schema):
    good = 'resource "time_sleep" "w" {\n  create_duration = "60s"\n  triggers = { a = "b" }\n  depends_on = []\n}\n'
    assert tf_schema.check_document(tf_schema.parse_hcl(good), schema, "good.tf") == []
