terraform {
  # optional() object attributes with defaults (1.3), check blocks (1.5).
  required_version = ">= 1.5.0"

  required_providers {
    google = {
      source = "hashicorp/google"
      # The offline schema check (tools/tf_schema.py) is pinned to 6.50.0.
      version = ">= 6.50.0, < 7.0.0"
    }
    # time_sleep: the waits a fresh project needs (API enablement, IAM and
    # log-based metric propagation). tools/tf_schema.py lists its arguments.
    time = {
      source  = "hashicorp/time"
      version = ">= 0.12.0, < 1.0.0"
    }
  }
}
