package deploy

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	run "cloud.google.com/go/run/apiv2"
	"cloud.google.com/go/run/apiv2/runpb"
	scheduler "cloud.google.com/go/scheduler/apiv1"
	"cloud.google.com/go/scheduler/apiv1/schedulerpb"
	"github.com/googleapis/gax-go/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"runwayjobs.dev/shared/desired"
	"runwayjobs.dev/shared/document"
	"runwayjobs.dev/shared/event"
	"runwayjobs.dev/shared/inventory"
	"runwayjobs.dev/shared/manifest"
	"runwayjobs.dev/shared/platform"
)

// jobsAPI is the part of the Cloud Run Jobs client the reconciler uses.
type jobsAPI interface {
	GetJob(context.Context, *runpb.GetJobRequest, ...gax.CallOption) (*runpb.Job, error)
	CreateJob(context.Context, *runpb.CreateJobRequest, ...gax.CallOption) (*run.CreateJobOperation, error)
	UpdateJob(context.Context, *runpb.UpdateJobRequest, ...gax.CallOption) (*run.UpdateJobOperation, error)
	DeleteJob(context.Context, *runpb.DeleteJobRequest, ...gax.CallOption) (*run.DeleteJobOperation, error)
}

// schedulerAPI is the part of the Cloud Scheduler client the reconciler uses.
type schedulerAPI interface {
	GetJob(context.Context, *schedulerpb.GetJobRequest, ...gax.CallOption) (*schedulerpb.Job, error)
	CreateJob(context.Context, *schedulerpb.CreateJobRequest, ...gax.CallOption) (*schedulerpb.Job, error)
	UpdateJob(context.Context, *schedulerpb.UpdateJobRequest, ...gax.CallOption) (*schedulerpb.Job, error)
	DeleteJob(context.Context, *schedulerpb.DeleteJobRequest, ...gax.CallOption) error
	PauseJob(context.Context, *schedulerpb.PauseJobRequest, ...gax.CallOption) (*schedulerpb.Job, error)
	ResumeJob(context.Context, *schedulerpb.ResumeJobRequest, ...gax.CallOption) (*schedulerpb.Job, error)
}

var (
	_ jobsAPI      = (*run.JobsClient)(nil)
	_ schedulerAPI = (*scheduler.CloudSchedulerClient)(nil)
)

// Result is what one reconcile did.
type Result struct {
	Outcome   string   // platform.DeployApplied, DeployUnchanged, DeployStale or DeployDeleted
	Changes   []string // the writes, e.g. "job: updated image, args"
	Job       string
	Scheduler string
}

// maxConflicts bounds the re-read-and-retry loop when another writer changes the job between
// our read and our write (etag mismatch, or a create racing ours).
const maxConflicts = 4

// Apply reconciles the workload to the request: it reads the Cloud Run job and the Cloud
// Scheduler job, renders the desired state, and writes only what differs. It is safe to call
// again with the same request; the second call writes nothing.
func (h *Handler) Apply(ctx context.Context, w inventory.Workload, req *platform.DeployRequest) (Result, error) {
	job, err := parseManifest(w.Name, req)
	if err != nil {
		return Result{}, event.Permanent(err)
	}
	region := desired.Region(job, w)
	name := platform.JobName(w.GCPProject, region, w.Name)
	var res Result
	for attempt := 1; ; attempt++ {
		res, err = h.applyOnce(ctx, w, req, job, name)
		if !conflict(err) || attempt == maxConflicts {
			break
		}
	}
	return res, err
}

func (h *Handler) applyOnce(ctx context.Context, w inventory.Workload, req *platform.DeployRequest, job *manifest.Job, name string) (Result, error) {
	res := Result{Job: name}
	got, err := h.jobs.GetJob(ctx, &runpb.GetJobRequest{Name: name})
	if err != nil && status.Code(err) != codes.NotFound {
		return res, classify("run.GetJob "+name, err)
	}
	if err != nil {
		got = nil
	}
	in := desired.Input{Job: job, Workload: w, Image: req.Image, Source: req.Source, ScheduleSince: h.now()}
	if got != nil {
		if !platform.IsManaged(got.Labels) {
			return res, event.Permanent(fmt.Errorf("Cloud Run job %s exists and is not managed by Runway: it is left alone", name))
		}
		// Never roll back: a request from an older pipeline than the applied one changes nothing.
		if applied, _ := strconv.ParseInt(got.Annotations[platform.AnnotationPipelineID], 10, 64); req.Source.PipelineID != 0 && applied > req.Source.PipelineID {
			res.Outcome = platform.DeployStale
			res.Changes = []string{fmt.Sprintf("pipeline %d is older than the applied pipeline %d: nothing changed", req.Source.PipelineID, applied)}
			return res, nil
		}
		in.Inherit(got)
	}
	want, err := desired.Render(in)
	if err != nil {
		return res, event.Permanent(err)
	}
	if want.Scheduler != nil {
		res.Scheduler = want.Scheduler.Name
	}
	// The Cloud Run job first: its scheduler must never fire for a job that does not exist.
	switch changes := jobChanges(want.Job, got); {
	case got == nil:
		if err := h.createJob(ctx, want); err != nil {
			return res, err
		}
		res.Changes = append(res.Changes, "job: created")
	case len(changes) > 0:
		if err := h.updateJob(ctx, want.Job, got.Etag); err != nil {
			return res, err
		}
		res.Changes = append(res.Changes, "job: updated "+joinFields(changes))
	}
	sch, err := h.reconcileScheduler(ctx, name, want)
	res.Changes = append(res.Changes, sch...)
	if err != nil {
		return res, err
	}
	res.Outcome = platform.DeployUnchanged
	if len(res.Changes) > 0 {
		res.Outcome = platform.DeployApplied
	}
	return res, nil
}

func jobChanges(want, got *runpb.Job) []string {
	if got == nil {
		return []string{"created"}
	}
	return desired.JobChanges(want, got)
}

func (h *Handler) createJob(ctx context.Context, want *desired.State) error {
	parent := "projects/" + want.Project + "/locations/" + want.Region
	op, err := h.jobs.CreateJob(ctx, &runpb.CreateJobRequest{Parent: parent, JobId: want.Workload, Job: withoutName(want.Job)})
	if err != nil {
		return classify("run.CreateJob "+want.Job.Name, err)
	}
	ctx, cancel := context.WithTimeout(ctx, h.opTimeout)
	defer cancel()
	if _, err := op.Wait(ctx); err != nil {
		return classify("run.CreateJob wait "+want.Job.Name, err)
	}
	return nil
}

func (h *Handler) updateJob(ctx context.Context, want *runpb.Job, etag string) error {
	j := withoutName(want)
	j.Name, j.Etag = want.Name, etag
	op, err := h.jobs.UpdateJob(ctx, &runpb.UpdateJobRequest{Job: j})
	if err != nil {
		return classify("run.UpdateJob "+want.Name, err)
	}
	ctx, cancel := context.WithTimeout(ctx, h.opTimeout)
	defer cancel()
	if _, err := op.Wait(ctx); err != nil {
		return classify("run.UpdateJob wait "+want.Name, err)
	}
	return nil
}

func withoutName(j *runpb.Job) *runpb.Job {
	c := proto.Clone(j).(*runpb.Job)
	c.Name = ""
	return c
}

// reconcileScheduler brings the Cloud Scheduler job in line: created, updated (only the
// fields that differ), paused or resumed, or deleted when the schedule was removed.
func (h *Handler) reconcileScheduler(ctx context.Context, name string, want *desired.State) ([]string, error) {
	got, err := h.sched.GetJob(ctx, &schedulerpb.GetJobRequest{Name: name})
	if err != nil && status.Code(err) != codes.NotFound {
		return nil, classify("scheduler.GetJob "+name, err)
	}
	exists := err == nil
	if exists && !desired.IsManagedScheduler(got) {
		return nil, event.Permanent(fmt.Errorf("Cloud Scheduler job %s exists and is not managed by Runway: it is left alone", name))
	}
	if want.Scheduler == nil {
		if !exists {
			return nil, nil
		}
		if err := h.sched.DeleteJob(ctx, &schedulerpb.DeleteJobRequest{Name: name}); err != nil && status.Code(err) != codes.NotFound {
			return nil, classify("scheduler.DeleteJob "+name, err)
		}
		return []string{"schedule: deleted"}, nil
	}
	var changes []string
	if !exists {
		parent := "projects/" + want.Project + "/locations/" + want.Region
		if got, err = h.sched.CreateJob(ctx, &schedulerpb.CreateJobRequest{Parent: parent, Job: want.Scheduler}); err != nil {
			return nil, classify("scheduler.CreateJob "+name, err)
		}
		changes = append(changes, "schedule: created")
	} else if mask := desired.SchedulerChanges(want.Scheduler, got); len(mask) > 0 {
		if got, err = h.sched.UpdateJob(ctx, &schedulerpb.UpdateJobRequest{Job: want.Scheduler, UpdateMask: &fieldmaskpb.FieldMask{Paths: mask}}); err != nil {
			return nil, classify("scheduler.UpdateJob "+name, err)
		}
		changes = append(changes, "schedule: updated "+joinFields(mask))
	}
	switch paused := desired.Paused(got); {
	case want.Paused && !paused:
		if _, err := h.sched.PauseJob(ctx, &schedulerpb.PauseJobRequest{Name: name}); err != nil {
			return changes, classify("scheduler.PauseJob "+name, err)
		}
		changes = append(changes, "schedule: paused (suspend: true)")
	case !want.Paused && paused:
		if _, err := h.sched.ResumeJob(ctx, &schedulerpb.ResumeJobRequest{Name: name}); err != nil {
			return changes, classify("scheduler.ResumeJob "+name, err)
		}
		changes = append(changes, "schedule: resumed")
	}
	return changes, nil
}

// Delete removes the workload: its Cloud Scheduler job first (so nothing fires into a job
// being deleted), then its Cloud Run job, in every region of the workload. Resources that
// are not Runway's are left alone.
func (h *Handler) Delete(ctx context.Context, w inventory.Workload) (Result, error) {
	res := Result{Outcome: platform.DeployDeleted}
	for _, region := range w.Regions {
		name := platform.JobName(w.GCPProject, region, w.Name)
		got, err := h.sched.GetJob(ctx, &schedulerpb.GetJobRequest{Name: name})
		switch {
		case status.Code(err) == codes.NotFound:
		case err != nil:
			return res, classify("scheduler.GetJob "+name, err)
		case desired.IsManagedScheduler(got):
			if err := h.sched.DeleteJob(ctx, &schedulerpb.DeleteJobRequest{Name: name}); err != nil && status.Code(err) != codes.NotFound {
				return res, classify("scheduler.DeleteJob "+name, err)
			}
			res.Changes = append(res.Changes, "schedule: deleted "+name)
		}
		job, err := h.jobs.GetJob(ctx, &runpb.GetJobRequest{Name: name})
		switch {
		case status.Code(err) == codes.NotFound:
			continue
		case err != nil:
			return res, classify("run.GetJob "+name, err)
		case !platform.IsManaged(job.Labels):
			continue
		}
		op, err := h.jobs.DeleteJob(ctx, &runpb.DeleteJobRequest{Name: name, Etag: job.Etag})
		if err != nil {
			if status.Code(err) == codes.NotFound {
				continue
			}
			return res, classify("run.DeleteJob "+name, err)
		}
		wctx, cancel := context.WithTimeout(ctx, h.opTimeout)
		_, err = op.Wait(wctx)
		cancel()
		if err != nil && status.Code(err) != codes.NotFound {
			return res, classify("run.DeleteJob wait "+name, err)
		}
		res.Changes = append(res.Changes, "job: deleted "+name)
	}
	if len(res.Changes) == 0 {
		res.Outcome = platform.DeployUnchanged
	}
	return res, nil
}

// parseManifest validates the request's manifest (and overlay) exactly as runwayctl validate
// does.
func parseManifest(workload string, req *platform.DeployRequest) (*manifest.Job, error) {
	if req.Manifest.Content == "" {
		return nil, errors.New("the request carries no manifest")
	}
	path := req.Manifest.Path
	if path == "" {
		path = ".runway/runway.yml"
	}
	var (
		job *manifest.Job
		err error
	)
	if req.Overlay != nil {
		job, err = manifest.ParseOverlay(path, []byte(req.Manifest.Content), req.Overlay.Path, []byte(req.Overlay.Content), workload)
	} else {
		job, err = manifest.Parse(path, []byte(req.Manifest.Content))
	}
	if err != nil {
		return nil, err
	}
	if job.Metadata.Name != workload {
		return nil, fmt.Errorf("%s: metadata.name is %q, but the request is for workload %q", job.Pos("/metadata/name"), job.Metadata.Name, workload)
	}
	return job, nil
}

// problemsOf lists an error's problems one per line, as runwayctl validate prints them.
func problemsOf(err error) []string {
	var ps document.Problems
	if errors.As(err, &ps) {
		out := make([]string, len(ps))
		for i, p := range ps {
			out[i] = p.String()
		}
		return out
	}
	return []string{err.Error()}
}

// conflictError marks a write lost to a concurrent writer: re-read and try again.
type conflictError struct{ err error }

func (c conflictError) Error() string { return c.err.Error() }
func (c conflictError) Unwrap() error { return c.err }

func conflict(err error) bool {
	var c conflictError
	return errors.As(err, &c)
}

// classify wraps a Google API error once: InvalidArgument and PermissionDenied are permanent
// (the request itself is wrong), Aborted and AlreadyExists are conflicts (re-read, retry), and
// everything else (Unavailable, DeadlineExceeded, Internal…) is transient: redeliver.
func classify(op string, err error) error {
	err = fmt.Errorf("%s: %w", op, err)
	switch status.Code(err) {
	case codes.InvalidArgument, codes.PermissionDenied, codes.OutOfRange:
		return event.Permanent(err)
	case codes.Aborted, codes.AlreadyExists, codes.NotFound:
		return conflictError{err}
	}
	return err
}

func joinFields(fields []string) string { return strings.Join(fields, ", ") }
