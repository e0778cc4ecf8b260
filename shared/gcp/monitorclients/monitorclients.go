// Package monitorclients builds the clients the monitor function reads Google Cloud through:
// gcp's Cloud Run and Cloud Scheduler clients and the Cloud Monitoring v3 metric client. It
// links no Pub/Sub client library: the monitor publishes its alerts through the generated
// publisher client (cloud.google.com/go/pubsub/v2/apiv1), and the Pub/Sub library with its
// batching scheduler and OpenCensus views costs 2.4 MiB of resident memory and ~1 ms in every
// cold start (allclients adds it for runwayctl and the tests).
package monitorclients

import (
	"context"
	"errors"
	"fmt"

	monitoring "cloud.google.com/go/monitoring/apiv3/v2"

	"runwayjobs.dev/shared/gcp"
)

// Clients holds the clients that were asked for; the others are nil.
type Clients struct {
	*gcp.Clients
	Metrics *monitoring.MetricClient
}

// Set is a set of clients that holds the monitor's: *Clients, and *allclients.Clients.
type Set interface {
	// MonitorClients returns the monitor's clients of the set.
	MonitorClients() *Clients
}

// MonitorClients returns cl itself.
func (cl *Clients) MonitorClients() *Clients { return cl }

// Dial builds the clients of want (gcp.PubSub is refused: allclients builds that one). On
// error, the clients already built are closed.
func Dial(ctx context.Context, c gcp.Config, want gcp.Service) (*Clients, error) {
	if want&gcp.PubSub != 0 {
		return nil, errors.New("monitorclients.Dial: Pub/Sub is built by allclients.Dial")
	}
	base, err := gcp.Dial(ctx, c, want&gcp.Control)
	if err != nil {
		return nil, fmt.Errorf("monitorclients.Dial: %w", err)
	}
	cl := &Clients{Clients: base}
	if want&gcp.Metrics != 0 {
		if cl.Metrics, err = monitoring.NewMetricClient(ctx, c.Options()...); err != nil {
			cl.Close()
			return nil, fmt.Errorf("monitorclients.Dial monitoring.NewMetricClient: %w", err)
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
	return errors.Join(errs...)
}
