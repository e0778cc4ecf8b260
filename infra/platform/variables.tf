variable "project" {
  description = "The platform project: the three functions, the state bucket, the monitor tick, the alerts topic and the push subscriptions."
  type        = string
}

variable "region" {
  description = "Region of the functions, the monitor tick's Scheduler job and the state bucket."
  type        = string
}

variable "inventory_file" {
  description = "Path of the provisioner's inventory.yml. Its job entries become job-project and job-workload instances, and the file is mounted into the functions (RUNWAY_INVENTORY)."
  type        = string

  validation {
    condition     = length(file(var.inventory_file)) <= 65536
    error_message = "The inventory is mounted from Secret Manager, whose versions hold at most 64 KiB."
  }
}

variable "channels_file" {
  description = "Path of the monitor's channel configuration (YAML or JSON, see docs/monitor.md). It holds secret references, never secret values; mounted into the monitor (RUNWAY_CHANNELS)."
  type        = string

  validation {
    condition     = length(file(var.channels_file)) <= 65536
    error_message = "The channel configuration is mounted from Secret Manager, whose versions hold at most 64 KiB."
  }
}

variable "channel_secret_env" {
  description = "Channel secrets referenced as {env: NAME} in the channel configuration: NAME => the Secret Manager secret (in the platform project) whose latest version the monitor gets as that environment variable."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for k in keys(var.channel_secret_env) : can(regex("^[A-Z_][A-Z0-9_]*$", k)) && !startswith(k, "RUNWAY_")])
    error_message = "Secret environment variables are upper-case identifiers outside RUNWAY_* (the functions' own settings)."
  }
}

variable "channel_secret_ids" {
  description = "Secrets (in the platform project) referenced as {secret_manager: projects/P/secrets/S/versions/V} in the channel configuration: the monitor's account may read them."
  type        = list(string)
  default     = []
}

variable "state_bucket" {
  description = "Name of the durable-state bucket (claims, deploy outcomes, incidents). Default: <project>-runway-jobs-state."
  type        = string
  default     = null
}

variable "state_prefix" {
  description = "Object prefix of the durable state inside the bucket (RUNWAY_STATE is gs://<bucket>/<prefix>)."
  type        = string
  default     = "runway"

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9_-]*$", var.state_prefix))
    error_message = "One path segment: lower-case letters, digits, - and _."
  }
}

variable "go_runtime" {
  description = "Cloud Run functions runtime ID; must be at least the go directive of the functions' go.mod."
  type        = string
  default     = "go126"
}

variable "max_instances" {
  description = "Maximum instances of each function."
  type        = object({ deploy = number, trigger = number, monitor = number })
  default     = { deploy = 10, trigger = 20, monitor = 3 }
}

variable "max_delivery_attempts" {
  description = "Deliveries of one message before Pub/Sub moves it to the function's dead-letter topic (5 to 100)."
  type        = number
  default     = 20

  validation {
    condition     = var.max_delivery_attempts >= 5 && var.max_delivery_attempts <= 100
    error_message = "Pub/Sub accepts 5 to 100 delivery attempts."
  }
}

variable "monitor_tick_schedule" {
  description = "Cron schedule of the monitor tick (Cloud Scheduler, UTC)."
  type        = string
  default     = "* * * * *"
}

variable "monitor_ingest_lag" {
  description = "RUNWAY_MONITOR_INGEST_LAG: evaluate the metrics up to now minus this (Go duration)."
  type        = string
  default     = "3m"
}

variable "monitor_realert" {
  description = "RUNWAY_MONITOR_REALERT: re-send open incidents this often (Go duration; 0s never)."
  type        = string
  default     = "0s"
}

variable "monitor_blind_after" {
  description = "RUNWAY_MONITOR_BLIND_AFTER: how long the metrics may stay unreadable before the platform channels are told (Go duration)."
  type        = string
  default     = "15m"
}

variable "monitor_workers" {
  description = "RUNWAY_MONITOR_WORKERS: concurrent execution reads (1 to 256)."
  type        = number
  default     = 8
}

variable "monitor_flap_window" {
  description = "RUNWAY_MONITOR_FLAP_WINDOW: flap damping window (Go duration; \"0\" turns damping off)."
  type        = string
  default     = "6h"
}

variable "monitor_flap_changes" {
  description = "RUNWAY_MONITOR_FLAP_CHANGES: incident opens and resolves within the flap window that make a job flapping (2 to 100)."
  type        = number
  default     = 4
}

variable "gitlab_issuer_uri" {
  description = "OIDC issuer of the GitLab instance whose CI jobs publish deploy and run requests."
  type        = string
  default     = "https://gitlab.com"
}

variable "gitlab_attribute_condition" {
  description = "CEL condition on GitLab's ID token for the Workload Identity provider. Default: the token's project_id is one of the inventory's job workloads."
  type        = string
  default     = null
}

variable "labels" {
  description = "Labels on every labelled resource."
  type        = map(string)
  default     = {}
}

variable "runwayctl_image_readers" {
  description = "Members that may pull the runwayctl image from the platform's runway repository: the GitLab runners' identity, or allUsers (the image holds no secret and no inventory)."
  type        = list(string)
  default     = []
}
