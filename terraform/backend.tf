# State lives in a GCS bucket created once, out of band (docs/deploy.md,
# "Bootstrap state"). Partial configuration: pass the bucket at init time,
#   terraform init -backend-config=environments/production.backend.hcl
# so the same code serves every environment and CI uses the very same state.
terraform {
  backend "gcs" {}
}
