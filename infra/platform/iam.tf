# One service account per function, each with only what it needs. Rights in the workload
# projects (Cloud Run, Cloud Scheduler, Monitoring, acting as the runtime accounts) are granted
# by the job-project and job-workload modules; the rights here are on platform resources.

resource "google_service_account" "function" {
  for_each     = local.functions
  project      = var.project
  account_id   = "runway-${each.key}"
  display_name = "Runway Jobs ${each.key} function"
}

# The identity Pub/Sub pushes as (OIDC token): the only invoker of the functions.
resource "google_service_account" "push" {
  project      = var.project
  account_id   = "runway-pubsub-push"
  display_name = "Runway Jobs Pub/Sub push to the functions"
}

# Pub/Sub mints the push tokens of the subscriptions (needed for projects created before
# April 2021; harmless otherwise).
resource "google_service_account_iam_member" "push_token_creator" {
  service_account_id = google_service_account.push.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = "serviceAccount:${local.pubsub_service_agent}"
}

# The account Cloud Build builds the functions as (instead of the default compute account).
resource "google_service_account" "build" {
  project      = var.project
  account_id   = "runway-functions-build"
  display_name = "Runway Jobs function builds"
}

resource "google_project_iam_member" "build" {
  for_each = toset([
    "roles/logging.logWriter",
    "roles/artifactregistry.writer",
  ])
  project = var.project
  role    = each.value
  member  = "serviceAccount:${google_service_account.build.email}"
}

resource "google_storage_bucket_iam_member" "build_sources" {
  bucket = google_storage_bucket.sources.name
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${google_service_account.build.email}"
}

# The monitor publishes alerts on runway-alerts (its pubsub channel type).
resource "google_pubsub_topic_iam_member" "monitor_alerts" {
  project = var.project
  topic   = google_pubsub_topic.alerts.name
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${google_service_account.function["monitor"].email}"
}
