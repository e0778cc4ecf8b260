# The inventory's job workloads: one job-project per GCP project that runs jobs, one
# job-workload per job. Onboarding a workload is adding its inventory entry and applying.

module "job_project" {
  source                    = "../modules/job-project"
  for_each                  = local.job_projects
  project                   = each.key
  platform_project          = var.project
  gitlab_project_ids        = distinct([for w in each.value : tostring(w.project_id)])
  ci_principal_prefix       = local.ci_principal_prefix
  function_service_accounts = { for k, sa in google_service_account.function : k => sa.email }
  deploy_function_uri       = google_cloudfunctions2_function.function["deploy"].service_config[0].uri
  push_service_account      = google_service_account.push.email
  pubsub_service_agent      = local.pubsub_service_agent
  deploy_dead_letter_topic  = google_pubsub_topic.dead_letter["deploy"].id
  max_delivery_attempts     = var.max_delivery_attempts
  labels                    = var.labels
}

module "job_workload" {
  source                 = "../modules/job-workload"
  for_each               = local.jobs
  name                   = each.key
  project                = each.value.gcp_project
  artifact_repository    = each.value.artifact_repository
  service_account        = try(each.value.service_account, "")
  gitlab_project_id      = tostring(each.value.project_id)
  ci_principal_prefix    = local.ci_principal_prefix
  platform_project       = var.project
  deploy_function_uri    = google_cloudfunctions2_function.function["deploy"].service_config[0].uri
  trigger_function_uri   = google_cloudfunctions2_function.function["trigger"].service_config[0].uri
  push_service_account   = google_service_account.push.email
  pubsub_service_agent   = local.pubsub_service_agent
  dead_letter_topics     = { deploy = google_pubsub_topic.dead_letter["deploy"].id, trigger = google_pubsub_topic.dead_letter["trigger"].id }
  deploy_service_account = google_service_account.function["deploy"].email
  state_bucket           = google_storage_bucket.state.name
  state_prefix           = var.state_prefix
  max_delivery_attempts  = var.max_delivery_attempts
  labels                 = var.labels

  depends_on = [module.job_project]
}
