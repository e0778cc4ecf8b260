terraform {
  required_version = ">= 1.6"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 7.0"
    }
    archive = {
      source  = "hashicorp/archive"
      version = "~> 2.4"
    }
  }

  # The state of this root lives in a bucket of the platform project; cloudbuild.yaml passes
  # -backend-config="bucket=…" (see docs/operations.md).
  backend "gcs" {
    prefix = "runway-jobs/platform"
  }
}

provider "google" {
  project = var.project
  region  = var.region
}
