# Configuration files the functions read, mounted from Secret Manager as files. Neither holds
# a secret value: the channel configuration names its secrets by reference ({env: NAME} or
# {secret_manager: …}); those secrets are created and rotated outside Terraform, so their
# values never reach the Terraform state (docs/operations.md, "Rotate a channel secret").

resource "google_secret_manager_secret" "inventory" {
  secret_id = "runway-jobs-inventory"
  project   = var.project
  labels    = var.labels

  replication {
    auto {}
  }

  depends_on = [google_project_service.platform]
}

resource "google_secret_manager_secret_version" "inventory" {
  secret      = google_secret_manager_secret.inventory.id
  secret_data = file(var.inventory_file)
}

resource "google_secret_manager_secret" "channels" {
  secret_id = "runway-jobs-channels"
  project   = var.project
  labels    = var.labels

  replication {
    auto {}
  }

  depends_on = [google_project_service.platform]
}

resource "google_secret_manager_secret_version" "channels" {
  secret      = google_secret_manager_secret.channels.id
  secret_data = file(var.channels_file)
}

resource "google_secret_manager_secret_iam_member" "inventory" {
  for_each  = local.functions
  project   = var.project
  secret_id = google_secret_manager_secret.inventory.secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.function[each.key].email}"
}

resource "google_secret_manager_secret_iam_member" "channels" {
  project   = var.project
  secret_id = google_secret_manager_secret.channels.secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.function["monitor"].email}"
}

# Channel secrets (created outside Terraform) that the monitor reads: as environment variables
# ({env: NAME}) or through Secret Manager references ({secret_manager: …}).
resource "google_secret_manager_secret_iam_member" "channel_env" {
  for_each  = toset(concat(values(var.channel_secret_env), var.channel_secret_ids))
  project   = var.project
  secret_id = each.value
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.function["monitor"].email}"
}
