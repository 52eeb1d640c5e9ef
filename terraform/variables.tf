variable "project_id" {
  description = "ID of the Google Cloud project that hosts the functions, Firestore and the secrets."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a Google Cloud project ID: 6-30 lower-case letters, digits or hyphens, starting with a letter."
  }
}

variable "region" {
  description = "Region of the functions and of the source bucket (e.g. europe-west1)."
  type        = string
  default     = "europe-west1"

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+$", var.region))
    error_message = "region must be a Google Cloud region name such as europe-west1."
  }
}

variable "firestore_location" {
  description = "Location of the Firestore database: a multi-region (eur3, nam5) or a region. Cannot change after creation."
  type        = string
  default     = "eur3"

  validation {
    condition     = can(regex("^(eur3|nam5|nam7|[a-z]+-[a-z]+[0-9]+)$", var.firestore_location))
    error_message = "firestore_location must be eur3, nam5, nam7 or a region name such as europe-west1."
  }
}

variable "firestore_concurrency_mode" {
  description = "Firestore concurrency mode. OPTIMISTIC: transactions do not take locks, so contended OTP documents abort and retry instead of queueing behind locks (the code already uses optimistic read-check-write)."
  type        = string
  default     = "OPTIMISTIC"

  validation {
    condition     = contains(["OPTIMISTIC", "PESSIMISTIC"], var.firestore_concurrency_mode)
    error_message = "firestore_concurrency_mode must be OPTIMISTIC or PESSIMISTIC."
  }
}

variable "firestore_daily_backup_retention_days" {
  description = "How long each daily Firestore backup is kept, in days (1-98)."
  type        = number
  default     = 7

  validation {
    condition     = var.firestore_daily_backup_retention_days >= 1 && var.firestore_daily_backup_retention_days <= 98 && floor(var.firestore_daily_backup_retention_days) == var.firestore_daily_backup_retention_days
    error_message = "firestore_daily_backup_retention_days must be a whole number from 1 to 98 (Firestore keeps backups at most 14 weeks)."
  }
}

variable "firestore_weekly_backup_retention_weeks" {
  description = "How long each weekly (Sunday) Firestore backup is kept, in weeks (0 disables the weekly schedule, at most 14)."
  type        = number
  default     = 14

  validation {
    condition     = var.firestore_weekly_backup_retention_weeks >= 0 && var.firestore_weekly_backup_retention_weeks <= 14 && floor(var.firestore_weekly_backup_retention_weeks) == var.firestore_weekly_backup_retention_weeks
    error_message = "firestore_weekly_backup_retention_weeks must be a whole number from 0 to 14."
  }
}

variable "source_bucket_name" {
  description = "Name of the bucket holding the function archives. Default: <project_id>-otplogin-sources."
  type        = string
  default     = null

  validation {
    condition     = var.source_bucket_name == null || can(regex("^[a-z0-9][a-z0-9_-]{1,61}[a-z0-9]$", coalesce(var.source_bucket_name, "x")))
    error_message = "source_bucket_name must be a valid bucket name: 3-63 lower-case letters, digits, hyphens or underscores."
  }
}

variable "source_noncurrent_retention_days" {
  description = "Days an archive is kept after a newer one replaced it (bucket versioning), for rollback."
  type        = number
  default     = 30

  validation {
    condition     = var.source_noncurrent_retention_days >= 1
    error_message = "source_noncurrent_retention_days must be at least 1."
  }
}

variable "archive_dir" {
  description = "Folder holding <function>.zip as written by `make build` (tools/build.py). Relative paths are relative to this module."
  type        = string
  default     = "../build"

  validation {
    condition     = length(trimspace(var.archive_dir)) > 0
    error_message = "archive_dir must not be empty."
  }
}

variable "deploy_functions" {
  description = "Create the functions. Set false for the very first apply, add the secret values, then apply with true (a function started without its secrets fails its start-up check)."
  type        = bool
  default     = true
}

variable "function_overrides" {
  description = "Per-function sizing overrides, keyed by send_otp, verify_otp or login. Unset attributes keep the defaults of locals.tf (send_otp, verify_otp: 256Mi, 1 vCPU, concurrency 20; login: 512Mi, 1 vCPU, concurrency 8 for Argon2id at 19 MiB a request; all: 30 s timeout, at most 10 instances)."
  type = map(object({
    memory             = optional(string)
    cpu                = optional(string)
    concurrency        = optional(number)
    max_instance_count = optional(number)
    min_instance_count = optional(number)
    timeout_seconds    = optional(number)
  }))
  default = {}

  validation {
    condition     = alltrue([for name in keys(var.function_overrides) : contains(["send_otp", "verify_otp", "login"], name)])
    error_message = "function_overrides keys must be among send_otp, verify_otp, login."
  }

  validation {
    condition     = alltrue([for o in values(var.function_overrides) : o.memory == null || can(regex("^[0-9]+(Mi|Gi)$", coalesce(o.memory, "0Mi")))])
    error_message = "memory must look like 256Mi or 1Gi."
  }

  validation {
    condition     = alltrue([for o in values(var.function_overrides) : o.cpu == null || contains(["0.083", "0.167", "0.333", "0.583", "1", "2", "4", "6", "8"], coalesce(o.cpu, "1"))])
    error_message = "cpu must be one of 0.083, 0.167, 0.333, 0.583, 1, 2, 4, 6, 8."
  }

  validation {
    condition     = alltrue([for o in values(var.function_overrides) : o.concurrency == null || (coalesce(o.concurrency, 1) >= 1 && coalesce(o.concurrency, 1) <= 1000)])
    error_message = "concurrency must be from 1 to 1000 (above 1 needs cpu of at least 1)."
  }

  validation {
    condition     = alltrue([for o in values(var.function_overrides) : o.max_instance_count == null || (coalesce(o.max_instance_count, 1) >= 1 && coalesce(o.max_instance_count, 1) <= 1000)])
    error_message = "max_instance_count is the cost ceiling: from 1 to 1000."
  }

  validation {
    condition     = alltrue([for o in values(var.function_overrides) : o.timeout_seconds == null || (coalesce(o.timeout_seconds, 1) >= 1 && coalesce(o.timeout_seconds, 1) <= 3600)])
    error_message = "timeout_seconds must be from 1 to 3600."
  }
}

variable "extra_env" {
  description = "Extra non-secret environment variables per function for tuning (rate limits and the like), keyed by function name. Never put a secret here: secrets are read from Secret Manager by id."
  type        = map(map(string))
  default     = {}

  validation {
    condition     = alltrue([for name in keys(var.extra_env) : contains(["send_otp", "verify_otp", "login"], name)])
    error_message = "extra_env keys must be among send_otp, verify_otp, login."
  }

  validation {
    condition     = alltrue(flatten([for env in values(var.extra_env) : [for key in keys(env) : can(regex("^[A-Z][A-Z0-9_]*$", key))]]))
    error_message = "extra_env variable names must be UPPER_SNAKE_CASE."
  }

  validation {
    condition     = !anytrue(flatten([for env in values(var.extra_env) : [for key in keys(env) : can(regex("(PASSWORD|PEPPER|SECRET|AUTH_TOKEN|PRIVATE_KEY|API_KEY|CREDENTIALS?)$", key))]]))
    error_message = "extra_env must not carry secrets (a name ending in PASSWORD, PEPPER, SECRET, AUTH_TOKEN, PRIVATE_KEY, API_KEY or CREDENTIAL): put the value in Secret Manager."
  }

  validation {
    condition     = !anytrue(flatten([for env in values(var.extra_env) : [for key in keys(env) : contains(["GOOGLE_CLOUD_PROJECT", "SMS_PROVIDER", "OTP_ALLOWED_COUNTRIES", "CORS_ALLOWED_ORIGINS", "JWT_ISSUER", "JWT_AUDIENCE", "LOG_LEVEL", "LOG_EXECUTION_ID", "FIRESTORE_EMULATOR_HOST", "SECRET_MANAGER_EMULATOR_HOST", "TWILIO_API_BASE"], key)]]))
    error_message = "extra_env must not override the variables this module sets from its own inputs, nor set emulator/test-only variables."
  }
}

variable "otp_allowed_countries" {
  description = "ISO 3166-1 alpha-2 codes of the countries whose phone numbers may receive codes (OTP_ALLOWED_COUNTRIES)."
  type        = list(string)
  default     = ["CD", "MA"]

  validation {
    condition     = length(var.otp_allowed_countries) > 0 && alltrue([for c in var.otp_allowed_countries : can(regex("^[A-Z]{2}$", c))])
    error_message = "otp_allowed_countries must be a non-empty list of upper-case two-letter country codes such as CD or MA."
  }
}

variable "cors_allowed_origins" {
  description = "Browser origins allowed to call the functions (CORS_ALLOWED_ORIGINS). Empty: no browser origin."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for o in var.cors_allowed_origins : can(regex("^(https://[a-z0-9.-]+(:[0-9]+)?|http://(localhost|127\\.0\\.0\\.1)(:[0-9]+)?)$", o))])
    error_message = "cors_allowed_origins entries must be exact origins (https://host[:port], or http://localhost[:port]); no path, no wildcard."
  }
}

variable "jwt_issuer" {
  description = "The `iss` claim of issued access tokens (JWT_ISSUER), e.g. https://auth.example.com."
  type        = string

  validation {
    condition     = can(regex("^https://[^\\s]+$", var.jwt_issuer))
    error_message = "jwt_issuer must be an https:// URL."
  }
}

variable "jwt_audience" {
  description = "The `aud` claim of issued access tokens (JWT_AUDIENCE): who the tokens are for."
  type        = string

  validation {
    condition     = length(trimspace(var.jwt_audience)) > 0
    error_message = "jwt_audience must not be empty."
  }
}

variable "log_level" {
  description = "Log level of the functions (LOG_LEVEL)."
  type        = string
  default     = "INFO"

  validation {
    condition     = contains(["DEBUG", "INFO", "WARNING", "ERROR"], var.log_level)
    error_message = "log_level must be DEBUG, INFO, WARNING or ERROR."
  }
}

variable "secret_replica_locations" {
  description = "Regions holding replicas of the Secret Manager secrets. Empty: automatic replication."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for l in var.secret_replica_locations : can(regex("^[a-z]+-[a-z]+[0-9]+$", l))])
    error_message = "secret_replica_locations entries must be region names such as europe-west1."
  }
}

variable "admin_password_accessors" {
  description = "IAM members (user:, group:) allowed to read the admin-password secret for the operator CLI. No function gets it."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for m in var.admin_password_accessors : can(regex("^(user|group|serviceAccount):", m))])
    error_message = "admin_password_accessors entries must start with user:, group: or serviceAccount:."
  }
}

variable "github_repository" {
  description = "owner/name of the GitHub repository whose main branch deploys the functions through Workload Identity Federation. Null: no CI identity is created."
  type        = string
  default     = null

  validation {
    condition     = var.github_repository == null || can(regex("^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", coalesce(var.github_repository, "x/y")))
    error_message = "github_repository must look like owner/name."
  }
}

variable "github_environment" {
  description = "GitHub environment the deploy jobs run in (its protection rules apply). Only tokens from this environment on the main branch may impersonate the deployer."
  type        = string
  default     = "production"

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]+$", var.github_environment))
    error_message = "github_environment must be a GitHub environment name."
  }
}

variable "state_bucket" {
  description = "Name of the GCS bucket holding Terraform state (created at bootstrap). When set with github_repository, the CI deployer may read and lock the state."
  type        = string
  default     = null

  validation {
    condition     = var.state_bucket == null || can(regex("^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$", coalesce(var.state_bucket, "x")))
    error_message = "state_bucket must be a valid bucket name."
  }
}

variable "labels" {
  description = "Labels applied to every resource that takes labels."
  type        = map(string)
  default     = { app = "otplogin" }

  validation {
    condition     = alltrue([for k, v in var.labels : can(regex("^[a-z][a-z0-9_-]{0,62}$", k)) && can(regex("^[a-z0-9_-]{0,63}$", v))])
    error_message = "labels keys and values must be lower-case letters, digits, underscores or hyphens (keys start with a letter)."
  }
}

# --- monitoring (monitoring*.tf) ---------------------------------------------------

variable "alert_notification_channels" {
  description = "Notification channels (projects/<project>/notificationChannels/<id>) every otplogin alert policy notifies. Empty: incidents open in the console only."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.alert_notification_channels : can(regex("^projects/[^/]+/notificationChannels/[^/]+$", c))])
    error_message = "alert_notification_channels entries must be notification channel names: projects/<project>/notificationChannels/<id>."
  }
}

variable "runbook_url" {
  description = "Web address of docs/runbook.md (e.g. its GitHub blob URL on main); each alert's documentation then links its section. Null: the documentation names the section only."
  type        = string
  default     = null

  validation {
    condition     = var.runbook_url == null || can(regex("^https://[^\\s#]+$", coalesce(var.runbook_url, "https://x")))
    error_message = "runbook_url must be an https:// URL without a fragment."
  }
}

variable "alert_verify_success_ratio_min" {
  description = "Alert when fewer than this share of verify_otp decisions succeed over 15 minutes (otp_verified / (otp_verified + otp_rejected))."
  type        = number
  default     = 0.5

  validation {
    condition     = var.alert_verify_success_ratio_min > 0 && var.alert_verify_success_ratio_min < 1
    error_message = "alert_verify_success_ratio_min must be between 0 and 1 (exclusive)."
  }
}

variable "alert_verify_min_decisions" {
  description = "The verify success ratio alert fires only with more than this many verify_otp decisions in the 15 minutes (a few typos at night are not an outage)."
  type        = number
  default     = 20

  validation {
    condition     = var.alert_verify_min_decisions >= 0 && floor(var.alert_verify_min_decisions) == var.alert_verify_min_decisions
    error_message = "alert_verify_min_decisions must be a whole number, 0 or more."
  }
}

variable "alert_sms_failure_ratio_max" {
  description = "Alert when more than this share of SMS / WhatsApp delivery attempts fail over 15 minutes (otp_delivery_failed / (otp_sent + otp_delivery_failed))."
  type        = number
  default     = 0.2

  validation {
    condition     = var.alert_sms_failure_ratio_max > 0 && var.alert_sms_failure_ratio_max < 1
    error_message = "alert_sms_failure_ratio_max must be between 0 and 1 (exclusive)."
  }
}

variable "alert_sms_min_attempts" {
  description = "The SMS delivery failure ratio alert fires only with more than this many delivery attempts in the 15 minutes."
  type        = number
  default     = 10

  validation {
    condition     = var.alert_sms_min_attempts >= 0 && floor(var.alert_sms_min_attempts) == var.alert_sms_min_attempts
    error_message = "alert_sms_min_attempts must be a whole number, 0 or more."
  }
}

variable "alert_sms_hourly_per_country" {
  description = "SMS pumping alert: codes sent to one country in an hour above which the alert fires, for every country without its own value in alert_sms_hourly_per_country_overrides."
  type        = number
  default     = 200

  validation {
    condition     = var.alert_sms_hourly_per_country >= 1
    error_message = "alert_sms_hourly_per_country must be at least 1."
  }
}

variable "alert_sms_hourly_per_country_overrides" {
  description = "SMS pumping alert: hourly ceiling per country (ISO 3166-1 alpha-2 code => codes an hour) where the default does not fit, e.g. { CD = 1000 }. At most 5 countries (an alert policy holds 6 conditions)."
  type        = map(number)
  default     = {}

  validation {
    condition     = length(var.alert_sms_hourly_per_country_overrides) <= 5 && alltrue([for c, n in var.alert_sms_hourly_per_country_overrides : can(regex("^[A-Z]{2}$", c)) && n >= 1])
    error_message = "alert_sms_hourly_per_country_overrides: at most 5 entries, keys upper-case two-letter country codes, values at least 1."
  }
}

variable "alert_refresh_reuse_per_hour" {
  description = "Alert when more than this many spent refresh tokens are presented in an hour (refresh_token_reused; each revokes a session family)."
  type        = number
  default     = 5

  validation {
    condition     = var.alert_refresh_reuse_per_hour >= 0
    error_message = "alert_refresh_reuse_per_hour must be 0 or more."
  }
}

variable "alert_5xx_per_function" {
  description = "Alert when a function answers more than this many 5xx in 5 minutes (Cloud Run's request_count). 0: any 5xx."
  type        = number
  default     = 0

  validation {
    condition     = var.alert_5xx_per_function >= 0
    error_message = "alert_5xx_per_function must be 0 or more."
  }
}

variable "alert_firestore_errors" {
  description = "Alert when Firestore's own request count shows more than this many server-side errors (UNAVAILABLE, INTERNAL, DEADLINE_EXCEEDED, UNKNOWN, RESOURCE_EXHAUSTED, PERMISSION_DENIED) in 5 minutes. A firestore_unavailable line from the functions alerts at any occurrence."
  type        = number
  default     = 5

  validation {
    condition     = var.alert_firestore_errors >= 0
    error_message = "alert_firestore_errors must be 0 or more."
  }
}

variable "uptime_check_period" {
  description = "How often the uptime checks GET each function's /healthz (from several regions). The health alert fires after two failing periods."
  type        = string
  default     = "300s"

  validation {
    condition     = contains(["60s", "300s", "600s", "900s"], var.uptime_check_period)
    error_message = "uptime_check_period must be 60s, 300s, 600s or 900s."
  }
}
