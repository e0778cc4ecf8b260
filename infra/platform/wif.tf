# GitLab CI reaches Google Cloud through Workload Identity Federation: a CI job's ID token
# (id_tokens in templates/runway-jobs.yml) is exchanged for a federated token, and IAM grants
# the job's GitLab project, directly, the rights each workload module gives it. No service
# account key exists.

resource "google_iam_workload_identity_pool" "gitlab" {
  project                   = var.project
  workload_identity_pool_id = "runway-gitlab"
  display_name              = "Runway Jobs GitLab CI"

  depends_on = [google_project_service.platform]
}

resource "google_iam_workload_identity_pool_provider" "gitlab" {
  project                            = var.project
  workload_identity_pool_id          = google_iam_workload_identity_pool.gitlab.workload_identity_pool_id
  workload_identity_pool_provider_id = "gitlab"
  display_name                       = "GitLab"
  attribute_condition                = local.gitlab_condition

  # google.subject names the CI job in audit logs, from numeric ids and short claims only: at
  # most 81 bytes, where GitLab's sub (project_path:GROUP/PROJECT:ref_type:branch:ref:BRANCH)
  # exceeds Google's 127-byte limit for long paths or branch names, and the exchange fails.
  # attribute.project_id: any pipeline of the project (reads: plan).
  # attribute.protected_project_id: only pipelines of protected refs (publish, push images,
  # read executions).
  attribute_mapping = {
    "google.subject"                 = "\"gitlab:project:\" + assertion.project_id + \":job:\" + assertion.job_id + \":\" + assertion.ref_type + \":protected:\" + assertion.ref_protected"
    "attribute.project_id"           = "assertion.project_id"
    "attribute.protected_project_id" = "assertion.ref_protected == \"true\" ? assertion.project_id : \"unprotected\""
  }

  oidc {
    issuer_uri = var.gitlab_issuer_uri
  }
}

locals {
  # principalSet://…/attribute.<name>/<GitLab project id> is appended by the job modules.
  ci_principal_prefix = "principalSet://iam.googleapis.com/${google_iam_workload_identity_pool.gitlab.name}"
}
