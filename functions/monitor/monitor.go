// Package monitor is the Runway Jobs monitor function: on every tick (Cloud Scheduler →
// Pub/Sub → Eventarc, every minute) it reads the Cloud Run job metrics of every project of the
// inventory with a constant number of Cloud Monitoring calls, compares them and the jobs'
// executions with the schedules the deploy function wrote on the jobs, and alerts the owners
// once per change: failed, missed, skipped, late, hung and flaky runs, and recoveries.
//
// Eventarc delivers the tick to it as a CloudEvent through functions-framework-go; the Cloud
// Functions Go buildpack builds this folder on its own, so the package sits at the module
// root and is not package main (the local main is under cmd/monitor). The evaluation itself is
// the pure package detect; this package does the I/O around it (see handler.go for how each
// alert is sent exactly once).
package monitor

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"sync"

	pubsub "cloud.google.com/go/pubsub/v2/apiv1"
	"github.com/GoogleCloudPlatform/functions-framework-go/functions"
	cloudevent "github.com/cloudevents/sdk-go/v2/event"
	"github.com/rs/zerolog"
	"google.golang.org/api/option"
	htransport "google.golang.org/api/transport/http"

	"runwayjobs.dev/shared/event"
	"runwayjobs.dev/shared/gcp"
	"runwayjobs.dev/shared/gcp/monitorclients"
	"runwayjobs.dev/shared/inventory"
	"runwayjobs.dev/shared/logging"
	"runwayjobs.dev/shared/notify"
	"runwayjobs.dev/shared/state"
)

// FunctionName is the target the function is registered as (FUNCTION_TARGET).
const FunctionName = "Monitor"

func init() {
	functions.CloudEvent(FunctionName, Monitor)
}

// New builds the Handler of cfg: it loads the inventory, opens the store, dials the Cloud Run
// jobs and executions, the Cloud Monitoring and the Cloud Scheduler clients (the Scheduler job
// says why a slot got no execution), and builds the alert channels of cfg.ChannelsPath.
func New(ctx context.Context, cfg Config, log zerolog.Logger) (*Handler, error) {
	inv, err := inventory.Open(ctx, cfg.Inventory, cfg.GCP)
	if err != nil {
		return nil, fmt.Errorf("monitor: %w", err)
	}
	store, err := state.Open(ctx, cfg.State, cfg.GCP)
	if err != nil {
		return nil, fmt.Errorf("monitor: %w", err)
	}
	cl, err := monitorclients.Dial(ctx, cfg.GCP, gcp.Jobs|gcp.Executions|gcp.Metrics|gcp.Scheduler)
	if err != nil {
		return nil, fmt.Errorf("monitor: %w", err)
	}
	return assemble(ctx, cfg, cl, store, inv, cfg.GCP.Clock(), log)
}

// fromEnv builds the instance's Handler once, on the first tick.
var fromEnv = sync.OnceValues(func() (*Handler, error) {
	cfg, err := ConfigFromEnv(os.LookupEnv)
	if err != nil {
		return nil, err
	}
	return New(context.Background(), cfg, logging.New(os.Stdout, "monitor", zerolog.InfoLevel))
})

// Monitor is the CloudEvent entry point: it acknowledges what succeeded or can never succeed
// and returns the error of what may succeed on redelivery.
func Monitor(ctx context.Context, e cloudevent.Event) error {
	h, err := fromEnv()
	if err != nil {
		return err // misconfigured: keep the tick until the function is fixed
	}
	return event.Result(h.Handle(ctx, e))
}

// secretManager returns the Secret Manager reader for {secret_manager: …} references: an
// authorised client in production, none with the emulator (there is no Secret Manager there).
func secretManager(cfg Config) *notify.SecretManager {
	if cfg.GCP.EmulatorHost != "" {
		return nil
	}
	return &notify.SecretManager{Client: lazyClient()}
}

// lazyClient is an HTTP client that finds Application Default Credentials on first use, so that
// a configuration without Secret Manager references never needs them.
func lazyClient() *http.Client {
	var once sync.Once
	var client *http.Client
	var err error
	return &http.Client{Transport: roundTripper(func(r *http.Request) (*http.Response, error) {
		once.Do(func() {
			client, _, err = htransport.NewClient(context.Background(), option.WithScopes("https://www.googleapis.com/auth/cloud-platform"))
		})
		if err != nil {
			return nil, fmt.Errorf("secret manager credentials: %w", err)
		}
		return client.Do(r)
	})}
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// pubsubFor returns the publisher of pubsub channels, built on first use (the functions
// publish nothing else, so New does not dial one). The generated publisher client is not
// bound to a project (each channel's topic names its own), so one serves every project.
func pubsubFor(ctx context.Context, cfg Config) func(project string) (notify.Publisher, error) {
	var built *pubsub.TopicAdminClient
	return func(string) (notify.Publisher, error) {
		if built != nil {
			return built, nil
		}
		cl, err := pubsub.NewTopicAdminClient(ctx, cfg.GCP.Options()...)
		if err != nil {
			return nil, fmt.Errorf("pubsub.NewTopicAdminClient: %w", err)
		}
		built = cl
		return cl, nil
	}
}
