# What the runwayctl image needs from the platform (docs/operations.md, "The runwayctl image"):
# the repository cloudbuild.yaml pushes it to, and the inventory it validates against,
# published where CI reads it. The inventory is not in the image: a new inventory takes an
# apply (this object), not a new image.

resource "google_artifact_registry_repository" "runway" {
  project       = var.project
  location      = var.region
  repository_id = "runway"
  format        = "DOCKER"
  description   = "The runwayctl image (release/cmd/image), tagged by version."
  labels        = var.labels

  depends_on = [google_project_service.platform]
}

resource "google_artifact_registry_repository_iam_member" "runwayctl_readers" {
  for_each   = toset(var.runwayctl_image_readers)
  project    = google_artifact_registry_repository.runway.project
  location   = google_artifact_registry_repository.runway.location
  repository = google_artifact_registry_repository.runway.name
  role       = "roles/artifactregistry.reader"
  member     = each.value
}

locals {
  # The applied inventory, next to the records CI already reads: RUNWAY_INVENTORY of the CI
  # include is gs://<state bucket>/<prefix>/inventory.yml (output inventory_url).
  inventory_object = "${var.state_prefix}/inventory.yml"
  gitlab_projects  = distinct([for w in values(local.jobs) : tostring(w.project_id)])
}

resource "google_storage_bucket_object" "inventory" {
  bucket       = google_storage_bucket.state.name
  name         = local.inventory_object
  content      = file(var.inventory_file)
  content_type = "application/yaml"
}

# Any pipeline of a job workload's GitLab project (merge requests too: preflight validates) may
# read the inventory object, and nothing else of the bucket beyond its own records.
resource "google_storage_bucket_iam_member" "ci_inventory" {
  for_each = toset(local.gitlab_projects)
  bucket   = google_storage_bucket.state.name
  role     = "roles/storage.objectViewer"
  member   = "${local.ci_principal_prefix}/attribute.project_id/${each.value}"

  condition {
    title      = "runway-ci-${each.value}-inventory"
    expression = "resource.name == \"projects/_/buckets/${local.state_bucket}/objects/${local.inventory_object}\""
  }
}
