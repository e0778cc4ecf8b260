// Package gcp builds the official Google Cloud clients that every Runway Jobs function and
// runwayctl use: Cloud Run Admin v2 (jobs, executions, tasks) and Cloud Scheduler v1, each only
// when asked for, and the Cloud Storage JSON API client (storage.go). Cloud Monitoring v3 is in
// the package monitorclients (the monitor's), the Pub/Sub client library in allclients
// (runwayctl's and the tests'): the deploy and trigger functions import neither, the monitor
// only monitorclients. Nothing links cloud.google.com/go/storage (it brings gRPC's xDS and
// OpenTelemetry's SDK).
// In production the clients use Application Default Credentials; when
// RUNWAY_EMULATOR_HOST=host:port is set they talk to `runwayctl emulator` instead, without
// authentication (plain-text gRPC, plain HTTP for Cloud Storage). There is no other way to
// reach either world, so no code path exists only for tests.
package gcp

import (
	"context"
	"errors"
	"fmt"
	"slices"

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

// Service names one official client; Dial builds the ones its mask holds.
type Service uint

// The clients Dial, monitorclients.Dial and allclients.Dial build. Metrics is built by
// monitorclients and allclients, PubSub by allclients only, so that a caller of gcp alone (the
// deploy and trigger functions) neither links nor dials Cloud Monitoring and Pub/Sub.
const (
	Jobs Service = 1 << iota
	Executions
	Tasks
	Scheduler
	Metrics
	PubSub

	// Control is every client Dial builds: Cloud Run Admin and Cloud Scheduler.
	Control = Jobs | Executions | Tasks | Scheduler
	// All is every client allclients.Dial builds.
	All = Control | Metrics | PubSub
)

// Clients holds the Cloud Run Admin and Cloud Scheduler clients that were asked for; the
// others are nil.
type Clients struct {
	Jobs       *run.JobsClient
	Executions *run.ExecutionsClient
	Tasks      *run.TasksClient
	Scheduler  *scheduler.CloudSchedulerClient

	// borrowed are the Cloud Run clients built over another's connection: Close leaves them
	// to the owner (closing one closes the connection).
	borrowed Service
}

// Dial builds the clients of want (Metrics and PubSub are refused: allclients builds those).
// The Cloud Run clients share one connection (one service, one endpoint): the second and third
// neither look up credentials nor connect again, and their first call pays no TLS handshake.
// On error, the clients already built are closed.
func Dial(ctx context.Context, c Config, want Service) (*Clients, error) {
	if want&^Control != 0 {
		return nil, fmt.Errorf("gcp.Dial: services %b are not Cloud Run or Cloud Scheduler (use allclients.Dial)", want&^Control)
	}
	opts := c.Options()
	cl := &Clients{}
	fail := func(name string, e error) (*Clients, error) {
		cl.Close()
		return nil, fmt.Errorf("gcp.Dial %s: %w", name, e)
	}
	// runConn is the connection of the first Cloud Run client built, which the others reuse.
	var runConn *grpc.ClientConn
	runOpts := func(s Service) []option.ClientOption {
		if runConn == nil {
			return opts
		}
		cl.borrowed |= s
		return append(slices.Clip(opts), option.WithGRPCConn(runConn))
	}
	var err error
	if want&Jobs != 0 {
		if cl.Jobs, err = run.NewJobsClient(ctx, runOpts(Jobs)...); err != nil {
			return fail("run.NewJobsClient", err)
		}
		runConn = cl.Jobs.Connection() // one connection: the pool's size is 1
	}
	if want&Executions != 0 {
		if cl.Executions, err = run.NewExecutionsClient(ctx, runOpts(Executions)...); err != nil {
			return fail("run.NewExecutionsClient", err)
		}
		runConn = cl.Executions.Connection()
	}
	if want&Tasks != 0 {
		if cl.Tasks, err = run.NewTasksClient(ctx, runOpts(Tasks)...); err != nil {
			return fail("run.NewTasksClient", err)
		}
	}
	if want&Scheduler != 0 {
		if cl.Scheduler, err = scheduler.NewCloudSchedulerClient(ctx, opts...); err != nil {
			return fail("scheduler.NewCloudSchedulerClient", err)
		}
	}
	return cl, nil
}

// Close closes every client that was built, and their connections.
func (cl *Clients) Close() error {
	var errs []error
	if cl.Jobs != nil && cl.borrowed&Jobs == 0 {
		errs = append(errs, cl.Jobs.Close())
	}
	if cl.Executions != nil && cl.borrowed&Executions == 0 {
		errs = append(errs, cl.Executions.Close())
	}
	if cl.Tasks != nil && cl.borrowed&Tasks == 0 {
		errs = append(errs, cl.Tasks.Close())
	}
	if cl.Scheduler != nil {
		errs = append(errs, cl.Scheduler.Close())
	}
	return errors.Join(errs...)
}
