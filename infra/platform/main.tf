data "google_project" "platform" {
  project_id = var.project
}

locals {
  # The provisioner's inventory: its job entries are what this root provisions.
  inventory    = yamldecode(file(var.inventory_file)).inventory
  jobs         = { for w in local.inventory : w.name => w if w.type == "job" }
  job_projects = { for p in distinct([for w in values(local.jobs) : w.gcp_project]) : p => [for w in values(local.jobs) : w if w.gcp_project == p] }

  state_bucket = coalesce(var.state_bucket, "${var.project}-runway-jobs-state")
  state_url    = "gs://${local.state_bucket}/${var.state_prefix}"

  # Where the Secret Manager volumes put the two configuration files.
  inventory_dir = "/etc/runway/inventory"
  channels_dir  = "/etc/runway/channels"

  # The three functions: entry points are the targets the packages register
  # (deploy.FunctionName, trigger.FunctionName, monitor.FunctionName).
  functions = {
    deploy = {
      entry_point = "Deploy"
      timeout     = 540
      memory      = "512Mi"
    }
    trigger = {
      entry_point = "Trigger"
      timeout     = 300
      memory      = "512Mi"
    }
    monitor = {
      entry_point = "Monitor"
      timeout     = 300
      memory      = "1Gi"
    }
  }

  # Exactly the settings each function's ConfigFromEnv reads (checked by infra/env_test.go).
  # The emulator address is never set here: unset, the functions talk to Google Cloud.
  environment = {
    deploy = {
      RUNWAY_INVENTORY = "${local.inventory_dir}/inventory.yml"
      RUNWAY_STATE     = local.state_url
    }
    trigger = {
      RUNWAY_INVENTORY = "${local.inventory_dir}/inventory.yml"
      RUNWAY_STATE     = local.state_url
    }
    monitor = {
      RUNWAY_INVENTORY            = "${local.inventory_dir}/inventory.yml"
      RUNWAY_STATE                = local.state_url
      RUNWAY_CHANNELS             = "${local.channels_dir}/channels.yml"
      RUNWAY_MONITOR_INGEST_LAG   = var.monitor_ingest_lag
      RUNWAY_MONITOR_REALERT      = var.monitor_realert
      RUNWAY_MONITOR_BLIND_AFTER  = var.monitor_blind_after
      RUNWAY_MONITOR_WORKERS      = tostring(var.monitor_workers)
      RUNWAY_MONITOR_FLAP_WINDOW  = var.monitor_flap_window
      RUNWAY_MONITOR_FLAP_CHANGES = tostring(var.monitor_flap_changes)
    }
  }

  pubsub_service_agent = "service-${data.google_project.platform.number}@gcp-sa-pubsub.iam.gserviceaccount.com"

  gitlab_condition = coalesce(var.gitlab_attribute_condition, "assertion.project_id in [${join(", ", [for id in distinct([for w in values(local.jobs) : tostring(w.project_id)]) : "\"${id}\""])}]")
}

resource "google_project_service" "platform" {
  for_each = toset([
    "artifactregistry.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudfunctions.googleapis.com",
    "cloudscheduler.googleapis.com",
    "iam.googleapis.com",
    "iamcredentials.googleapis.com",
    "pubsub.googleapis.com",
    "run.googleapis.com",
    "secretmanager.googleapis.com",
    "storage.googleapis.com",
    "sts.googleapis.com",
  ])
  project            = var.project
  service            = each.value
  disable_on_destroy = false
}
