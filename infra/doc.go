// Package infra holds no production code: its tests check the Terraform under infra/ (it
// parses, is formatted as terraform fmt formats it, and every module's inputs, outputs and
// references agree), that the settings the functions read are exactly the ones the Terraform
// sets, cloudbuild.yaml, and the GitLab CI templates under ci/ against runwayctl's commands.
//
// It is a Go module of its own so that the Terraform tooling it needs (hashicorp/hcl,
// terraform-config-inspect) stays out of the modules that ship, and it sits beside the files it
// checks.
package infra
