output "gcr_topic" {
  description = "Full id of the project's gcr topic."
  value       = google_pubsub_topic.gcr.id
}

output "gcr_subscription" {
  description = "The subscription delivering gcr to the deploy function."
  value       = module.gcr_subscription.id
}

output "deploy_role" {
  description = "The deploy function's custom role in the project."
  value       = google_project_iam_custom_role.deploy.id
}

output "trigger_role" {
  description = "The trigger function's custom role in the project."
  value       = google_project_iam_custom_role.trigger.id
}
