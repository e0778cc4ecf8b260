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
	"strings"
	"sync"

	"cloud.google.com/go/pubsub/v2"
	"github.com/GoogleCloudPlatform/functions-framework-go/functions"
	cloudevent "github.com/cloudevents/sdk-go/v2/event"
	"github.com/rs/zerolog"
	"google.golang.org/api/option"
	htransport "google.golang.org/api/transport/http"

	"runwayjobs.dev/shared/event"
	"runwayjobs.dev/shared/gcp"
	"runwayjobs.dev/shared/inventory"
	"runwayjobs.dev/shared/logging"
	"runwayjobs.dev/shared/notify"
	"runwayjobs.dev/shared/state"
)

// FunctionName is the target the function is registered as (FUNCTION_TARGET).
const FunctionName = "Monitor"

var log = logging.New(os.Stdout, "monitor", zerolog.InfoLevel)

func init() {
	functions.CloudEvent(FunctionName, Monitor)
}

// handler is built once per instance, from the environment, on the first tick.
var handler = sync.OnceValues(func() (*Handler, error) {
	return FromEnv(context.Background(), os.LookupEnv)
})

// FromEnv builds a Handler from the configuration lookup reads.
func FromEnv(ctx context.Context, lookup func(string) (string, bool)) (*Handler, error) {
	cfg, err := ConfigFromLookup(lookup)
	if err != nil {
		return nil, err
	}
	inv, err := inventory.Open(ctx, cfg.InventoryPath, gcp.Config{EmulatorHost: cfg.EmulatorHost})
	if err != nil {
		return nil, fmt.Errorf("inventory %s: %w", cfg.InventoryPath, err)
	}
	store, err := state.Open(cfg.StateURL)
	if err != nil {
		return nil, err
	}
	project := ""
	if jobs := inv.Jobs(); len(jobs) > 0 {
		project = jobs[0].GCPProject
	}
	clients, err := gcp.Dial(ctx, gcp.Config{EmulatorHost: cfg.EmulatorHost, Project: project})
	if err != nil {
		return nil, err
	}
	return New(cfg, clients, store, inv, gcp.Config{EmulatorHost: cfg.EmulatorHost}.Clock())
}

// Monitor handles one tick. The tick's content does not matter: every tick evaluates
// everything up to now, so a redelivered or duplicated tick does nothing twice.
func Monitor(ctx context.Context, e cloudevent.Event) error {
	if _, err := event.Decode(e); err != nil {
		log.Error().Err(err).Str("event_id", e.ID()).Msg("not a tick")
		return event.Result(err)
	}
	h, err := handler()
	if err != nil {
		log.Error().Err(err).Msg("monitor is not configured")
		return event.Result(err)
	}
	st, err := h.tick(ctx)
	ev := log.Info()
	if err != nil {
		ev = log.Error().Err(err)
	}
	ev.Str("event_id", e.ID()).Int("projects", st.Projects).Int("jobs", st.Jobs).Int("alerts", st.Alerts).Int("delivered", st.Delivered).Msg("tick")
	return event.Result(err)
}

// secretManager returns the Secret Manager reader for {secret_manager: …} references: an
// authorised client in production, none with the emulator (there is no Secret Manager there).
func secretManager(cfg Config) *notify.SecretManager {
	if cfg.EmulatorHost != "" {
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

// pubsubFor returns the Pub/Sub clients of pubsub channels: the dialled one for its project,
// others built the same way.
func pubsubFor(cfg Config, clients *gcp.Clients) func(project string) (*pubsub.Client, error) {
	return func(project string) (*pubsub.Client, error) {
		if clients != nil && clients.PubSub != nil && strings.EqualFold(clients.PubSub.Project(), project) {
			return clients.PubSub, nil
		}
		c := gcp.Config{EmulatorHost: cfg.EmulatorHost, Project: project}
		return pubsub.NewClient(context.Background(), project, c.Options()...)
	}
}
