# The three functions, each built by Cloud Build's Go buildpack from its own folder. The folder
# must be vendored first (GOWORK=off go mod vendor: shared/ reaches the build only through
# vendor/), which cloudbuild.yaml does before terraform apply; the precondition below refuses
# an upload without vendor/.

resource "google_storage_bucket" "sources" {
  name                        = "${var.project}-runway-jobs-sources"
  project                     = var.project
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  labels                      = var.labels

  lifecycle_rule {
    condition {
      age = 30
    }
    action {
      type = "Delete"
    }
  }
}

data "archive_file" "function" {
  for_each    = local.functions
  type        = "zip"
  source_dir  = "${path.module}/../../functions/${each.key}"
  output_path = "${path.module}/.build/${each.key}.zip"
}

resource "google_storage_bucket_object" "function" {
  for_each = local.functions
  # The content hash in the name: a changed folder is a new object, hence a new build.
  name   = "functions/${each.key}-${data.archive_file.function[each.key].output_md5}.zip"
  bucket = google_storage_bucket.sources.name
  source = data.archive_file.function[each.key].output_path

  lifecycle {
    precondition {
      condition     = fileexists("${path.module}/../../functions/${each.key}/vendor/modules.txt")
      error_message = "functions/${each.key} is not vendored: run (cd functions/${each.key} && GOWORK=off go mod vendor) first."
    }
  }
}

resource "google_cloudfunctions2_function" "function" {
  for_each    = local.functions
  name        = "runway-${each.key}"
  project     = var.project
  location    = var.region
  description = "Runway Jobs ${each.key} function"
  labels      = var.labels

  build_config {
    runtime         = var.go_runtime
    entry_point     = each.value.entry_point
    service_account = google_service_account.build.id
    # platform.FunctionLDFlags: the buildpack's go build links without symbol table or DWARF.
    environment_variables = { GOOGLE_GOLDFLAGS = "-s -w" }
    source {
      storage_source {
        bucket = google_storage_bucket.sources.name
        object = google_storage_bucket_object.function[each.key].name
      }
    }
  }

  service_config {
    available_memory               = each.value.memory
    timeout_seconds                = each.value.timeout
    max_instance_count             = var.max_instances[each.key]
    min_instance_count             = 0
    ingress_settings               = "ALLOW_INTERNAL_ONLY"
    all_traffic_on_latest_revision = true
    service_account_email          = google_service_account.function[each.key].email
    environment_variables          = local.environment[each.key]

    secret_volumes {
      mount_path = local.inventory_dir
      project_id = var.project
      secret     = google_secret_manager_secret.inventory.secret_id
      versions {
        version = google_secret_manager_secret_version.inventory.version
        path    = "inventory.yml"
      }
    }

    dynamic "secret_volumes" {
      for_each = each.key == "monitor" ? [1] : []
      content {
        mount_path = local.channels_dir
        project_id = var.project
        secret     = google_secret_manager_secret.channels.secret_id
        versions {
          version = google_secret_manager_secret_version.channels.version
          path    = "channels.yml"
        }
      }
    }

    dynamic "secret_environment_variables" {
      for_each = each.key == "monitor" ? var.channel_secret_env : {}
      content {
        key        = secret_environment_variables.key
        project_id = var.project
        secret     = secret_environment_variables.value
        version    = "latest"
      }
    }
  }

  depends_on = [
    google_project_service.platform,
    google_secret_manager_secret_iam_member.inventory,
    google_secret_manager_secret_iam_member.channels,
    google_secret_manager_secret_iam_member.channel_env,
  ]
}

# Authenticated invocation only: the push identity of the subscriptions is the one invoker.
resource "google_cloud_run_v2_service_iam_member" "invoker" {
  for_each = local.functions
  project  = var.project
  location = var.region
  name     = google_cloudfunctions2_function.function[each.key].name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.push.email}"
}
