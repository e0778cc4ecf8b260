variable "name" {
  description = "The workload (inventory name): Cloud Run job, Scheduler job and topics are named after it."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,48}[a-z0-9]$", var.name))
    error_message = "A workload name is lower-case letters, digits and -, starting with a letter."
  }
}

variable "project" {
  description = "The workload's GCP project (inventory gcp_project)."
  type        = string
}

variable "artifact_repository" {
  description = "The workload's image repository, LOCATION-docker.pkg.dev/PROJECT/REPOSITORY (inventory artifact_repository)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9-]+-docker\\.pkg\\.dev/[a-z0-9-]+/[a-z0-9-]+$", var.artifact_repository))
    error_message = "Want LOCATION-docker.pkg.dev/PROJECT/REPOSITORY."
  }
}

variable "service_account" {
  description = "The runtime account the inventory names (service_account): created when it is in the workload's project, else it must exist. Empty: crun-<name> is created."
  type        = string
  default     = ""
}

variable "gitlab_project_id" {
  description = "The GitLab project whose CI deploys and runs the workload (inventory project_id)."
  type        = string
}

variable "ci_principal_prefix" {
  description = "principalSet://iam.googleapis.com/<workload identity pool name> (platform output)."
  type        = string
}

variable "platform_project" {
  description = "The platform project (push subscriptions)."
  type        = string
}

variable "deploy_function_uri" {
  description = "URI of the deploy function."
  type        = string
}

variable "trigger_function_uri" {
  description = "URI of the trigger function."
  type        = string
}

variable "push_service_account" {
  description = "E-mail of the push identity of the subscriptions."
  type        = string
}

variable "pubsub_service_agent" {
  description = "E-mail of the platform project's Pub/Sub service agent."
  type        = string
}

variable "dead_letter_topics" {
  description = "Full ids of the deploy and trigger functions' dead-letter topics."
  type        = object({ deploy = string, trigger = string })
}

variable "deploy_service_account" {
  description = "E-mail of the deploy function's account, which sets the runtime account on the Cloud Run job."
  type        = string
}

variable "state_bucket" {
  description = "Name of the durable-state bucket."
  type        = string
}

variable "state_prefix" {
  description = "Object prefix of the durable state in the bucket."
  type        = string
}

variable "max_delivery_attempts" {
  description = "Deliveries of one message before it is dead-lettered."
  type        = number
  default     = 20
}

variable "labels" {
  description = "Labels on labelled resources."
  type        = map(string)
  default     = {}
}
