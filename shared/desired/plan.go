package desired

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"cloud.google.com/go/run/apiv2/runpb"
	"cloud.google.com/go/scheduler/apiv1/schedulerpb"
	"github.com/googleapis/gax-go/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"runwayjobs.dev/shared/inventory"
	"runwayjobs.dev/shared/platform"
)

// SchedulerGetter is the part of the Cloud Scheduler client Observe reads with.
type SchedulerGetter interface {
	GetJob(context.Context, *schedulerpb.GetJobRequest, ...gax.CallOption) (*schedulerpb.Job, error)
}

// Observed is what exists of one workload: its Cloud Run jobs and Cloud Scheduler jobs in its
// regions (any order; nil entries are ignored).
type Observed struct {
	Jobs       []*runpb.Job
	Schedulers []*schedulerpb.Job
}

// job returns the observed Cloud Run job of region, nil when there is none.
func (o Observed) job(region string) *runpb.Job {
	for _, j := range o.Jobs {
		if j != nil && RegionOf(j.Name) == region {
			return j
		}
	}
	return nil
}

// scheduler returns the observed Cloud Scheduler job of region, nil when there is none.
func (o Observed) scheduler(region string) *schedulerpb.Job {
	for _, s := range o.Schedulers {
		if s != nil && RegionOf(s.Name) == region {
			return s
		}
	}
	return nil
}

// Observe reads the workload's Cloud Run and Cloud Scheduler jobs in each of its regions.
func Observe(ctx context.Context, jobs JobGetter, sched SchedulerGetter, w inventory.Workload) (Observed, error) {
	js, err := Jobs(ctx, jobs, w)
	if err != nil {
		return Observed{}, err
	}
	o := Observed{Jobs: js, Schedulers: make([]*schedulerpb.Job, len(w.Regions))}
	for i, region := range w.Regions {
		name := platform.JobName(w.GCPProject, region, w.Name)
		s, err := sched.GetJob(ctx, &schedulerpb.GetJobRequest{Name: name})
		switch {
		case status.Code(err) == codes.NotFound:
		case err != nil:
			return Observed{}, fmt.Errorf("scheduler.GetJob %s: %w", name, err)
		default:
			o.Schedulers[i] = s
		}
	}
	return o, nil
}

// Action is one write of a Plan.
type Action int

// The writes a Plan is made of, in the order they run within one resource.
const (
	CreateJob Action = iota + 1
	UpdateJob
	CreateScheduler
	UpdateScheduler
	DeleteScheduler
	PauseScheduler
	ResumeScheduler
	// DeleteStrayScheduler and DeleteStrayJob remove the copies a region move left behind.
	DeleteStrayScheduler
	DeleteStrayJob
)

// Step is one write: the action, the full name of the resource written, the fields an update
// names (Cloud Run job fields, or Cloud Scheduler update mask paths) and the etag a Cloud Run
// write is conditioned on.
type Step struct {
	Action Action
	Name   string
	Fields []string
	Etag   string
	// Home is the home region, for the steps that delete strays.
	Home string
}

// Change is the step as the deploy record lists it.
func (s Step) Change() string {
	switch s.Action {
	case CreateJob:
		return "job: created"
	case UpdateJob:
		return "job: updated " + strings.Join(s.Fields, ", ")
	case CreateScheduler:
		return "schedule: created"
	case UpdateScheduler:
		return "schedule: updated " + strings.Join(s.Fields, ", ")
	case DeleteScheduler:
		return "schedule: deleted"
	case PauseScheduler:
		return "schedule: paused (suspend: true)"
	case ResumeScheduler:
		return "schedule: resumed"
	case DeleteStrayScheduler:
		return "schedule: deleted " + s.Name + " (moved to " + s.Home + ")"
	case DeleteStrayJob:
		return "job: deleted " + s.Name + " (moved to " + s.Home + ")"
	}
	return fmt.Sprintf("unknown action %d on %s", s.Action, s.Name)
}

// Line is the step as runwayctl plan prints it.
func (s Step) Line(want *State) string {
	switch s.Action {
	case CreateJob:
		return "Cloud Run job " + s.Name + ": create"
	case UpdateJob:
		return "Cloud Run job " + s.Name + ": update " + strings.Join(s.Fields, ", ")
	case CreateScheduler:
		return fmt.Sprintf("Scheduler job %s: create (%s, %s)", s.Name, want.Scheduler.GetSchedule(), want.Scheduler.GetTimeZone())
	case UpdateScheduler:
		return "Scheduler job " + s.Name + ": update " + strings.Join(s.Fields, ", ")
	case DeleteScheduler:
		return "Scheduler job " + s.Name + ": delete (no schedule)"
	case PauseScheduler:
		return "Scheduler job " + s.Name + ": pause (suspend: true)"
	case ResumeScheduler:
		return "Scheduler job " + s.Name + ": resume"
	case DeleteStrayScheduler:
		return "Scheduler job " + s.Name + ": delete (the workload moves to " + s.Home + ")"
	case DeleteStrayJob:
		return "Cloud Run job " + s.Name + ": delete (the workload moves to " + s.Home + ")"
	}
	return s.Change()
}

// Plan is what one deploy request writes, in order: the home region's Cloud Run job (so its
// scheduler never fires for a job that does not exist), its Cloud Scheduler job, then, after a
// region move, each other region's scheduler and job. Applying the new home before deleting
// the old one means no slot is lost; a slot that fires in both regions in between is claimed
// once by trigger, which runs the home copy.
type Plan struct {
	// Want is the desired state; nil when Stale.
	Want *State
	// Job and Scheduler are the home region's resource names (Scheduler "" when on demand).
	Job, Scheduler string
	// Stale, when set, says why nothing is written: a newer pipeline was applied.
	Stale string
	Steps []Step
}

// Changes lists the plan as the deploy record does: each step's Change, or why it is stale.
func (p Plan) Changes() []string {
	if p.Stale != "" {
		return []string{p.Stale}
	}
	var out []string
	for _, s := range p.Steps {
		out = append(out, s.Change())
	}
	return out
}

// Lines lists the plan as runwayctl plan prints it: one line per step, in the order deploy
// writes, with a "no change" line for a home resource the plan leaves alone.
func (p Plan) Lines() []string {
	if p.Stale != "" {
		return []string{p.Stale}
	}
	var job, sched, strays []string
	for _, s := range p.Steps {
		switch s.Action {
		case CreateJob, UpdateJob:
			job = append(job, s.Line(p.Want))
		case DeleteStrayScheduler, DeleteStrayJob:
			strays = append(strays, s.Line(p.Want))
		default:
			sched = append(sched, s.Line(p.Want))
		}
	}
	if len(job) == 0 {
		job = []string{"Cloud Run job " + p.Job + ": no change"}
	}
	switch {
	case len(sched) > 0:
	case p.Scheduler == "":
		sched = []string{"Scheduler job: none (on demand only)"}
	default:
		sched = []string{"Scheduler job " + p.Scheduler + ": no change"}
	}
	return append(append(job, sched...), strays...)
}

// PlanFor decides what deploying in writes to the world obs: pure, so runwayctl plan prints the
// very plan the deploy function executes. in is the request's input (RequestInput); what the
// request leaves to the deployed job is inherited here. Its errors are refusals: a Cloud Run or
// Cloud Scheduler job in the home region that Runway does not manage, or an input Render
// refuses.
func PlanFor(in Input, obs Observed) (Plan, error) {
	w := in.Workload
	home := HomeRegion(in.Job, w)
	name := platform.JobName(w.GCPProject, home, w.Name)
	p := Plan{Job: name}
	got, sched := obs.job(home), obs.scheduler(home)
	if got != nil && !platform.IsManaged(got.Labels) {
		return p, fmt.Errorf("Cloud Run job %s exists and is not managed by Runway: it is left alone", name)
	}
	if sched != nil && !IsManagedScheduler(sched) {
		return p, fmt.Errorf("Cloud Scheduler job %s exists and is not managed by Runway: it is left alone", name)
	}
	cur := Place(w, obs.Jobs).Home // what is applied now, wherever it is
	// Never roll back: a request from an older pipeline than the applied one changes nothing.
	if cur != nil {
		applied, _ := strconv.ParseInt(cur.Annotations[platform.AnnotationPipelineID], 10, 64)
		if req := in.Source.PipelineID; req != 0 && applied > req {
			p.Stale = fmt.Sprintf("pipeline %d is older than the applied pipeline %d: nothing changed", req, applied)
			return p, nil
		}
	}
	in.inherit(cur)
	if cur == nil || cur != got { // placed anew in the home region: after every copy
		in.Placement = 1
		for _, j := range obs.Jobs {
			if j != nil && platform.IsManaged(j.Labels) {
				in.Placement = max(in.Placement, placement(j)+1)
			}
		}
	}
	want, err := Render(in)
	if err != nil {
		return p, err
	}
	p.Want = want
	if want.Scheduler != nil {
		p.Scheduler = want.Scheduler.Name
	}
	p.Steps = append(jobSteps(want, got), schedulerSteps(want, sched)...)
	for _, region := range w.Regions {
		if region == home {
			continue
		}
		stray := platform.JobName(w.GCPProject, region, w.Name)
		if s := obs.scheduler(region); s != nil && IsManagedScheduler(s) {
			p.Steps = append(p.Steps, Step{Action: DeleteStrayScheduler, Name: stray, Home: home})
		}
		if j := obs.job(region); j != nil && platform.IsManaged(j.Labels) && j.Labels[platform.LabelWorkload] == w.Name {
			p.Steps = append(p.Steps, Step{Action: DeleteStrayJob, Name: stray, Etag: j.Etag, Home: home})
		}
	}
	return p, nil
}

// jobSteps writes the home region's Cloud Run job: created, or updated in the fields that differ.
func jobSteps(want *State, got *runpb.Job) []Step {
	if got == nil {
		return []Step{{Action: CreateJob, Name: want.Job.Name}}
	}
	if ch := JobChanges(want.Job, got); len(ch) > 0 {
		return []Step{{Action: UpdateJob, Name: want.Job.Name, Fields: ch, Etag: got.Etag}}
	}
	return nil
}

// schedulerSteps writes the home region's Cloud Scheduler job: created, updated (a field mask),
// deleted when the schedule was removed, then paused or resumed.
func schedulerSteps(want *State, got *schedulerpb.Job) []Step {
	name := want.Job.Name
	if want.Scheduler == nil {
		if got != nil {
			return []Step{{Action: DeleteScheduler, Name: name}}
		}
		return nil
	}
	var steps []Step
	switch {
	case got == nil:
		steps = append(steps, Step{Action: CreateScheduler, Name: name})
	default:
		if mask := SchedulerChanges(want.Scheduler, got); len(mask) > 0 {
			steps = append(steps, Step{Action: UpdateScheduler, Name: name, Fields: mask})
		}
	}
	switch paused := got != nil && Paused(got); { // a created scheduler job starts enabled
	case want.Paused && !paused:
		steps = append(steps, Step{Action: PauseScheduler, Name: name})
	case !want.Paused && paused:
		steps = append(steps, Step{Action: ResumeScheduler, Name: name})
	}
	return steps
}
