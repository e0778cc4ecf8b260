package platform

import (
	"fmt"

	"runwayjobs.dev/shared/gcp"
	"runwayjobs.dev/shared/state"
)

// FunctionConfig is what the deploy and trigger functions read from their environment.
type FunctionConfig struct {
	// Inventory is inventory.yml (RUNWAY_INVENTORY): a path or gs://bucket/object.
	Inventory string
	// State is the durable store (RUNWAY_STATE): a directory, or gs://bucket/prefix.
	State string
	// GCP says which Google Cloud the clients talk to (RUNWAY_EMULATOR_HOST).
	GCP gcp.Config
}

// FunctionConfigFromEnv reads a FunctionConfig through lookup (os.LookupEnv in production;
// tests pass a map's lookup). component names the function in the error.
func FunctionConfigFromEnv(component string, lookup func(string) (string, bool)) (FunctionConfig, error) {
	get := func(k string) string { v, _ := lookup(k); return v }
	c := FunctionConfig{Inventory: get(EnvInventory), State: get(state.EnvVar)}
	// The functions publish nothing: the project only binds the (unused) Pub/Sub client.
	c.GCP = gcp.ConfigFromEnv(lookup, "runway")
	var missing []string
	if c.Inventory == "" {
		missing = append(missing, EnvInventory)
	}
	if c.State == "" {
		missing = append(missing, state.EnvVar)
	}
	if len(missing) > 0 {
		return c, fmt.Errorf("%s config: %v not set", component, missing)
	}
	return c, nil
}

// FunctionLDFlags are the linker flags the functions are built with: Cloud Functions' Go
// buildpack passes GOOGLE_GOLDFLAGS (infra/platform/functions.tf) to go build, and
// scripts/check-function and the e2e tests build the same binaries. No symbol table and no
// DWARF: deploy's binary 32.7 -> 22.9 MB, a smaller image to build and fetch; resident memory
// and cold start are unchanged (docs/benchmarks.md). Panics' stack traces and pprof read the
// pclntab, which stays.
const FunctionLDFlags = "-s -w"
