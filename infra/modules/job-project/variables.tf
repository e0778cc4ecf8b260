variable "project" {
  description = "A GCP project that runs job workloads (an inventory gcp_project)."
  type        = string
}

variable "platform_project" {
  description = "The platform project (functions, push subscriptions)."
  type        = string
}

variable "gitlab_project_ids" {
  description = "GitLab project ids (inventory project_id) of the project's job workloads: their CI may read the project's jobs and executions."
  type        = list(string)
}

variable "ci_principal_prefix" {
  description = "principalSet://iam.googleapis.com/<workload identity pool name> (platform output)."
  type        = string
}

variable "function_service_accounts" {
  description = "E-mails of the functions' service accounts."
  type        = object({ deploy = string, trigger = string, monitor = string })
}

variable "deploy_function_uri" {
  description = "URI of the deploy function (receives the project's gcr notifications)."
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

variable "deploy_dead_letter_topic" {
  description = "Full id of the deploy function's dead-letter topic."
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
