// Package allclients builds every client runwayctl and the tests use: monitorclients' (Cloud
// Run, Cloud Scheduler, Cloud Monitoring) and the Pub/Sub client library. It is a package of
// its own so that no function links the Pub/Sub library: deploy and trigger import gcp alone,
// the monitor monitorclients.
package allclients

import (
	"context"
	"errors"
	"fmt"

	monitoring "cloud.google.com/go/monitoring/apiv3/v2"
	"cloud.google.com/go/pubsub/v2"

	"runwayjobs.dev/shared/gcp"
	"runwayjobs.dev/shared/gcp/monitorclients"
)

// Clients holds the clients that were asked for; the others are nil.
type Clients struct {
	*gcp.Clients
	Metrics *monitoring.MetricClient
	PubSub  *pubsub.Client
}

// Dial builds the clients of want (gcp.All for every one). A Pub/Sub client is bound to
// c.Project, which the emulator requires. On error, the clients already built are closed.
func Dial(ctx context.Context, c gcp.Config, want gcp.Service) (*Clients, error) {
	mc, err := monitorclients.Dial(ctx, c, want&^gcp.PubSub)
	if err != nil {
		return nil, fmt.Errorf("allclients.Dial: %w", err)
	}
	cl := &Clients{Clients: mc.Clients, Metrics: mc.Metrics}
	fail := func(name string, e error) (*Clients, error) {
		cl.Close()
		return nil, fmt.Errorf("allclients.Dial %s: %w", name, e)
	}
	if want&gcp.PubSub != 0 {
		project := c.Project
		if project == "" {
			project = pubsub.DetectProjectID
			if c.EmulatorHost != "" {
				return fail("pubsub.NewClient", errors.New("a project is required with the emulator"))
			}
		}
		if cl.PubSub, err = pubsub.NewClient(ctx, project, c.Options()...); err != nil {
			return fail("pubsub.NewClient", err)
		}
	}
	return cl, nil
}

// MonitorClients returns the monitor's clients of cl (monitorclients.Set).
func (cl *Clients) MonitorClients() *monitorclients.Clients {
	return &monitorclients.Clients{Clients: cl.Clients, Metrics: cl.Metrics}
}

// Close closes every client that was built.
func (cl *Clients) Close() error {
	errs := []error{cl.Clients.Close()}
	if cl.Metrics != nil {
		errs = append(errs, cl.Metrics.Close())
	}
	if cl.PubSub != nil {
		errs = append(errs, cl.PubSub.Close())
	}
	return errors.Join(errs...)
}
