# Copy to environments/production.backend.hcl, then
#   terraform init -backend-config=environments/production.backend.hcl
bucket = "otplogin-prod-123456-tfstate"
prefix = "otplogin"
