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
      matches_prefix = ["${var.state_prefix}/deploys/", "${var.state_prefix}/runs/"]
    }
    action {
      type = "Delete"
    }
  }
}

locals {
  # What each function may do in the store, by key prefix: platform.StateGrants
  # (shared/platform/platform.go), which each function also enforces on its own store;
  # infra's TestStateGrantsMatchCode holds the two equal. write: read, list, create, replace,
  # delete; prune: read, list, delete (the monitor's retention of the records).
  state_grants = {
    deploy  = { write = ["deploys/", "deploy-intents/"], prune = [] }
    trigger = { write = ["runs/", "trigger-locks/", "trigger-windows/"], prune = [] }
    monitor = { write = ["monitor/", "monitor-retention/"], prune = ["deploys/", "runs/"] }
  }
  object_prefix = "projects/_/buckets/${local.state_bucket}/objects/${var.state_prefix}/"
  # An object request is matched by the object's name; a list request's resource is the bucket,
  # so it is matched by the prefix it lists (without it, a prefix-conditioned role lists nothing).
  state_conditions = {
    for fn, g in local.state_grants : fn => {
      for kind in ["write", "prune"] : kind => join(" || ", concat(
        [for p in g[kind] : "resource.name.startsWith(\"${local.object_prefix}${p}\")"],
        [for p in g[kind] : "api.getAttribute(\"storage.googleapis.com/objectListPrefix\", \"\").startsWith(\"${var.state_prefix}/${p}\")"],
      )) if length(g[kind]) > 0
    }
  }
}

resource "google_storage_bucket_iam_member" "state_write" {
  for_each = { for fn, c in local.state_conditions : fn => c.write if contains(keys(c), "write") }
  bucket   = google_storage_bucket.state.name
  role     = "roles/storage.objectUser"
  member   = "serviceAccount:${google_service_account.function[each.key].email}"

  condition {
    title      = "runway-${each.key}-keys"
    expression = each.value
  }
}

# Pruning needs delete without create: no predefined role has that.
resource "google_project_iam_custom_role" "state_pruner" {
  project     = var.project
  role_id     = "runwayStatePruner"
  title       = "Runway state pruner"
  description = "Reads, lists and deletes expired records in the Runway state bucket (the monitor's retention)."
  permissions = ["storage.objects.delete", "storage.objects.get", "storage.objects.list"]
}

resource "google_storage_bucket_iam_member" "state_prune" {
  for_each = { for fn, c in local.state_conditions : fn => c.prune if contains(keys(c), "prune") }
  bucket   = google_storage_bucket.state.name
  role     = google_project_iam_custom_role.state_pruner.name
  member   = "serviceAccount:${google_service_account.function[each.key].email}"

  condition {
    title      = "runway-${each.key}-prunes"
    expression = each.value
  }
}
