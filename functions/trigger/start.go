package trigger

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	run "cloud.google.com/go/run/apiv2"
	"cloud.google.com/go/run/apiv2/runpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"runwayjobs.dev/shared/manifest"
	"runwayjobs.dev/shared/platform"
)

// start claims r and, holding the claim, starts its execution or records why not.
func (h *Handler) start(ctx context.Context, r request, job *runpb.Job, s platform.Settings) error {
	c, err := h.acquire(ctx, r, job)
	if c == nil || err != nil {
		return err
	}
	return h.execute(ctx, r, job, s, c)
}

// execute is step 4 of the protocol: c is held.
func (h *Handler) execute(ctx context.Context, r request, job *runpb.Job, s platform.Settings, c *claim) error {
	if r.trigger == platform.TriggerSchedule {
		if s.Suspend {
			return h.finish(ctx, c, platform.RunSkipped, "the job is suspended (spec.suspend): scheduled runs are ignored", nil)
		}
		if now := h.now(); s.StartingDeadline > 0 && now.After(r.slot.Add(s.StartingDeadline)) {
			return h.finish(ctx, c, platform.RunMissed, fmt.Sprintf("delivered at %s, later than its slot %s plus the starting deadline %s",
				now.UTC().Format(time.RFC3339), r.slot.UTC().Format(time.RFC3339), s.StartingDeadline), nil)
		}
	}
	var replaced []string
	uncertain := false // a RunJob call failed with its outcome unknown
	var l *policyLock
	if r.policy != manifest.Allow {
		var err error
		if l, err = h.lock(ctx, r); err != nil {
			h.release(ctx, c, err)
			return err
		}
		defer func() { h.unlock(ctx, l, uncertain) }()
		active, _, err := h.active(ctx, job, r.workload.Name)
		if err != nil {
			h.release(ctx, c, err)
			return err
		}
		switch {
		case len(active) > 0 && r.policy == manifest.Forbid:
			return h.finish(ctx, c, platform.RunSkipped, "previous run still active: "+shortNames(active), nil)
		case len(active) > 0 && r.policy == manifest.Replace:
			if err := h.replace(ctx, active); err != nil {
				h.release(ctx, c, err)
				return err
			}
			replaced = active
		}
	}
	ov := overridesOf(r, job)
	// Whatever the policy: a later Forbid or Replace request must find this execution.
	if err := h.recordWindow(ctx, r.workload.Name, shapeOf(job, ov)); err != nil {
		h.release(ctx, c, err)
		return err
	}
	if l != nil {
		if err := h.renewLock(ctx, l); err != nil {
			h.release(ctx, c, err)
			return err
		}
	}
	if err := h.renew(ctx, c); err != nil {
		return err // lost the claim: whoever holds it now decides
	}
	exec, err := h.runJob(ctx, job, ov)
	switch {
	case err == nil:
	case notCreated(err) && refusedByCloudRun(err):
		return h.finish(ctx, c, platform.RunRefused, "Cloud Run refused the run: "+status.Convert(errors.Unwrap(err)).Message(), nil)
	case notCreated(err):
		h.release(ctx, c, err)
		return err
	default:
		uncertain = true
		h.note(ctx, c, err)
		return err
	}
	reason := ""
	if len(replaced) > 0 {
		reason = "replaced " + shortNames(replaced)
	}
	return h.finish(ctx, c, platform.RunStarted, reason, exec)
}

// runJob calls RunJob, bounded by Timing.RunJob, and returns the execution it created, from
// the operation's metadata (it does not wait for the execution to finish).
func (h *Handler) runJob(ctx context.Context, job *runpb.Job, ov *runpb.RunJobRequest_Overrides) (*runpb.Execution, error) {
	rctx, cancel := context.WithTimeout(ctx, h.t.RunJob)
	defer cancel()
	op, err := h.jobs.RunJob(rctx, &runpb.RunJobRequest{Name: job.Name, Overrides: ov})
	if err != nil {
		return nil, fmt.Errorf("run.RunJob %s: %w", job.Name, err)
	}
	exec, err := op.Metadata()
	if err == nil && exec.GetName() != "" {
		return exec, nil
	}
	// No execution in the metadata yet: look for it by its request id.
	id := envValue(ov, platform.EnvRequestID)
	found, ferr := h.findExecution(ctx, job.Name, id, h.now())
	if ferr == nil && found != nil {
		return found, nil
	}
	return nil, fmt.Errorf("run.RunJob %s: operation %s names no execution yet (metadata: %v)", job.Name, op.Name(), errors.Join(err, ferr))
}

// notCreated reports whether a RunJob error proves that no execution was created: the
// request was refused before it was acted on. Any other error leaves it unknown.
func notCreated(err error) bool {
	switch status.Code(err) {
	case codes.InvalidArgument, codes.NotFound, codes.FailedPrecondition, codes.PermissionDenied,
		codes.Unauthenticated, codes.ResourceExhausted, codes.Aborted, codes.OutOfRange:
		return true
	}
	return false
}

// refusedByCloudRun reports whether a RunJob error can never succeed on retry.
func refusedByCloudRun(err error) bool {
	switch status.Code(err) {
	case codes.InvalidArgument, codes.NotFound, codes.OutOfRange:
		return true
	}
	return false
}

// replace cancels the executions and waits, up to Timing.Replace, until they have ended.
func (h *Handler) replace(ctx context.Context, names []string) error {
	wctx, cancel := context.WithTimeout(ctx, h.t.Replace)
	defer cancel()
	var ops []*run.CancelExecutionOperation
	for _, name := range names {
		op, err := h.execs.CancelExecution(wctx, &runpb.CancelExecutionRequest{Name: name})
		switch status.Code(err) {
		case codes.OK:
			ops = append(ops, op)
		case codes.NotFound, codes.FailedPrecondition: // already gone or completed
		default:
			return fmt.Errorf("run.CancelExecution %s: %w", name, err)
		}
	}
	for _, op := range ops {
		if _, err := op.Wait(wctx); err != nil && wctx.Err() != nil {
			return fmt.Errorf("replace: the cancelled executions have not ended after %s: %w", h.t.Replace, err)
		}
	}
	// The operations end with the executions; check, since a failed wait proves nothing.
	for _, name := range names {
		e, err := h.execs.GetExecution(wctx, &runpb.GetExecutionRequest{Name: name})
		if status.Code(err) == codes.NotFound {
			continue
		}
		if err != nil {
			return fmt.Errorf("run.GetExecution %s: %w", name, err)
		}
		if e.GetCompletionTime() == nil {
			return fmt.Errorf("replace: execution %s is still running after its cancellation", name)
		}
	}
	return nil
}

// overridesOf returns RunJob's overrides for r: the request's args, env, task count and
// timeout, and the RUNWAY_* variables every execution gets.
func overridesOf(r request, job *runpb.Job) *runpb.RunJobRequest_Overrides {
	co := &runpb.RunJobRequest_Overrides_ContainerOverride{Name: job.GetTemplate().GetTemplate().GetContainers()[0].GetName()}
	ov := &runpb.RunJobRequest_Overrides{}
	if q := r.run; q != nil {
		co.Args, co.ClearArgs = q.Args, q.ClearArgs
		for _, k := range slices.Sorted(maps.Keys(q.Env)) {
			co.Env = append(co.Env, plainEnv(k, q.Env[k]))
		}
		ov.TaskCount = int32(q.TaskCount)
		if q.Timeout != "" {
			d, _ := time.ParseDuration(q.Timeout) // checked by platform.CheckRunRequest
			ov.Timeout = durationpb.New(d)
		}
	}
	co.Env = append(co.Env, plainEnv(platform.EnvTrigger, r.trigger), plainEnv(platform.EnvRequestID, r.requestID))
	if r.trigger == platform.TriggerSchedule {
		co.Env = append(co.Env, plainEnv(platform.EnvScheduledTime, r.slot.UTC().Format(time.RFC3339)))
	}
	ov.ContainerOverrides = []*runpb.RunJobRequest_Overrides_ContainerOverride{co}
	return ov
}

func plainEnv(name, value string) *runpb.EnvVar {
	return &runpb.EnvVar{Name: name, Values: &runpb.EnvVar_Value{Value: value}}
}

func envValue(ov *runpb.RunJobRequest_Overrides, name string) string {
	for _, co := range ov.GetContainerOverrides() {
		for _, e := range co.GetEnv() {
			if e.GetName() == name {
				return e.GetValue()
			}
		}
	}
	return ""
}

// shortNames returns the executions' short names, comma-separated.
func shortNames(names []string) string {
	short := make([]string, len(names))
	for i, n := range names {
		short[i] = n[strings.LastIndexByte(n, '/')+1:]
	}
	return strings.Join(short, ", ")
}
