variable "name" {
  description = "Subscription name (in the platform project)."
  type        = string
}

variable "project" {
  description = "The platform project, where the subscription lives (so that the push is internal to the functions' project)."
  type        = string
}

variable "topic_project" {
  description = "Project of the topic the function serves (a workload project, or the platform project for the tick)."
  type        = string
}

variable "topic" {
  description = "Name of that topic (runway-deploy-<w>, runway-trigger-<w>, gcr, runway-monitor-tick)."
  type        = string
}

variable "function_uri" {
  description = "HTTPS URI of the function (google_cloudfunctions2_function.service_config[0].uri)."
  type        = string
}

variable "push_service_account" {
  description = "E-mail of the account whose OIDC token authenticates each push (the functions' only invoker)."
  type        = string
}

variable "pubsub_service_agent" {
  description = "E-mail of the platform project's Pub/Sub service agent, which forwards dead letters."
  type        = string
}

variable "dead_letter_topic" {
  description = "Full id (projects/P/topics/T) of the function's dead-letter topic."
  type        = string
}

variable "max_delivery_attempts" {
  description = "Deliveries before a message goes to the dead-letter topic."
  type        = number
  default     = 20
}

variable "ack_deadline_seconds" {
  description = "How long a push may take; at least the function's timeout."
  type        = number
  default     = 600
}

variable "labels" {
  description = "Labels of the subscription."
  type        = map(string)
  default     = {}
}
