// Package runcontract holds the rules Cloud Run Admin v2 enforces on a job's fields: the
// environment variable names its container runtime contract reserves, the Google Cloud label
// syntax, and the documented length and count limits. The emulator (shared/emulator/cloudrun)
// refuses what breaks them as Cloud Run does, and the manifest checker (shared/manifest) and the
// run request checker (shared/platform) call the same functions, so a manifest or a run request
// that passes `runwayctl validate` is not refused later by Cloud Run. The package has no
// dependencies beyond the standard library.
//
// Sources: the container runtime contract (cloud.google.com/run/docs/container-contract,
// environment variables), Cloud Run's "Configure environment variables" page (at most 1000 per
// container), the Cloud Run v2 protos (EnvVar name and value at most 32768 characters and
// bytes; container name a DNS label; annotations follow Kubernetes' rules, at most 256 KiB
// together), and Resource Manager's label requirements
// (cloud.google.com/resource-manager/docs/creating-managing-labels: at most 64 labels; keys
// 1–63 characters of lowercase letters, digits, '_' and '-', starting with a lowercase letter,
// international characters allowed; values 0–63 of the same characters).
package runcontract

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Limits Cloud Run documents for a job's fields.
const (
	MaxLabels         = 64        // labels per resource
	MaxLabelKeyLen    = 63        // characters of a label key
	MaxLabelValueLen  = 63        // characters of a label value
	MaxEnvVars        = 1000      // environment variables per container
	MaxEnvNameLen     = 32768     // characters of an environment variable name
	MaxEnvValueBytes  = 32768     // bytes of an environment variable value
	MaxContainerName  = 63        // characters of a container name (a DNS label)
	MaxAnnotationSize = 256 << 10 // bytes of a resource's annotation keys and values together (Kubernetes' limit)
	reservedEnvSuffix = "These values are automatically set by the system."
)

// TerminationGrace is how long Cloud Run waits, after sending SIGTERM to a task attempt that
// timed out or was cancelled, before it sends SIGKILL (the container contract's 10 seconds).
const TerminationGrace = 10 * time.Second

// reservedEnv are the names the container runtime contract sets in every container: the
// services' (PORT, K_*), the jobs' (CLOUD_RUN_*) and the worker pools'.
var reservedEnv = []string{
	"PORT", "K_SERVICE", "K_REVISION", "K_CONFIGURATION",
	"CLOUD_RUN_JOB", "CLOUD_RUN_EXECUTION", "CLOUD_RUN_TASK_INDEX", "CLOUD_RUN_TASK_ATTEMPT", "CLOUD_RUN_TASK_COUNT",
	"CLOUD_RUN_WORKER_POOL", "CLOUD_RUN_WORKER_POOL_REVISION",
}

// ReservedEnv returns the environment variable names Cloud Run sets itself and refuses to set.
func ReservedEnv() []string { return slices.Clone(reservedEnv) }

// IsReservedEnv reports whether Cloud Run refuses name as an environment variable.
func IsReservedEnv(name string) bool { return slices.Contains(reservedEnv, name) }

// ReservedEnvMessage is Cloud Run's refusal of the reserved names among names ("" if none):
// "The following reserved env names were provided: PORT, CLOUD_RUN_JOB. These values are
// automatically set by the system."
func ReservedEnvMessage(names []string) string {
	var got []string
	for _, n := range names {
		if IsReservedEnv(n) && !slices.Contains(got, n) {
			got = append(got, n)
		}
	}
	if len(got) == 0 {
		return ""
	}
	return "The following reserved env names were provided: " + strings.Join(got, ", ") + ". " + reservedEnvSuffix
}

// The expressions are compiled on first use, not at init: their Unicode classes cost ~0.5 ms
// and 320 KB in every function's cold start, and most events never check a label.
var (
	// Google's own expressions (they appear in its refusals): a key starts with a lowercase or
	// caseless letter; keys and values hold lowercase or caseless letters, digits, '_' and '-'.
	labelKey   = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[\p{Ll}\p{Lo}][\p{Ll}\p{Lo}\p{N}_-]*$`) })
	labelValue = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[\p{Ll}\p{Lo}\p{N}_-]*$`) })
)

// LabelKeyProblem says why k is not a valid Google Cloud label key, or "" if it is.
func LabelKeyProblem(k string) string {
	if !utf8.ValidString(k) || utf8.RuneCountInString(k) > MaxLabelKeyLen || !labelKey().MatchString(k) {
		return fmt.Sprintf("Label key '%s' violates format constraints. The key must start with a lowercase character, can only contain lowercase letters, numeric characters, underscores and dashes. The key can be at most %d characters long. International characters are allowed.", clip(k), MaxLabelKeyLen)
	}
	return ""
}

// LabelValueProblem says why v is not a valid Google Cloud label value, or "" if it is.
func LabelValueProblem(v string) string {
	if !utf8.ValidString(v) || utf8.RuneCountInString(v) > MaxLabelValueLen || !labelValue().MatchString(v) {
		return fmt.Sprintf("Label value '%s' violates format constraints. The value can only contain lowercase letters, numeric characters, underscores and dashes. The value can be at most %d characters long. International characters are allowed.", clip(v), MaxLabelValueLen)
	}
	return ""
}

// LabelsProblem says why labels break Google Cloud's label rules (too many, or the first
// invalid key or value in key order), or "" if they don't.
func LabelsProblem(labels map[string]string) string {
	if len(labels) > MaxLabels {
		return fmt.Sprintf("%d labels were provided; a resource can have at most %d.", len(labels), MaxLabels)
	}
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if p := LabelKeyProblem(k); p != "" {
			return p
		}
		if p := LabelValueProblem(labels[k]); p != "" {
			return p
		}
	}
	return ""
}

// AnnotationsProblem says why annotations are too large, or "" if they are not.
func AnnotationsProblem(annotations map[string]string) string {
	n := 0
	for k, v := range annotations {
		n += len(k) + len(v)
	}
	if n > MaxAnnotationSize {
		return fmt.Sprintf("The annotations are %d bytes long; they must have at most %d bytes.", n, MaxAnnotationSize)
	}
	return ""
}

// dnsLabel is RFC 1123's label, which Cloud Run requires of a container name.
var dnsLabel = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`) })

// ContainerNameProblem says why name can't name a container, or "" if it can ("" is allowed:
// Cloud Run names the container itself).
func ContainerNameProblem(name string) string {
	if name == "" || len(name) <= MaxContainerName && dnsLabel().MatchString(name) {
		return ""
	}
	return fmt.Sprintf("Container name '%s' is not a valid DNS label (RFC 1123): at most %d lowercase letters, digits and hyphens, starting and ending with a letter or digit.", clip(name), MaxContainerName)
}

// EnvProblem says why an environment variable name and value break Cloud Run's limits, or "" if
// they don't. Reserved names are reported by ReservedEnvMessage, all at once, as Cloud Run does.
func EnvProblem(name, value string) string {
	switch {
	case name == "":
		return "Environment variable name must not be empty."
	case len(name) > MaxEnvNameLen:
		return fmt.Sprintf("Environment variable name '%s' is %d characters long; at most %d are allowed.", clip(name), len(name), MaxEnvNameLen)
	case strings.ContainsAny(name, "=\x00"):
		return fmt.Sprintf("Environment variable name '%s' must not contain '=' or a NUL character.", clip(name))
	case len(value) > MaxEnvValueBytes:
		return fmt.Sprintf("The value of environment variable '%s' is %d bytes long; at most %d are allowed.", clip(name), len(value), MaxEnvValueBytes)
	}
	return ""
}

// clip bounds what a refusal quotes back.
func clip(s string) string {
	const max = 100
	if len(s) <= max {
		return s
	}
	i := max
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}
