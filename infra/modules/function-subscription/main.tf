# What an Eventarc Pub/Sub trigger is made of (a push subscription delivering to the function),
# written out so that it can live in the functions' project while its topic is in a workload
# project, and so that it has a dead-letter policy (Eventarc manages its own subscription and
# addresses Cloud Run services of its own project only; see infra/README.md).
#
# The push endpoint ends with /projects/P/topics/T: the functions framework turns the Pub/Sub
# push into the CloudEvent google.cloud.pubsub.topic.v1.messagePublished with source
# //pubsub.googleapis.com/projects/P/topics/T, from which the functions learn the workload.

resource "google_pubsub_subscription" "push" {
  name                 = var.name
  project              = var.project
  topic                = "projects/${var.topic_project}/topics/${var.topic}"
  ack_deadline_seconds = var.ack_deadline_seconds
  labels               = var.labels

  push_config {
    push_endpoint = "${var.function_uri}/projects/${var.topic_project}/topics/${var.topic}"
    oidc_token {
      service_account_email = var.push_service_account
      audience              = var.function_uri
    }
  }

  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "600s"
  }

  dead_letter_policy {
    dead_letter_topic     = var.dead_letter_topic
    max_delivery_attempts = var.max_delivery_attempts
  }

  # Never expire (the default deletes a subscription after 31 days without traffic).
  expiration_policy {
    ttl = ""
  }
}

# The service agent acknowledges a message it moved to the dead-letter topic.
resource "google_pubsub_subscription_iam_member" "dead_letter" {
  project      = var.project
  subscription = google_pubsub_subscription.push.name
  role         = "roles/pubsub.subscriber"
  member       = "serviceAccount:${var.pubsub_service_agent}"
}
