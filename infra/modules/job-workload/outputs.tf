output "deploy_topic" {
  description = "Full id of runway-deploy-<name>."
  value       = google_pubsub_topic.deploy.id
}

output "trigger_topic" {
  description = "Full id of runway-trigger-<name>."
  value       = google_pubsub_topic.trigger.id
}

output "runtime_service_account" {
  description = "E-mail of the account the job runs as."
  value       = local.runtime_account
}

output "artifact_repository" {
  description = "The image repository (LOCATION-docker.pkg.dev/PROJECT/REPOSITORY)."
  value       = "${google_artifact_registry_repository.images.location}-docker.pkg.dev/${google_artifact_registry_repository.images.project}/${google_artifact_registry_repository.images.repository_id}"
}

output "subscriptions" {
  description = "The push subscriptions delivering the two topics to deploy and trigger."
  value       = { deploy = module.deploy_subscription.id, trigger = module.trigger_subscription.id }
}
