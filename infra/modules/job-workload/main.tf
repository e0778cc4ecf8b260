# Everything one job workload needs before its first `runwayctl deploy`: the topics its CI and
# its Cloud Scheduler job publish on, the subscriptions delivering them to the functions, the
# runtime account and the image repository. The Cloud Run job and its Scheduler job are not
# here: the deploy function owns them.

data "google_project" "workload" {
  project_id = var.project
}

locals {
  repo_parts    = split("/", var.artifact_repository)
  repo_location = trimsuffix(local.repo_parts[0], "-docker.pkg.dev")
  repo_project  = local.repo_parts[1]
  repo_id       = local.repo_parts[2]

  # CI of protected refs publishes and pushes images; any pipeline of the project reads.
  ci_protected = "${var.ci_principal_prefix}/attribute.protected_project_id/${var.gitlab_project_id}"
  ci_any       = "${var.ci_principal_prefix}/attribute.project_id/${var.gitlab_project_id}"

  # The runtime account is created here unless the inventory names one of another project.
  runtime_domain  = "@${var.project}.iam.gserviceaccount.com"
  runtime_id      = var.service_account == "" ? "crun-${var.name}" : trimsuffix(var.service_account, local.runtime_domain)
  create_runtime  = var.service_account == "" || endswith(var.service_account, local.runtime_domain)
  runtime_account = local.create_runtime ? google_service_account.runtime[0].email : var.service_account

  scheduler_agent = "service-${data.google_project.workload.number}@gcp-sa-cloudscheduler.iam.gserviceaccount.com"
  object_prefix   = "projects/_/buckets/${var.state_bucket}/objects/${var.state_prefix}/"
}

# shared/platform.DeployTopic and TriggerTopic.
resource "google_pubsub_topic" "deploy" {
  name    = "runway-deploy-${var.name}"
  project = var.project
  labels  = merge(var.labels, { runway-workload = var.name })
}

resource "google_pubsub_topic" "trigger" {
  name    = "runway-trigger-${var.name}"
  project = var.project
  labels  = merge(var.labels, { runway-workload = var.name })
}

# Only the workload's CI (protected refs) publishes deploy and run requests.
resource "google_pubsub_topic_iam_member" "ci_deploy" {
  project = var.project
  topic   = google_pubsub_topic.deploy.name
  role    = "roles/pubsub.publisher"
  member  = local.ci_protected
}

resource "google_pubsub_topic_iam_member" "ci_trigger" {
  project = var.project
  topic   = google_pubsub_topic.trigger.name
  role    = "roles/pubsub.publisher"
  member  = local.ci_protected
}

# The Scheduler job the deploy function creates publishes the scheduled requests as the
# project's Cloud Scheduler service agent.
resource "google_pubsub_topic_iam_member" "scheduler_trigger" {
  project = var.project
  topic   = google_pubsub_topic.trigger.name
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${local.scheduler_agent}"
}

module "deploy_subscription" {
  source                = "../function-subscription"
  name                  = "runway-deploy-${var.name}-push"
  project               = var.platform_project
  topic_project         = var.project
  topic                 = google_pubsub_topic.deploy.name
  function_uri          = var.deploy_function_uri
  push_service_account  = var.push_service_account
  pubsub_service_agent  = var.pubsub_service_agent
  dead_letter_topic     = var.dead_letter_topics.deploy
  max_delivery_attempts = var.max_delivery_attempts
  labels                = var.labels
}

module "trigger_subscription" {
  source                = "../function-subscription"
  name                  = "runway-trigger-${var.name}-push"
  project               = var.platform_project
  topic_project         = var.project
  topic                 = google_pubsub_topic.trigger.name
  function_uri          = var.trigger_function_uri
  push_service_account  = var.push_service_account
  pubsub_service_agent  = var.pubsub_service_agent
  dead_letter_topic     = var.dead_letter_topics.trigger
  max_delivery_attempts = var.max_delivery_attempts
  labels                = var.labels
}

# The runtime account (inventory RunAs: crun-<name> unless the inventory names one).
resource "google_service_account" "runtime" {
  count        = local.create_runtime ? 1 : 0
  project      = var.project
  account_id   = local.runtime_id
  display_name = "Runway job ${var.name}"
}

# The deploy function sets this account on the Cloud Run job (iam.serviceAccounts.actAs).
resource "google_service_account_iam_member" "deploy_acts_as" {
  service_account_id = "projects/-/serviceAccounts/${local.runtime_account}"
  role               = "roles/iam.serviceAccountUser"
  member             = "serviceAccount:${var.deploy_service_account}"
}

resource "google_artifact_registry_repository" "images" {
  project       = local.repo_project
  location      = local.repo_location
  repository_id = local.repo_id
  format        = "DOCKER"
  description   = "Images of the Runway job ${var.name}"
  labels        = merge(var.labels, { runway-workload = var.name })

  lifecycle {
    precondition {
      condition     = local.repo_project == var.project
      error_message = "artifact_repository ${var.artifact_repository} is not in the workload's project ${var.project}: its pushes would not reach that project's gcr topic."
    }
  }
}

resource "google_artifact_registry_repository_iam_member" "ci_push" {
  project    = google_artifact_registry_repository.images.project
  location   = google_artifact_registry_repository.images.location
  repository = google_artifact_registry_repository.images.name
  role       = "roles/artifactregistry.writer"
  member     = local.ci_protected
}

# runwayctl deploy --wait and run --wait read the workload's records, status and doctor list its
# run records, and nothing else. A list request's resource is the bucket: it is matched by the
# prefix it lists.
resource "google_storage_bucket_iam_member" "ci_records" {
  bucket = var.state_bucket
  role   = "roles/storage.objectViewer"
  member = local.ci_any

  condition {
    title      = "runway-ci-${var.name}-records"
    expression = "resource.name.startsWith(\"${local.object_prefix}deploys/${var.name}/\") || resource.name.startsWith(\"${local.object_prefix}runs/${var.name}/\") || api.getAttribute(\"storage.googleapis.com/objectListPrefix\", \"\").startsWith(\"${var.state_prefix}/runs/${var.name}/\")"
  }
}
