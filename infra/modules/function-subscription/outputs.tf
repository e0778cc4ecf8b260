output "id" {
  description = "Full id of the subscription."
  value       = google_pubsub_subscription.push.id
}

output "push_endpoint" {
  description = "Where Pub/Sub pushes (the function URI and the topic path)."
  value       = google_pubsub_subscription.push.push_config[0].push_endpoint
}
