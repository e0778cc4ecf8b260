output "functions" {
  description = "Name and URI of each function."
  value       = { for k, f in google_cloudfunctions2_function.function : k => { name = f.name, uri = f.service_config[0].uri } }
}

output "function_service_accounts" {
  description = "E-mail of each function's service account."
  value       = { for k, sa in google_service_account.function : k => sa.email }
}

output "state_url" {
  description = "RUNWAY_STATE: the durable store, for runwayctl --wait in CI (the include's state input)."
  value       = "gs://${google_storage_bucket.state.name}/${var.state_prefix}"
}

output "alerts_topic" {
  description = "Full id of runway-alerts."
  value       = google_pubsub_topic.alerts.id
}

output "dead_letter_subscriptions" {
  description = "Where each function's dead letters wait (pull subscriptions)."
  value       = { for k, s in google_pubsub_subscription.dead_letter_hold : k => s.id }
}

output "gitlab_id_token_audience" {
  description = "The aud of GitLab CI's ID token (the include's gcp_workload_identity_provider input, with https: prefix)."
  value       = "https://iam.googleapis.com/${google_iam_workload_identity_pool_provider.gitlab.name}"
}

output "gcp_workload_identity_provider" {
  description = "The Workload Identity provider's resource name, for the include's gcp_workload_identity_provider input."
  value       = google_iam_workload_identity_pool_provider.gitlab.name
}

output "workloads" {
  description = "Per job workload: topics, runtime account, image repository."
  value = { for k, m in module.job_workload : k => {
    deploy_topic            = m.deploy_topic
    trigger_topic           = m.trigger_topic
    runtime_service_account = m.runtime_service_account
    artifact_repository     = m.artifact_repository
  } }
}

output "job_projects" {
  description = "Per workload project: its gcr topic."
  value       = { for k, m in module.job_project : k => m.gcr_topic }
}

output "inventory_url" {
  description = "RUNWAY_INVENTORY for runwayctl in CI (the include's inventory input): the applied inventory, readable by the job workloads' GitLab projects."
  value       = "gs://${google_storage_bucket_object.inventory.bucket}/${google_storage_bucket_object.inventory.name}"
}

output "runwayctl_image_repository" {
  description = "Where cloudbuild.yaml pushes the runwayctl image (its _IMAGE_REPOSITORY)."
  value       = "${google_artifact_registry_repository.runway.location}-docker.pkg.dev/${var.project}/${google_artifact_registry_repository.runway.repository_id}/runwayctl"
}
