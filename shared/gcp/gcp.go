// Package gcp builds the official Google Cloud clients that every Runway Jobs function and
// runwayctl use: Cloud Run Admin v2 (jobs, executions, tasks), Cloud Scheduler v1, Cloud
// Monitoring v3 and Pub/Sub. In production they use Application Default Credentials; when
// RUNWAY_EMULATOR_HOST=host:port is set they talk to `runwayctl emulator` instead, without
// authentication over plain-text gRPC. There is no other way to reach either world, so no code
// path exists only for tests.
package gcp

import (
	"context"
	"errors"
	"fmt"
	"os"

	monitoring "cloud.google.com/go/monitoring/apiv3/v2"
	"cloud.google.com/go/pubsub/v2"
	run "cloud.google.com/go/run/apiv2"
	scheduler "cloud.google.com/go/scheduler/apiv1"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// EmulatorHostEnv names the environment variable that points every client at the emulator.
const EmulatorHostEnv = "RUNWAY_EMULATOR_HOST"

// Config says which world the clients talk to.
type Config struct {
	// EmulatorHost is host:port of the emulator; empty means the real Google Cloud.
	EmulatorHost string
	// Project is the Google Cloud project Pub/Sub clients are bound to.
	Project string
}

// ConfigFromEnv reads RUNWAY_EMULATOR_HOST through lookup (os.LookupEnv in production; tests
// pass a map's lookup instead of changing the process environment).
func ConfigFromEnv(lookup func(string) (string, bool), project string) Config {
	host, _ := lookup(EmulatorHostEnv)
	return Config{EmulatorHost: host, Project: project}
}

// Options returns the client options for the configured world.
func (c Config) Options() []option.ClientOption {
	if c.EmulatorHost == "" {
		return nil // Application Default Credentials, default endpoints
	}
	return []option.ClientOption{
		option.WithEndpoint(c.EmulatorHost),
		option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())),
		option.WithTelemetryDisabled(),
	}
}

// Clients holds one of each official client.
type Clients struct {
	Jobs       *run.JobsClient
	Executions *run.ExecutionsClient
	Tasks      *run.TasksClient
	Scheduler  *scheduler.CloudSchedulerClient
	Metrics    *monitoring.MetricClient
	PubSub     *pubsub.Client
}

// Dial builds every client. On error, the clients already built are closed.
func Dial(ctx context.Context, c Config) (*Clients, error) {
	opts := c.Options()
	cl := &Clients{}
	var err error
	fail := func(name string, e error) (*Clients, error) {
		cl.Close()
		return nil, fmt.Errorf("gcp.Dial %s: %w", name, e)
	}
	if cl.Jobs, err = run.NewJobsClient(ctx, opts...); err != nil {
		return fail("run.NewJobsClient", err)
	}
	if cl.Executions, err = run.NewExecutionsClient(ctx, opts...); err != nil {
		return fail("run.NewExecutionsClient", err)
	}
	if cl.Tasks, err = run.NewTasksClient(ctx, opts...); err != nil {
		return fail("run.NewTasksClient", err)
	}
	if cl.Scheduler, err = scheduler.NewCloudSchedulerClient(ctx, opts...); err != nil {
		return fail("scheduler.NewCloudSchedulerClient", err)
	}
	if cl.Metrics, err = monitoring.NewMetricClient(ctx, opts...); err != nil {
		return fail("monitoring.NewMetricClient", err)
	}
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
	return cl, nil
}

// Close closes every client that was built.
func (cl *Clients) Close() error {
	var errs []error
	for _, c := range []interface{ Close() error }{cl.Jobs, cl.Executions, cl.Tasks, cl.Scheduler, cl.Metrics, cl.PubSub} {
		if c != nil && !isNil(c) {
			errs = append(errs, c.Close())
		}
	}
	return errors.Join(errs...)
}

func isNil(c interface{ Close() error }) bool {
	switch v := c.(type) {
	case *run.JobsClient:
		return v == nil
	case *run.ExecutionsClient:
		return v == nil
	case *run.TasksClient:
		return v == nil
	case *scheduler.CloudSchedulerClient:
		return v == nil
	case *monitoring.MetricClient:
		return v == nil
	case *pubsub.Client:
		return v == nil
	}
	return false
}

// FromEnv is ConfigFromEnv with the process environment.
func FromEnv(project string) Config { return ConfigFromEnv(os.LookupEnv, project) }
