# The durable state: claims and run records (trigger), deploy outcomes (deploy), incidents and
# watermarks (monitor). Every write is generation-conditioned (shared/state/gcs.go), so the
# bucket needs no versioning; each account may touch only its own key prefixes.

resource "google_storage_bucket" "state" {
  name                        = local.state_bucket
  project                     = var.project
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  labels                      = var.labels

  # Run and deploy records are read back for minutes (runwayctl --wait) and for the monitor's
  # slot checks (a day); monitor/<project> is rewritten on every tick, so it never ages out.
  lifecycle_rule {
    condition {
      age            = 90
      matches_prefix = ["${var.state_prefix}/runs/", "${var.state_prefix}/deploys/"]
    }
    action {
      type = "Delete"
    }
  }
}

locals {
  # Key prefixes (shared/platform, functions/trigger/lock.go, functions/monitor/handler.go)
  # each account reads and writes.
  state_writes = {
    deploy  = ["deploys/"]
    trigger = ["runs/", "trigger-locks/"]
    monitor = ["monitor/"]
  }
  object_prefix = "projects/_/buckets/${local.state_bucket}/objects/${var.state_prefix}/"
}

resource "google_storage_bucket_iam_member" "state_write" {
  for_each = local.state_writes
  bucket   = google_storage_bucket.state.name
  role     = "roles/storage.objectUser"
  member   = "serviceAccount:${google_service_account.function[each.key].email}"

  condition {
    title      = "runway-${each.key}-keys"
    expression = join(" || ", [for p in each.value : "resource.name.startsWith(\"${local.object_prefix}${p}\")"])
  }
}

# The monitor reads the trigger's slot records (why a slot has no execution).
resource "google_storage_bucket_iam_member" "monitor_reads_runs" {
  bucket = google_storage_bucket.state.name
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${google_service_account.function["monitor"].email}"

  condition {
    title      = "runway-monitor-reads-runs"
    expression = "resource.name.startsWith(\"${local.object_prefix}runs/\")"
  }
}
