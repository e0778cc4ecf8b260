package monitor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/monitoring/apiv3/v2/monitoringpb"
	"cloud.google.com/go/run/apiv2/runpb"
	"cloud.google.com/go/scheduler/apiv1/schedulerpb"
	"google.golang.org/api/iterator"

	"runwayjobs.dev/shared/detect"
	"runwayjobs.dev/shared/gcp/monitorclients"
	"runwayjobs.dev/shared/platform"
)

// cloud is the part of Google Cloud the monitor reads: only the calls it makes. gcpCloud is the
// real one (the official clients, against Google or the emulator); the replay tests' simulated
// world is the other.
type cloud interface {
	// listJobs returns every job of project in region.
	listJobs(ctx context.Context, project, region string) ([]*runpb.Job, error)
	// listExecutions returns the executions of job created after after, newest first.
	listExecutions(ctx context.Context, job string, after time.Time) ([]*runpb.Execution, error)
	// listTimeSeries returns every series of req, all pages read; pages counts the pages.
	listTimeSeries(ctx context.Context, req *monitoringpb.ListTimeSeriesRequest) (series []*monitoringpb.TimeSeries, pages int, err error)
	// getSchedulerJob returns the Cloud Scheduler job name (a NotFound status error if none).
	getSchedulerJob(ctx context.Context, name string) (*schedulerpb.Job, error)
}

// gcpCloud reads through the official clients (monitorclients', or allclients' in tests).
type gcpCloud struct{ c monitorclients.Set }

var _ cloud = gcpCloud{}

func (g gcpCloud) listJobs(ctx context.Context, project, region string) ([]*runpb.Job, error) {
	parent := "projects/" + project + "/locations/" + region
	var out []*runpb.Job
	it := g.c.MonitorClients().Jobs.ListJobs(ctx, &runpb.ListJobsRequest{Parent: parent, PageSize: 1000})
	for {
		j, err := it.Next()
		if errors.Is(err, iterator.Done) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("run.ListJobs %s: %w", parent, err)
		}
		out = append(out, j)
	}
}

func (g gcpCloud) listExecutions(ctx context.Context, job string, after time.Time) ([]*runpb.Execution, error) {
	var out []*runpb.Execution
	it := g.c.MonitorClients().Executions.ListExecutions(ctx, &runpb.ListExecutionsRequest{Parent: job, PageSize: 100})
	for {
		x, err := it.Next()
		if errors.Is(err, iterator.Done) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("run.ListExecutions %s: %w", job, err)
		}
		if !x.GetCreateTime().AsTime().After(after) {
			return out, nil // newest first: the rest are older
		}
		out = append(out, x)
	}
}

func (g gcpCloud) getSchedulerJob(ctx context.Context, name string) (*schedulerpb.Job, error) {
	j, err := g.c.MonitorClients().Scheduler.GetJob(ctx, &schedulerpb.GetJobRequest{Name: name})
	if err != nil {
		return nil, fmt.Errorf("scheduler.GetJob %s: %w", name, err)
	}
	return j, nil
}

func (g gcpCloud) listTimeSeries(ctx context.Context, req *monitoringpb.ListTimeSeriesRequest) ([]*monitoringpb.TimeSeries, int, error) {
	p := iterator.NewPager(g.c.MonitorClients().Metrics.ListTimeSeries(ctx, req), 100_000, "")
	var out []*monitoringpb.TimeSeries
	for pages := 1; ; pages++ {
		var page []*monitoringpb.TimeSeries
		token, err := p.NextPage(&page)
		if err != nil {
			return nil, pages, fmt.Errorf("monitoring.ListTimeSeries %s %s: %w", req.GetName(), req.GetFilter(), err)
		}
		out = append(out, page...)
		if token == "" {
			return out, pages, nil
		}
	}
}

// settingsCache remembers decoded settings annotations: a tick over 10,000 jobs would
// otherwise decode 10,000 JSON documents that rarely change.
type settingsCache struct {
	mu sync.Mutex
	m  map[string]platform.Settings
}

func (c *settingsCache) of(annotations map[string]string) (platform.Settings, error) {
	v, ok := annotations[platform.AnnotationSettings]
	if !ok {
		return platform.SettingsOf(annotations)
	}
	c.mu.Lock()
	s, hit := c.m[v]
	c.mu.Unlock()
	if hit {
		return s, nil
	}
	s, err := platform.SettingsOf(annotations)
	if err != nil {
		return s, err
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) > 100_000 {
		c.m = map[string]platform.Settings{}
	}
	c.m[v] = s
	c.mu.Unlock()
	return s, nil
}

// jobOf converts a Cloud Run job; ok is false for jobs Runway does not manage or whose settings
// cannot be read.
func jobOf(j *runpb.Job, cache *settingsCache) (detect.Job, bool, error) {
	if !platform.IsManaged(j.GetLabels()) {
		return detect.Job{}, false, nil
	}
	key, err := keyOf(j.GetName())
	if err != nil {
		return detect.Job{}, false, err
	}
	s, err := cache.of(j.GetAnnotations())
	if err != nil {
		return detect.Job{}, false, fmt.Errorf("job %s: %w", j.GetName(), err)
	}
	s.Channels = slices.Clone(s.Channels)
	if s.Workload == "" {
		s.Workload = j.GetLabels()[platform.LabelWorkload]
	}
	out := detect.Job{Key: key, Settings: s, UpdateTime: j.GetUpdateTime().AsTime()}
	if l := j.GetLatestCreatedExecution(); l != nil && l.GetName() != "" {
		out.Latest = &detect.ExecutionRef{Name: l.GetName(), Created: l.GetCreateTime().AsTime()}
		if l.GetCompletionTime() != nil {
			out.Latest.Completed = l.GetCompletionTime().AsTime()
		}
	}
	return out, true, nil
}

// keyOf parses projects/P/locations/L/jobs/J.
func keyOf(name string) (detect.Key, error) {
	parts := strings.Split(name, "/")
	if len(parts) != 6 || parts[0] != "projects" || parts[2] != "locations" || parts[4] != "jobs" || parts[1] == "" || parts[3] == "" || parts[5] == "" {
		return detect.Key{}, fmt.Errorf("job name %q is not projects/P/locations/L/jobs/J", name)
	}
	return detect.Key{Project: parts[1], Location: parts[3], Job: parts[5]}, nil
}

// executionOf converts a Cloud Run execution.
func executionOf(x *runpb.Execution) detect.Execution {
	out := detect.Execution{
		Name:    x.GetName(),
		Created: x.GetCreateTime().AsTime(),
		Retried: int(x.GetRetriedCount()),
		LogURI:  x.GetLogUri(),
	}
	if x.GetStartTime() != nil {
		out.Started = x.GetStartTime().AsTime()
	}
	if x.GetCompletionTime() != nil {
		out.Completed = x.GetCompletionTime().AsTime()
		switch {
		case x.GetSucceededCount() >= x.GetTaskCount() && x.GetFailedCount() == 0:
			out.Result = detect.Succeeded
		case x.GetCancelledCount() > 0 && x.GetFailedCount() == 0:
			out.Result = detect.Cancelled
		default:
			out.Result = detect.Failed
		}
	}
	if cs := x.GetTemplate().GetContainers(); len(cs) > 0 {
		for _, e := range cs[0].GetEnv() {
			switch e.GetName() {
			case platform.EnvTrigger:
				out.Trigger = e.GetValue()
			case platform.EnvScheduledTime:
				if t, err := time.Parse(time.RFC3339, e.GetValue()); err == nil {
					out.Scheduled = t
				}
			}
		}
	}
	if out.Trigger != "" && out.Trigger != platform.TriggerSchedule {
		out.Scheduled = time.Time{} // a manual run never serves a slot
	}
	return out
}
