terraform {
  required_version = ">= 1.10.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.0"
    }
  }

  # State in S3, locked with a lock file beside it; the bucket, key and region come from a
  # backend file: terraform init -backend-config=backend.hcl (see backend.hcl.example).
  backend "s3" {
    encrypt      = true
    use_lockfile = true
  }
}
