// Package desired renders what a Runway job workload should look like in Google Cloud — its
// Cloud Run v2 job and, when scheduled, its Cloud Scheduler job — from the validated manifest,
// the inventory entry and the image, and compares that with what exists, field by field,
// ignoring what the server sets.
//
// PlanFor decides what a deploy request writes, as a value: the deploy function executes the
// Plan and `runwayctl plan` prints it, so both make exactly the same decision. Place decides
// which region holds a workload's job, for every component.
package desired

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"cloud.google.com/go/run/apiv2/runpb"
	"cloud.google.com/go/scheduler/apiv1/schedulerpb"
	"google.golang.org/protobuf/types/known/durationpb"

	"runwayjobs.dev/shared/inventory"
	"runwayjobs.dev/shared/manifest"
	"runwayjobs.dev/shared/platform"
)

// ContainerName is the name of the one container of every Runway job.
const ContainerName = "job"

// SchedulerMarker is in the description of every Runway-managed Cloud Scheduler job (which has
// no labels): a scheduler job without it is never modified or deleted.
const SchedulerMarker = "[managed-by: runway]"

// Input is everything the desired state is made of.
type Input struct {
	Job      *manifest.Job
	Workload inventory.Workload
	// Image is the image to run, by digest or tag; "" means the manifest's spec.image.
	Image  string
	Source platform.Source
	// ScheduleSince is when the current schedule first applied (kept across re-applies of an
	// unchanged schedule, so the monitor never expects slots from before it).
	ScheduleSince time.Time
	// Placement is the job's placement count (see Place), kept while the home region stays;
	// 0 writes no AnnotationPlacement, as for jobs deployed before it existed.
	Placement int64
}

// RequestInput is the input of a deploy request at now, before what is deployed is inherited.
func RequestInput(j *manifest.Job, w inventory.Workload, req *platform.DeployRequest, now time.Time) Input {
	return Input{Job: j, Workload: w, Image: req.Image, Source: req.Source, ScheduleSince: now}
}

// State is the rendered desired state of one workload.
type State struct {
	Project, Region, Workload string
	// Job is the Cloud Run job, named.
	Job *runpb.Job
	// Scheduler is the Cloud Scheduler job, nil when the workload is on-demand only.
	Scheduler *schedulerpb.Job
	// Paused is the desired state of the scheduler job (suspend: true).
	Paused bool
}

// inherit takes from the deployed home job what the request leaves to it: the time it was
// placed, the time the schedule started (when it is unchanged) and, when neither the request
// nor the manifest names an image, the image CI deployed last.
func (in *Input) inherit(got *runpb.Job) {
	if got == nil {
		return
	}
	in.Placement = placement(got)
	j := in.Job
	if s, err := platform.SettingsOf(got.Annotations); err == nil && j.Schedule != nil &&
		s.Schedule == j.Schedule.Expr() && s.TimeZone == j.Schedule.TimeZone() && !s.CreatedAt.IsZero() {
		in.ScheduleSince = s.CreatedAt
	}
	if cs := got.GetTemplate().GetTemplate().GetContainers(); in.Image == "" && j.Spec.Image == "" && len(cs) == 1 {
		in.Image = cs[0].Image
	}
}

// Render builds the desired state. Its errors are the input's fault (refuse the request).
func Render(in Input) (*State, error) {
	j, w := in.Job, in.Workload
	name := j.Metadata.Name
	if w.Name != name {
		return nil, fmt.Errorf("manifest names workload %q, the inventory entry is %q", name, w.Name)
	}
	region := HomeRegion(j, w)
	if !slices.Contains(w.Regions, region) {
		return nil, fmt.Errorf("region %q is not one of the workload's regions %v", region, w.Regions)
	}
	image := in.Image
	if image == "" {
		image = j.Spec.Image
	}
	if image == "" {
		return nil, fmt.Errorf("no image: set spec.image or deploy with --image")
	}
	if !w.ImageAllowed(image) {
		return nil, fmt.Errorf("image %q is not in the workload's artifact repository %s", image, w.ArtifactRepository)
	}
	if j.Spec.Image != "" && !w.ImageAllowed(j.Spec.Image) {
		return nil, fmt.Errorf("spec.image %q is not in the workload's artifact repository %s", j.Spec.Image, w.ArtifactRepository)
	}
	s := &State{Project: w.GCPProject, Region: region, Workload: name, Paused: j.Spec.Suspend}
	s.Job = renderJob(in, image, platform.JobName(s.Project, region, name))
	if j.Spec.Schedule != "" {
		s.Scheduler = renderScheduler(j, s.Project, platform.JobName(s.Project, region, name))
	}
	return s, nil
}

// Settings returns the settings annotation's content for the input.
func Settings(in Input) platform.Settings {
	j, sp := in.Job, &in.Job.Spec
	mon := sp.Monitoring
	channels := j.Spec.Notifications.Channels
	if len(channels) == 0 {
		channels = in.Workload.Notifications.Channels
	}
	s := platform.Settings{
		Workload:          j.Metadata.Name,
		ConcurrencyPolicy: string(sp.ConcurrencyPolicy),
		StartingDeadline:  sp.StartingDeadline.D(),
		Suspend:           sp.Suspend,
		Timeout:           sp.Timeout.D(),
		MaxRetries:        sp.Retries(),
		Monitoring: platform.Monitoring{
			Enabled:           mon.Enabled == nil || *mon.Enabled,
			Grace:             mon.Grace.D(),
			ExpectedRuntime:   sp.ExpectedRuntime(),
			FailureThreshold:  mon.FailureThreshold,
			RecoveryThreshold: mon.RecoveryThreshold,
			AlertOnFlaky:      mon.AlertOnFlaky == nil || *mon.AlertOnFlaky,
		},
		Owner: platform.Owner{
			EmailHandle:     j.Metadata.OwnerEmailHandle,
			Department:      j.Metadata.Department,
			DepartmentGroup: j.Metadata.DepartmentGroup,
			ProductCategory: j.Metadata.ProductCategory,
		},
		Channels: channels,
	}
	if j.Schedule != nil {
		s.Schedule, s.TimeZone = j.Schedule.Expr(), j.Schedule.TimeZone()
		s.CreatedAt = in.ScheduleSince.UTC()
	}
	return s
}

func renderJob(in Input, image, name string) *runpb.Job {
	j, sp := in.Job, &in.Job.Spec
	annotations := map[string]string{
		platform.AnnotationManifestHash: j.Hash(),
		platform.AnnotationSettings:     Settings(in).Encode(),
	}
	set := func(k, v string) {
		if v != "" {
			annotations[k] = v
		}
	}
	set(platform.AnnotationCommit, in.Source.CommitSHA)
	if in.Source.PipelineID != 0 {
		set(platform.AnnotationPipelineID, strconv.FormatInt(in.Source.PipelineID, 10))
	}
	set(platform.AnnotationPipelineURL, in.Source.PipelineURL)
	set(platform.AnnotationRef, in.Source.Ref)
	if in.Placement != 0 {
		set(platform.AnnotationPlacement, strconv.FormatInt(in.Placement, 10))
	}
	if sp.Image != "" && !strings.Contains(sp.Image, "@") {
		set(platform.AnnotationImageTag, sp.Image)
	}
	var env []*runpb.EnvVar
	for _, k := range slices.Sorted(maps.Keys(sp.Env)) {
		env = append(env, &runpb.EnvVar{Name: k, Values: &runpb.EnvVar_Value{Value: sp.Env[k]}})
	}
	for _, s := range sp.Secrets {
		env = append(env, &runpb.EnvVar{Name: s.Name, Values: &runpb.EnvVar_ValueSource{ValueSource: &runpb.EnvVarSource{
			SecretKeyRef: &runpb.SecretKeySelector{Secret: s.Secret, Version: s.Version},
		}}})
	}
	slices.SortStableFunc(env, func(a, b *runpb.EnvVar) int { return strings.Compare(a.Name, b.Name) })
	return &runpb.Job{
		Name:        name,
		Labels:      Labels(j),
		Annotations: annotations,
		Template: &runpb.ExecutionTemplate{
			TaskCount:   int32(sp.TaskCount),
			Parallelism: int32(sp.Parallelism),
			Template: &runpb.TaskTemplate{
				Containers: []*runpb.Container{{
					Name:    ContainerName,
					Image:   image,
					Command: sp.Command,
					Args:    sp.Args,
					Env:     env,
					Resources: &runpb.ResourceRequirements{Limits: map[string]string{
						"cpu":    string(sp.Resources.Limits.CPU),
						"memory": sp.Resources.Limits.Memory,
					}},
				}},
				Retries:        &runpb.TaskTemplate_MaxRetries{MaxRetries: int32(sp.Retries())},
				Timeout:        durationpb.New(sp.Timeout.D()),
				ServiceAccount: in.Workload.RunAs(),
			},
		},
	}
}

// Labels returns the labels of a workload's Cloud Run job: the Runway markers and the owner
// metadata, as label values (lowercase, at most 63 characters).
func Labels(j *manifest.Job) map[string]string {
	l := map[string]string{
		platform.LabelManagedBy: platform.ManagedByValue,
		platform.LabelWorkload:  j.Metadata.Name,
	}
	for k, v := range map[string]string{
		platform.LabelOwner:           j.Metadata.OwnerEmailHandle,
		platform.LabelDepartment:      j.Metadata.Department,
		platform.LabelDepartmentGroup: j.Metadata.DepartmentGroup,
		platform.LabelProductCategory: j.Metadata.ProductCategory,
	} {
		if v := labelValue(v); v != "" {
			l[k] = v
		}
	}
	return l
}

func labelValue(v string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(v) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
		if b.Len() == 63 {
			break
		}
	}
	return b.String()
}

func renderScheduler(j *manifest.Job, project, name string) *schedulerpb.Job {
	w := j.Metadata.Name
	data, _ := json.Marshal(platform.ScheduledRun{Workload: w})
	return &schedulerpb.Job{
		Name:        name,
		Description: fmt.Sprintf("Runway Jobs: scheduled runs of %s %s", w, SchedulerMarker),
		Schedule:    j.Schedule.Expr(),
		TimeZone:    j.Schedule.TimeZone(),
		Target: &schedulerpb.Job_PubsubTarget{PubsubTarget: &schedulerpb.PubsubTarget{
			TopicName:  platform.TopicPath(project, platform.TriggerTopic(w)),
			Data:       data,
			Attributes: map[string]string{platform.AttrKind: platform.KindScheduled, "runway_workload": w},
		}},
	}
}

// IsManagedScheduler reports whether a Cloud Scheduler job is Runway's.
func IsManagedScheduler(j *schedulerpb.Job) bool {
	return strings.Contains(j.GetDescription(), SchedulerMarker)
}

// Paused reports whether a scheduler job is paused.
func Paused(j *schedulerpb.Job) bool { return j.GetState() == schedulerpb.Job_PAUSED }
