# What a GCP project that runs job workloads needs once, whatever its number of workloads:
# the APIs, the functions' rights in it, its gcr topic (Artifact Registry publishes every
# push of the project's repositories there) and the subscription delivering it to deploy,
# and read rights for its workloads' CI.

resource "google_project_service" "project" {
  for_each = toset([
    "artifactregistry.googleapis.com",
    "cloudscheduler.googleapis.com",
    "monitoring.googleapis.com",
    "pubsub.googleapis.com",
    "run.googleapis.com",
  ])
  project            = var.project
  service            = each.value
  disable_on_destroy = false
}

# deploy: reconcile Cloud Run jobs and their Cloud Scheduler jobs (functions/deploy).
resource "google_project_iam_custom_role" "deploy" {
  project     = var.project
  role_id     = "runwayJobsDeploy"
  title       = "Runway Jobs deploy"
  description = "Create, update and delete Runway-managed Cloud Run jobs and Cloud Scheduler jobs."
  permissions = [
    "cloudscheduler.jobs.create",
    "cloudscheduler.jobs.delete",
    "cloudscheduler.jobs.enable",
    "cloudscheduler.jobs.get",
    "cloudscheduler.jobs.list",
    "cloudscheduler.jobs.pause",
    "cloudscheduler.jobs.update",
    "run.jobs.create",
    "run.jobs.delete",
    "run.jobs.get",
    "run.jobs.list",
    "run.jobs.update",
    "run.operations.get",
  ]
}

# trigger: start executions with overrides and cancel them (Replace); no job writes. The grant
# is project-wide: Cloud Run jobs accept no conditional role bindings, and the jobs are created
# by the deploy function after this is applied, so neither an IAM condition on resource.name
# nor a per-job binding can narrow it here (docs/operations.md, "What the trigger may run").
resource "google_project_iam_custom_role" "trigger" {
  project     = var.project
  role_id     = "runwayJobsTrigger"
  title       = "Runway Jobs trigger"
  description = "Run Runway-managed Cloud Run jobs with overrides, list and cancel their executions."
  permissions = [
    "run.executions.cancel",
    "run.executions.get",
    "run.executions.list",
    "run.jobs.get",
    "run.jobs.run",
    "run.jobs.runWithOverrides",
    "run.operations.get",
  ]
}

resource "google_project_iam_member" "deploy" {
  project = var.project
  role    = google_project_iam_custom_role.deploy.id
  member  = "serviceAccount:${var.function_service_accounts.deploy}"
}

resource "google_project_iam_member" "trigger" {
  project = var.project
  role    = google_project_iam_custom_role.trigger.id
  member  = "serviceAccount:${var.function_service_accounts.trigger}"
}

# monitor: read jobs, executions and the Cloud Run job metrics, and the Scheduler job of a
# slot that got no execution (its state and last attempt say why).
resource "google_project_iam_member" "monitor" {
  for_each = toset(["roles/run.viewer", "roles/monitoring.viewer", "roles/cloudscheduler.viewer"])
  project  = var.project
  role     = each.value
  member   = "serviceAccount:${var.function_service_accounts.monitor}"
}

# CI of the project's workloads. Any pipeline, merge requests included (preflight runs
# runwayctl plan there), reads the Cloud Run job and Scheduler job it compares with the
# manifest; only pipelines of protected refs (deploy --wait, run --wait, status) also read
# executions. Nothing else of the project: no services, revisions, IAM policies or listings.
resource "google_project_iam_custom_role" "ci_plan" {
  project     = var.project
  role_id     = "runwayJobsCIPlan"
  title       = "Runway Jobs CI plan"
  description = "Read Cloud Run jobs and Cloud Scheduler jobs by name (runwayctl plan)."
  permissions = [
    "cloudscheduler.jobs.get",
    "run.jobs.get",
  ]
}

resource "google_project_iam_custom_role" "ci_status" {
  project     = var.project
  role_id     = "runwayJobsCIStatus"
  title       = "Runway Jobs CI status"
  description = "Read Cloud Run executions (runwayctl run --wait, status)."
  permissions = [
    "run.executions.get",
    "run.executions.list",
  ]
}

resource "google_project_iam_member" "ci_plan" {
  for_each = toset(var.gitlab_project_ids)
  project  = var.project
  role     = google_project_iam_custom_role.ci_plan.id
  member   = "${var.ci_principal_prefix}/attribute.project_id/${each.value}"
}

resource "google_project_iam_member" "ci_status" {
  for_each = toset(var.gitlab_project_ids)
  project  = var.project
  role     = google_project_iam_custom_role.ci_status.id
  member   = "${var.ci_principal_prefix}/attribute.protected_project_id/${each.value}"
}

# shared/platform.ArtifactTopic: Artifact Registry's notifications of this project.
resource "google_pubsub_topic" "gcr" {
  name    = "gcr"
  project = var.project
  labels  = var.labels

  depends_on = [google_project_service.project]
}

module "gcr_subscription" {
  source                = "../function-subscription"
  name                  = "runway-gcr-${var.project}-push"
  project               = var.platform_project
  topic_project         = var.project
  topic                 = google_pubsub_topic.gcr.name
  function_uri          = var.deploy_function_uri
  push_service_account  = var.push_service_account
  pubsub_service_agent  = var.pubsub_service_agent
  dead_letter_topic     = var.deploy_dead_letter_topic
  max_delivery_attempts = var.max_delivery_attempts
  labels                = var.labels
}
