# Platform topics (shared/platform: MonitorTickTopic, AlertsTopic), the dead-letter topics of
# the three functions, and the monitor's tick.

resource "google_pubsub_topic" "tick" {
  name    = "runway-monitor-tick"
  project = var.project
  labels  = var.labels

  depends_on = [google_project_service.platform]
}

resource "google_pubsub_topic" "alerts" {
  name    = "runway-alerts"
  project = var.project
  labels  = var.labels

  depends_on = [google_project_service.platform]
}

resource "google_pubsub_topic" "dead_letter" {
  for_each = local.functions
  name     = "runway-${each.key}-dead-letter"
  project  = var.project
  labels   = var.labels

  depends_on = [google_project_service.platform]
}

# A topic keeps nothing without a subscription: these hold dead letters for a week, to be
# read and replayed (docs/operations.md, "Dead-lettered messages").
resource "google_pubsub_subscription" "dead_letter_hold" {
  for_each                   = local.functions
  name                       = "runway-${each.key}-dead-letter-hold"
  project                    = var.project
  topic                      = google_pubsub_topic.dead_letter[each.key].id
  message_retention_duration = "604800s"
  retain_acked_messages      = true
  ack_deadline_seconds       = 60
  labels                     = var.labels

  expiration_policy {
    ttl = ""
  }
}

resource "google_pubsub_topic_iam_member" "dead_letter_publisher" {
  for_each = local.functions
  project  = var.project
  topic    = google_pubsub_topic.dead_letter[each.key].name
  role     = "roles/pubsub.publisher"
  member   = "serviceAccount:${local.pubsub_service_agent}"
}

module "tick_subscription" {
  source                = "../modules/function-subscription"
  name                  = "runway-monitor-tick-push"
  project               = var.project
  topic_project         = var.project
  topic                 = google_pubsub_topic.tick.name
  function_uri          = google_cloudfunctions2_function.function["monitor"].service_config[0].uri
  push_service_account  = google_service_account.push.email
  pubsub_service_agent  = local.pubsub_service_agent
  dead_letter_topic     = google_pubsub_topic.dead_letter["monitor"].id
  max_delivery_attempts = 5
  labels                = var.labels
}

# Every minute: a tick whose content does not matter (the monitor evaluates up to now).
resource "google_cloud_scheduler_job" "tick" {
  name        = "runway-monitor-tick"
  project     = var.project
  region      = var.region
  description = "Runway Jobs monitor tick [managed-by: terraform]"
  schedule    = var.monitor_tick_schedule
  time_zone   = "Etc/UTC"

  pubsub_target {
    topic_name = google_pubsub_topic.tick.id
    data       = base64encode("{\"tick\":true}")
  }

  depends_on = [google_pubsub_topic_iam_member.tick_scheduler]
}

resource "google_pubsub_topic_iam_member" "tick_scheduler" {
  project = var.project
  topic   = google_pubsub_topic.tick.name
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:service-${data.google_project.platform.number}@gcp-sa-cloudscheduler.iam.gserviceaccount.com"
}
