package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

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
	"runwayjobs.dev/shared/state"
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
	intent    bool // a deploy intent of the request is stored (drop it once recorded)
}

// maxConflicts bounds the re-read-and-retry loop when another writer changes the job between
// our read and our write (etag mismatch, or a create racing ours).
const maxConflicts = 4

// Apply reconciles the workload to the request: it reads the workload's Cloud Run and Cloud
// Scheduler jobs in each of its regions, asks desired.PlanFor what to write, and writes that:
// the home region, then the deletion of what a region move left elsewhere. It is safe to call
// again with the same request; the second call writes nothing, and reports what the first
// changed even when the responses of its writes were lost (the deploy intent).
func (h *Handler) Apply(ctx context.Context, w inventory.Workload, req *platform.DeployRequest) (Result, error) {
	job, err := parseManifest(w.Name, req)
	if err != nil {
		return Result{}, event.Permanent(err)
	}
	in, err := h.loadIntent(ctx, w.Name, req.RequestID)
	if err != nil {
		return Result{}, err
	}
	var res Result
	for attempt := 1; ; attempt++ {
		res, err = h.applyOnce(ctx, w, req, job, &in)
		if !conflict(err) || attempt == maxConflicts {
			break
		}
	}
	return res, err
}

// intent is what earlier attempts of this request wrote, or may have: kept in the store when
// an attempt failed after (or during) a write, whose response may have been lost although
// the write happened.
type intent struct {
	Changes []string `json:"changes"`
	gen     int64    // the stored generation, 0 when none is stored
}

func (h *Handler) applyOnce(ctx context.Context, w inventory.Workload, req *platform.DeployRequest, job *manifest.Job, in *intent) (Result, error) {
	obs, err := desired.Observe(ctx, h.jobs, h.sched, w)
	if err != nil {
		return Result{Job: platform.JobName(w.GCPProject, desired.HomeRegion(job, w), w.Name), intent: in.gen != 0}, classify("observe", err)
	}
	p, err := desired.PlanFor(desired.RequestInput(job, w, req, h.now()), obs)
	res := Result{Job: p.Job, Scheduler: p.Scheduler, intent: in.gen != 0}
	if err != nil {
		return res, event.Permanent(err)
	}
	if p.Stale != "" {
		res.Outcome, res.Changes = platform.DeployStale, p.Changes()
		return res, nil
	}
	var done []string
	for _, s := range p.Steps {
		if err := h.execute(ctx, p.Want, s); err != nil {
			// The write may have happened: a redelivery that finds it done must still
			// record it as this request's.
			in.Changes = union(in.Changes, append(done, s.Change()))
			h.saveIntent(ctx, w.Name, req.RequestID, in)
			res.Changes, res.intent = in.Changes, in.gen != 0
			return res, err
		}
		done = append(done, s.Change())
	}
	res.Changes = union(in.Changes, done)
	res.Outcome = platform.DeployUnchanged
	if len(res.Changes) > 0 {
		res.Outcome = platform.DeployApplied
	}
	return res, nil
}

// union is a followed by the entries of b it lacks.
func union(a, b []string) []string {
	out := slices.Clone(a)
	for _, s := range b {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// loadIntent reads what earlier deliveries of the request wrote, or may have (nothing, as a
// rule). It is one store read per delivery; a write is made only when a delivery fails.
func (h *Handler) loadIntent(ctx context.Context, workload, requestID string) (intent, error) {
	if requestID == "" {
		return intent{}, nil
	}
	key := platform.DeployIntentKey(workload, requestID)
	o, err := h.store.Get(ctx, key)
	if errors.Is(err, state.ErrNotFound) {
		return intent{}, nil
	}
	if err != nil {
		return intent{}, fmt.Errorf("deploy intent %s: %w", key, err)
	}
	var in intent
	if err := json.Unmarshal(o.Data, &in); err != nil {
		return intent{}, fmt.Errorf("deploy intent %s: %w", key, err)
	}
	in.gen = o.Generation
	return in, nil
}

// saveIntent stores in after a failed attempt. A failure to store it is logged: the attempt's
// own error is what the delivery returns.
func (h *Handler) saveIntent(ctx context.Context, workload, requestID string, in *intent) {
	if requestID == "" {
		return
	}
	key := platform.DeployIntentKey(workload, requestID)
	b, err := json.Marshal(in)
	if err == nil {
		var gen int64
		if gen, err = h.store.Put(ctx, key, b, in.gen); err == nil {
			in.gen = gen
			return
		}
	}
	h.log.Warn().Str("request_id", requestID).Err(err).Msg("deploy intent not stored: a redelivery may record the writes as unchanged")
}

// dropIntent deletes the request's intent once its outcome is recorded (best effort: a left
// intent is only read by a redelivery, which finds the record first).
func (h *Handler) dropIntent(ctx context.Context, workload, requestID string) {
	if err := h.store.Delete(ctx, platform.DeployIntentKey(workload, requestID), 0); err != nil && !errors.Is(err, state.ErrNotFound) {
		h.log.Warn().Str("request_id", requestID).Err(err).Msg("deploy intent not deleted")
	}
}

// execute makes one write of the plan.
func (h *Handler) execute(ctx context.Context, want *desired.State, s desired.Step) error {
	parent := "projects/" + want.Project + "/locations/" + want.Region
	switch s.Action {
	case desired.CreateJob:
		return h.createJob(ctx, want)
	case desired.UpdateJob:
		return h.updateJob(ctx, want.Job, s.Etag)
	case desired.CreateScheduler:
		_, err := h.sched.CreateJob(ctx, &schedulerpb.CreateJobRequest{Parent: parent, Job: want.Scheduler})
		return classify("scheduler.CreateJob "+s.Name, err)
	case desired.UpdateScheduler:
		_, err := h.sched.UpdateJob(ctx, &schedulerpb.UpdateJobRequest{Job: want.Scheduler, UpdateMask: &fieldmaskpb.FieldMask{Paths: s.Fields}})
		return classify("scheduler.UpdateJob "+s.Name, err)
	case desired.PauseScheduler:
		_, err := h.sched.PauseJob(ctx, &schedulerpb.PauseJobRequest{Name: s.Name})
		return classify("scheduler.PauseJob "+s.Name, err)
	case desired.ResumeScheduler:
		_, err := h.sched.ResumeJob(ctx, &schedulerpb.ResumeJobRequest{Name: s.Name})
		return classify("scheduler.ResumeJob "+s.Name, err)
	case desired.DeleteScheduler, desired.DeleteStrayScheduler:
		if err := h.sched.DeleteJob(ctx, &schedulerpb.DeleteJobRequest{Name: s.Name}); status.Code(err) != codes.NotFound {
			return classify("scheduler.DeleteJob "+s.Name, err)
		}
		return nil
	case desired.DeleteStrayJob:
		return h.deleteJob(ctx, s.Name, s.Etag)
	}
	return event.Permanent(fmt.Errorf("deploy: unknown plan step %q (a desired.Plan this deploy cannot execute)", s.Change()))
}

func (h *Handler) createJob(ctx context.Context, want *desired.State) error {
	parent := "projects/" + want.Project + "/locations/" + want.Region
	op, err := h.jobs.CreateJob(ctx, &runpb.CreateJobRequest{Parent: parent, JobId: want.Workload, Job: withoutName(want.Job)})
	if err != nil {
		return classify("run.CreateJob "+want.Job.Name, err)
	}
	return h.wait(ctx, "run.CreateJob", want.Job.Name, op.Wait, func(got *runpb.Job) bool {
		return got != nil && len(desired.JobChanges(want.Job, got)) == 0
	})
}

func (h *Handler) updateJob(ctx context.Context, want *runpb.Job, etag string) error {
	j := withoutName(want)
	j.Name, j.Etag = want.Name, etag
	op, err := h.jobs.UpdateJob(ctx, &runpb.UpdateJobRequest{Job: j})
	if err != nil {
		return classify("run.UpdateJob "+want.Name, err)
	}
	return h.wait(ctx, "run.UpdateJob", want.Name, op.Wait, func(got *runpb.Job) bool {
		return got != nil && len(desired.JobChanges(want, got)) == 0
	})
}

func (h *Handler) deleteJob(ctx context.Context, name, etag string) error {
	op, err := h.jobs.DeleteJob(ctx, &runpb.DeleteJobRequest{Name: name, Etag: etag})
	if status.Code(err) == codes.NotFound {
		return nil
	}
	if err != nil {
		return classify("run.DeleteJob "+name, err)
	}
	return h.wait(ctx, "run.DeleteJob", name, op.Wait, func(got *runpb.Job) bool { return got == nil })
}

// wait waits for a Cloud Run operation. When polling it fails, the operation's outcome is
// unknown, not failed: the job is read again, and done reports whether the write landed.
func (h *Handler) wait(ctx context.Context, op, name string, wait func(context.Context, ...gax.CallOption) (*runpb.Job, error), done func(*runpb.Job) bool) error {
	wctx, cancel := context.WithTimeout(ctx, h.opTimeout)
	_, err := wait(wctx)
	cancel()
	if err == nil || (op == "run.DeleteJob" && status.Code(err) == codes.NotFound) {
		return nil
	}
	got, gerr := h.jobs.GetJob(ctx, &runpb.GetJobRequest{Name: name})
	switch {
	case status.Code(gerr) == codes.NotFound:
		got = nil
	case gerr != nil:
		return classify(op+" wait "+name, errors.Join(err, gerr))
	}
	if done(got) {
		h.log.Info().Str("job", name).AnErr("wait", err).Msg(op + ": the operation could not be followed, the job shows it done")
		return nil
	}
	return classify(op+" wait "+name, err)
}

func withoutName(j *runpb.Job) *runpb.Job {
	c := proto.Clone(j).(*runpb.Job)
	c.Name = ""
	return c
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
		if err := h.deleteJob(ctx, name, job.Etag); err != nil {
			return res, err
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
	if err == nil {
		return nil
	}
	err = fmt.Errorf("%s: %w", op, err)
	switch status.Code(err) {
	case codes.InvalidArgument, codes.PermissionDenied, codes.OutOfRange:
		return event.Permanent(err)
	case codes.Aborted, codes.AlreadyExists, codes.NotFound:
		return conflictError{err}
	}
	return err
}
