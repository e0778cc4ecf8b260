// Package allclients builds, besides gcp's Cloud Run and Cloud Scheduler clients, the Cloud
// Monitoring v3 and Pub/Sub clients that the monitor function, runwayctl and the tests use. It
// is a package of its own so that the deploy and trigger functions, which import gcp alone,
// neither link nor dial those two.
package allclients

import (
	"context"
	"errors"
	"fmt"

	monitoring "cloud.google.com/go/monitoring/apiv3/v2"
	"cloud.google.com/go/pubsub/v2"

	"runwayjobs.dev/shared/gcp"
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
	base, err := gcp.Dial(ctx, c, want&gcp.Control)
	if err != nil {
		return nil, fmt.Errorf("allclients.Dial: %w", err)
	}
	cl := &Clients{Clients: base}
	fail := func(name string, e error) (*Clients, error) {
		cl.Close()
		return nil, fmt.Errorf("allclients.Dial %s: %w", name, e)
	}
	opts := c.Options()
	if want&gcp.Metrics != 0 {
		if cl.Metrics, err = monitoring.NewMetricClient(ctx, opts...); err != nil {
			return fail("monitoring.NewMetricClient", err)
		}
	}
	if want&gcp.PubSub != 0 {
		project := c.Project
		if project == "" {
			project = pubsub.DetectProjectID
			if c.EmulatorHost != "" {
				return fail("pubsub.NewClient", errors.New("a project is required with the emulator"))
			}
		}
		if cl.PubSub, err = pubsub.NewClient(ctx, project, opts...); err != nil {
			return fail("pubsub.NewClient", err)
		}
	}
	return cl, nil
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
