package emulator_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	run "cloud.google.com/go/run/apiv2"
	"cloud.google.com/go/run/apiv2/runpb"
	scheduler "cloud.google.com/go/scheduler/apiv1"
	"cloud.google.com/go/scheduler/apiv1/schedulerpb"
	"github.com/googleapis/gax-go/v2/apierror"
	mrest "google.golang.org/api/monitoring/v3"
	"google.golang.org/grpc/codes"

	"runwayjobs.dev/shared/emulator"
	"runwayjobs.dev/shared/emulator/emulatortest"
	"runwayjobs.dev/shared/emulator/fault"
	"runwayjobs.dev/shared/emulator/iam"
	"runwayjobs.dev/shared/emulator/rest"
	"runwayjobs.dev/shared/gcp"
)

// TestRESTOnTheEmulatorPort drives the emulator's own address with the official REST clients
// of Cloud Run, Cloud Scheduler and Cloud Monitoring, and sees the fault injector and the IAM
// deny rules apply to REST calls as to gRPC ones.
func TestRESTOnTheEmulatorPort(t *testing.T) {
	e := emulatortest.Start(t, emulator.Options{OpDelay: 10 * time.Millisecond})
	ctx := ctxT(t)
	opts := rest.ClientOptions(e.Addr())
	jobs, err := run.NewJobsRESTClient(ctx, opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer jobs.Close()
	op, err := jobs.CreateJob(ctx, &runpb.CreateJobRequest{Parent: parent, JobId: "rest", Job: &runpb.Job{
		Template: &runpb.ExecutionTemplate{Template: &runpb.TaskTemplate{Containers: []*runpb.Container{{Image: "us-docker.pkg.dev/p/r/img:1", Command: []string{"true"}}}}},
	}})
	if err != nil {
		t.Fatalf("CreateJob over REST: %v", err)
	}
	job, err := op.Wait(ctx)
	if err != nil {
		t.Fatalf("CreateJob over REST: Wait: %v", err)
	}
	if got, err := jobs.GetJob(ctx, &runpb.GetJobRequest{Name: job.Name}); err != nil || got.Uid != job.Uid {
		t.Fatalf("GetJob over REST = %v, %v", got, err)
	}

	sched, err := scheduler.NewCloudSchedulerRESTClient(ctx, opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer sched.Close()
	if _, err := sched.CreateJob(ctx, &schedulerpb.CreateJobRequest{Parent: parent, Job: &schedulerpb.Job{
		Name: parent + "/jobs/rest", Schedule: "0 0 1 1 *",
		Target: &schedulerpb.Job_HttpTarget{HttpTarget: &schedulerpb.HttpTarget{Uri: "http://" + e.Addr() + "/v2/" + job.Name + ":run"}},
	}}); err != nil {
		t.Fatalf("scheduler CreateJob over REST: %v", err)
	}

	mon, err := mrest.NewService(ctx, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if d, err := mon.Projects.MonitoredResourceDescriptors.Get("projects/" + project + "/monitoredResourceDescriptors/cloud_run_job").Context(ctx).Do(); err != nil || d.Type != "cloud_run_job" {
		t.Fatalf("monitoring GetMonitoredResourceDescriptor over REST = %v, %v", d, err)
	}

	if err := e.Faults().Add(fault.Rule{Method: "/google.cloud.run.v2.Jobs/GetJob", Code: codes.Aborted, Times: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := jobs.GetJob(ctx, &runpb.GetJobRequest{Name: job.Name}); rest.StatusOf(err).Code() != codes.Aborted {
		t.Errorf("GetJob over REST with a fault = %v, want ABORTED", err)
	}
	if err := e.IAM().Deny(iam.Rule{Permissions: []string{"run.jobs.get"}, Resource: job.Name}); err != nil {
		t.Fatal(err)
	}
	_, err = jobs.GetJob(ctx, &runpb.GetJobRequest{Name: job.Name})
	var ae *apierror.APIError
	if !errors.As(err, &ae) || ae.HTTPCode() != http.StatusForbidden || rest.StatusOf(err).Code() != codes.PermissionDenied || ae.Reason() != "IAM_PERMISSION_DENIED" {
		t.Errorf("GetJob over REST when denied = %v, want 403 PERMISSION_DENIED with reason IAM_PERMISSION_DENIED", err)
	}

	// curl's view: lowerCamel JSON, Google's error shape.
	resp, err := http.Get("http://" + e.Addr() + "/v2/" + parent + "/jobs/absent")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(body), `"status": "NOT_FOUND"`) && !strings.Contains(string(body), `"status":"NOT_FOUND"`) {
		t.Errorf("GET a missing job = %s %s, want 404 NOT_FOUND", resp.Status, body)
	}
}

// BenchmarkGetJobTransports measures one GetJob through the official clients on the
// emulator's port: gRPC, then REST (HTTP/1.1 JSON, transcoded and sent over the in-memory gRPC
// connection), so that the transcoder's share is the difference.
func BenchmarkGetJobTransports(b *testing.B) {
	e := emulatortest.Start(b, emulator.Options{OpDelay: time.Millisecond})
	ctx := context.Background()
	grpcJobs, err := run.NewJobsClient(ctx, gcp.Config{EmulatorHost: e.Addr()}.Options()...)
	if err != nil {
		b.Fatal(err)
	}
	defer grpcJobs.Close()
	restJobs, err := run.NewJobsRESTClient(ctx, rest.ClientOptions(e.Addr())...)
	if err != nil {
		b.Fatal(err)
	}
	defer restJobs.Close()
	op, err := grpcJobs.CreateJob(ctx, &runpb.CreateJobRequest{Parent: parent, JobId: "bench", Job: &runpb.Job{
		Template: &runpb.ExecutionTemplate{Template: &runpb.TaskTemplate{Containers: []*runpb.Container{{Image: "img", Command: []string{"true"}}}}},
	}})
	if err != nil {
		b.Fatal(err)
	}
	job, err := op.Wait(ctx)
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		client *run.JobsClient
	}{{name: "grpc", client: grpcJobs}, {name: "rest", client: restJobs}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := c.client.GetJob(ctx, &runpb.GetJobRequest{Name: job.Name}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
