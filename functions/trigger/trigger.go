// Package trigger is the Runway Jobs trigger function: it starts Cloud Run job executions for
// on-demand run requests (published by `runwayctl run` from CI) and for scheduled-run requests
// (published by the workload's Cloud Scheduler job), with overrides, the job's concurrency
// policy, its starting deadline and suspension, and exactly one execution per request id or
// scheduled slot however often Pub/Sub delivers the message (see claim.go).
//
// Eventarc delivers the Pub/Sub messages of the per-workload trigger topics to it as CloudEvents
// through functions-framework-go; every outcome is recorded in the durable store, where
// `runwayctl run --wait` and the monitor read it. The Cloud Functions Go buildpack builds this
// folder on its own, so the package sits at the module root and is not package main (the local
// main is under cmd/trigger).
package trigger

import (
	"context"
	"fmt"
	"os"
	"sync"

	"github.com/GoogleCloudPlatform/functions-framework-go/functions"
	cloudevent "github.com/cloudevents/sdk-go/v2/event"
	"github.com/rs/zerolog"

	"runwayjobs.dev/shared/event"
	"runwayjobs.dev/shared/gcp"
	"runwayjobs.dev/shared/inventory"
	"runwayjobs.dev/shared/logging"
	"runwayjobs.dev/shared/platform"
	"runwayjobs.dev/shared/state"
)

// FunctionName is the target the function is registered as (FUNCTION_TARGET).
const FunctionName = "Trigger"

func init() {
	functions.CloudEvent(FunctionName, Trigger)
}

// Config is the function's configuration, read from the environment.
type Config = platform.FunctionConfig

// ConfigFromEnv reads the Config through lookup (os.LookupEnv in production; tests pass a
// map's lookup).
func ConfigFromEnv(lookup func(string) (string, bool)) (Config, error) {
	return platform.FunctionConfigFromEnv("trigger", lookup)
}

// New builds the Handler of cfg: it loads the inventory, opens the store and dials the Cloud
// Run jobs and executions clients, the only ones trigger calls.
func New(ctx context.Context, cfg Config, log zerolog.Logger) (*Handler, error) {
	inv, err := inventory.Open(ctx, cfg.Inventory, cfg.GCP)
	if err != nil {
		return nil, fmt.Errorf("trigger: %w", err)
	}
	store, err := state.Open(ctx, cfg.State, cfg.GCP)
	if err != nil {
		return nil, fmt.Errorf("trigger: %w", err)
	}
	cl, err := gcp.Dial(ctx, cfg.GCP, gcp.Jobs|gcp.Executions)
	if err != nil {
		return nil, fmt.Errorf("trigger: %w", err)
	}
	h := newHandler(cl, store, inv, cfg.GCP.Clock(), log)
	if cfg.GCP.EmulatorHost != "" {
		h = h.WithTiming(LocalTiming)
	}
	return h, nil
}

// fromEnv builds the instance's Handler once, on the first event.
var fromEnv = sync.OnceValues(func() (*Handler, error) {
	cfg, err := ConfigFromEnv(os.LookupEnv)
	if err != nil {
		return nil, err
	}
	return New(context.Background(), cfg, logging.New(os.Stdout, "trigger", zerolog.InfoLevel))
})

// Trigger is the CloudEvent entry point: it acknowledges what succeeded or can never succeed
// and returns the error of what may succeed on redelivery.
func Trigger(ctx context.Context, e cloudevent.Event) error {
	h, err := fromEnv()
	if err != nil {
		return err // misconfigured: keep the message until the function is fixed
	}
	return event.Result(h.Handle(ctx, e))
}
