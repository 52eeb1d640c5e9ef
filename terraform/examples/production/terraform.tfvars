# Example inputs for one production environment. Copy to
# environments/production.tfvars (committed: it holds no secret) and edit.
project_id         = "otplogin-prod-123456"
region             = "europe-west1"
firestore_location = "eur3"

jwt_issuer   = "https://auth.example.com"
jwt_audience = "otplogin-clients"

otp_allowed_countries = ["CD", "MA"]
cors_allowed_origins  = ["https://app.example.com"]
log_level             = "INFO"

# Sizing: defaults suit most loads; raise the ceilings with care (cost).
function_overrides = {
  login = { max_instance_count = 20 }
}

# Rate-limit tuning read by the functions (names as documented by the code).
extra_env = {
  send_otp = { OTP_SENDS_PER_PHONE_PER_HOUR = "5" }
}

admin_password_accessors = ["group:otplogin-operators@example.com"]

# CI deploys from GitHub through Workload Identity Federation.
github_repository  = "example-org/otplogin"
github_environment = "production"
state_bucket       = "otplogin-prod-123456-tfstate"

labels = { app = "otplogin", env = "prod" }
