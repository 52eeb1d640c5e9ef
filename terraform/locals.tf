locals {
  # What each function is, and what it may read. Sizing defaults can be
  # overridden with var.function_overrides; the secrets a function reads are
  # fixed by its code (docs/architecture.md), so they are not an input.
  function_defaults = {
    send_otp = {
      description = "Validate a phone number, apply abuse limits, store a keyed hash of a new code, deliver it by SMS or WhatsApp."
      secrets     = ["otp-pepper", "twilio-account-sid", "twilio-auth-token", "twilio-sender"]
      # I/O bound (Firestore, Twilio): many requests share one instance.
      memory             = "256Mi"
      cpu                = "1"
      concurrency        = 20
      max_instance_count = 10
      min_instance_count = 0
      timeout_seconds    = 30
    }
    verify_otp = {
      description = "Check a code in one atomic read-check-write and issue a signed access token."
      secrets     = ["otp-pepper", "jwt-signing-keys"]
      memory      = "256Mi"
      cpu         = "1"
      # I/O bound as well; no twilio in its build.
      concurrency        = 20
      max_instance_count = 10
      min_instance_count = 0
      timeout_seconds    = 30
    }
    login = {
      description = "Verify an Argon2id password, decrypt the user's PII, issue a token or require an OTP."
      secrets     = ["otp-pepper", "jwt-signing-keys", "pii-keyring", "twilio-account-sid", "twilio-auth-token", "twilio-sender"]
      # Argon2id m=19 MiB per request: 8 concurrent hashes = 152 MiB on top
      # of ~150 MiB of interpreter and libraries, within 512Mi. Hashing is
      # CPU bound, so more than 8 per vCPU only queues.
      memory             = "512Mi"
      cpu                = "1"
      concurrency        = 8
      max_instance_count = 10
      min_instance_count = 0
      timeout_seconds    = 30
    }
  }

  functions = {
    for name, defaults in local.function_defaults : name => merge(
      defaults,
      { for key, value in try(var.function_overrides[name], {}) : key => value if value != null },
      {
        # Cloud Run service names take no underscore: send_otp -> send-otp.
        resource_name = replace(name, "_", "-")
        extra_env     = lookup(var.extra_env, name, {})
      },
    )
  }

  # A filter, not `cond ? local.functions : {}`: the functions' objects differ
  # in shape (secrets lists of different lengths), so no common type exists.
  deployed_functions = { for name, fn in local.functions : name => fn if var.deploy_functions }

  # Archives written by tools/build.py; their SHA-256 names the uploaded object.
  archive_dir = startswith(var.archive_dir, "/") ? var.archive_dir : "${path.module}/${var.archive_dir}"
  archives    = { for name in keys(local.functions) : name => "${local.archive_dir}/${name}.zip" }

  # Configuration only: secret values are read at run time from Secret
  # Manager by id, never passed as environment variables.
  base_env = {
    GOOGLE_CLOUD_PROJECT  = var.project_id
    SMS_PROVIDER          = "twilio"
    OTP_ALLOWED_COUNTRIES = join(",", var.otp_allowed_countries)
    CORS_ALLOWED_ORIGINS  = join(",", var.cors_allowed_origins)
    JWT_ISSUER            = var.jwt_issuer
    JWT_AUDIENCE          = var.jwt_audience
    LOG_LEVEL             = var.log_level
    # Set by the platform on every 2nd gen function; declared so plans show no diff.
    LOG_EXECUTION_ID = "true"
  }

  # Secret ids are fixed by the code (docs/architecture.md). pii-keyring is
  # declared on its own in secrets.tf, for prevent_destroy.
  pii_keyring_secret = "pii-keyring"
  other_secrets = toset([
    "otp-pepper",
    "jwt-signing-keys",
    "twilio-account-sid",
    "twilio-auth-token",
    "twilio-sender",
    "admin-password",
  ])

  # One secretAccessor binding per (function, secret it reads).
  secret_access = merge([
    for name, fn in local.functions : {
      for secret in fn.secrets : "${name}/${secret}" => { function = name, secret = secret }
    }
  ]...)

  # Firestore collections whose documents carry a Timestamp `expires_at`.
  ttl_collections = toset(["otp_codes", "otp_counters", "refresh_families", "refresh_subjects"])

  source_bucket_name = coalesce(var.source_bucket_name, "${var.project_id}-otplogin-sources")

  apis = [
    "artifactregistry.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudfunctions.googleapis.com",
    "cloudresourcemanager.googleapis.com",
    "firestore.googleapis.com",
    "iam.googleapis.com",
    "iamcredentials.googleapis.com",
    "logging.googleapis.com",
    "run.googleapis.com",
    "secretmanager.googleapis.com",
    "serviceusage.googleapis.com",
    "storage.googleapis.com",
    "sts.googleapis.com",
  ]
}
