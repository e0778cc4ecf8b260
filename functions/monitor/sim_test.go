package monitor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/monitoring/apiv3/v2/monitoringpb"
	"cloud.google.com/go/run/apiv2/runpb"
	"cloud.google.com/go/scheduler/apiv1/schedulerpb"
	"google.golang.org/genproto/googleapis/api/metric"
	"google.golang.org/genproto/googleapis/api/monitoredres"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"runwayjobs.dev/shared/detect"
	"runwayjobs.dev/shared/platform"
	"runwayjobs.dev/shared/state"
)

// memStore is an in-memory state.Store with generation preconditions, for replays (the Dir
// store would spend the replay's time in fsync).
type memStore struct {
	mu   sync.Mutex
	gen  int64
	objs map[string]state.Object
	puts int
}

var _ state.Store = (*memStore)(nil)

func newMemStore() *memStore { return &memStore{objs: map[string]state.Object{}} }

func (m *memStore) Get(_ context.Context, key string) (state.Object, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.objs[key]
	if !ok {
		return state.Object{}, fmt.Errorf("get %s: %w", key, state.ErrNotFound)
	}
	return state.Object{Data: slices.Clone(o.Data), Generation: o.Generation}, nil
}

func (m *memStore) Put(_ context.Context, key string, data []byte, ifGen int64) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.objs[key].Generation != ifGen {
		return 0, fmt.Errorf("put %s: %w", key, state.ErrPrecondition)
	}
	m.gen++
	m.puts++
	m.objs[key] = state.Object{Data: slices.Clone(data), Generation: m.gen}
	return m.gen, nil
}

func (m *memStore) Delete(_ context.Context, key string, ifGen int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.objs[key]
	if !ok {
		return state.ErrNotFound
	}
	if ifGen != 0 && o.Generation != ifGen {
		return state.ErrPrecondition
	}
	delete(m.objs, key)
	return nil
}

func (m *memStore) List(_ context.Context, prefix string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var keys []string
	for k := range m.objs {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys, nil
}

func (m *memStore) ListPage(ctx context.Context, prefix, startAfter string, limit int) ([]string, error) {
	keys, _ := m.List(ctx, prefix)
	i, _ := slices.BinarySearch(keys, startAfter)
	if i < len(keys) && keys[i] == startAfter {
		i++
	}
	keys = keys[i:]
	return keys[:min(limit, len(keys))], nil
}

// simExec is one execution of the simulated history.
type simExec struct {
	name                        string
	created, started, completed time.Time // completed zero: never completes
	result                      string    // succeeded | failed | cancelled
	retried                     int
	trigger                     string
	scheduled                   time.Time
}

// simVersion is a job's settings from a time on (a deploy).
type simVersion struct {
	from     time.Time
	settings platform.Settings
	encoded  string
}

// simJob is one Cloud Run job of the simulated history.
type simJob struct {
	key      detect.Key
	created  time.Time
	deleted  time.Time // zero: never
	versions []simVersion
	execs    []*simExec // by creation
	byEnd    []*simExec // completed ones, by completion
	long     []*simExec // running more than an hour (or forever)
}

func (j *simJob) at(now time.Time) (platform.Settings, time.Time) {
	v := j.version(now)
	return v.settings, v.from
}

func (j *simJob) version(now time.Time) *simVersion {
	v := &j.versions[0]
	for i := range j.versions[1:] {
		if x := &j.versions[i+1]; !x.from.After(now) {
			v = x
		}
	}
	if v.encoded == "" {
		v.encoded = v.settings.Encode()
	}
	return v
}

func (j *simJob) add(x *simExec) {
	j.execs = append(j.execs, x)
}

// index sorts what the fake Cloud Monitoring and Cloud Run read.
func (j *simJob) index() {
	sort.SliceStable(j.execs, func(a, b int) bool { return j.execs[a].created.Before(j.execs[b].created) })
	j.byEnd, j.long = nil, nil
	for _, x := range j.execs {
		if !x.completed.IsZero() {
			j.byEnd = append(j.byEnd, x)
		}
		if x.completed.IsZero() || x.completed.Sub(x.created) > time.Hour {
			j.long = append(j.long, x)
		}
	}
	sort.SliceStable(j.byEnd, func(a, b int) bool { return j.byEnd[a].completed.Before(j.byEnd[b].completed) })
}

// world is a simulated Google Cloud for replays: jobs, their executions and the job metrics,
// all computed from a history known in advance and shown as of the world's clock, the way
// Cloud Run and Cloud Monitoring would show them then. It implements cloud.
type world struct {
	mu   sync.Mutex
	now  time.Time
	jobs []*simJob
	lag  time.Duration // the metrics' real ingest lag
	// metricsFail and metricsEmpty make Cloud Monitoring fail or answer nothing at some times.
	metricsFail  func(project string, now time.Time) bool
	metricsEmpty func(project string, now time.Time) bool
	calls        struct{ jobs, executions, metrics int }
}

var _ cloud = (*world)(nil)

func (w *world) setNow(t time.Time) {
	w.mu.Lock()
	w.now = t
	w.mu.Unlock()
}

func (w *world) clock() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.now
}

func (w *world) listJobs(_ context.Context, project, region string) ([]*runpb.Job, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.calls.jobs++
	now := w.now
	var out []*runpb.Job
	for _, j := range w.jobs {
		if j.key.Project != project || j.key.Location != region || j.created.After(now) || !j.deleted.IsZero() && !j.deleted.After(now) {
			continue
		}
		v := j.version(now)
		job := &runpb.Job{
			Name:        j.key.Name(),
			Labels:      map[string]string{platform.LabelManagedBy: platform.ManagedByValue, platform.LabelWorkload: v.settings.Workload},
			Annotations: map[string]string{platform.AnnotationSettings: v.encoded},
			CreateTime:  timestamppb.New(j.created),
			UpdateTime:  timestamppb.New(v.from),
		}
		i := sort.Search(len(j.execs), func(i int) bool { return j.execs[i].created.After(now) })
		if i > 0 {
			x := j.execs[i-1]
			ref := &runpb.ExecutionReference{Name: x.name, CreateTime: timestamppb.New(x.created)}
			if !x.completed.IsZero() && !x.completed.After(now) {
				ref.CompletionTime = timestamppb.New(x.completed)
			}
			job.LatestCreatedExecution = ref
		}
		out = append(out, job)
	}
	return out, nil
}

func (w *world) listExecutions(_ context.Context, name string, after time.Time) ([]*runpb.Execution, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.calls.executions++
	now := w.now
	for _, j := range w.jobs {
		if j.key.Name() != name {
			continue
		}
		lo := sort.Search(len(j.execs), func(i int) bool { return j.execs[i].created.After(after) })
		hi := sort.Search(len(j.execs), func(i int) bool { return j.execs[i].created.After(now) })
		var out []*runpb.Execution
		for i := hi - 1; i >= lo; i-- {
			out = append(out, j.execs[i].proto(now))
		}
		return out, nil
	}
	return nil, fmt.Errorf("run.ListExecutions %s: not found", name)
}

// proto is the execution as Cloud Run shows it at now.
func (x *simExec) proto(now time.Time) *runpb.Execution {
	env := []*runpb.EnvVar{{Name: platform.EnvTrigger, Values: &runpb.EnvVar_Value{Value: x.trigger}}}
	if !x.scheduled.IsZero() {
		env = append(env, &runpb.EnvVar{Name: platform.EnvScheduledTime, Values: &runpb.EnvVar_Value{Value: x.scheduled.UTC().Format(time.RFC3339)}})
	}
	e := &runpb.Execution{
		Name:       x.name,
		CreateTime: timestamppb.New(x.created),
		TaskCount:  1,
		LogUri:     "https://console.cloud.google.com/logs?execution=" + x.name,
		Template:   &runpb.TaskTemplate{Containers: []*runpb.Container{{Env: env}}},
	}
	if !x.started.After(now) {
		e.StartTime = timestamppb.New(x.started)
	}
	if !x.completed.IsZero() && !x.completed.After(now) {
		e.CompletionTime = timestamppb.New(x.completed)
		e.RetriedCount = int32(x.retried)
		switch x.result {
		case "succeeded":
			e.SucceededCount = 1
		case "failed":
			e.FailedCount = 1
		case "cancelled":
			e.CancelledCount = 1
		}
	} else {
		e.RunningCount = 1
	}
	return e
}

var errMonitoring = errors.New("rpc error: code = Unavailable desc = the service is currently unavailable")

// listTimeSeries answers the monitor's three aggregated queries as Cloud Monitoring would:
// one-minute buckets, a point visible once its bucket ended lag ago, one point per job (and
// result) over the interval.
func (w *world) listTimeSeries(_ context.Context, req *monitoringpb.ListTimeSeriesRequest) ([]*monitoringpb.TimeSeries, int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.calls.metrics++
	project := strings.TrimPrefix(req.GetName(), "projects/")
	now := w.now
	if w.metricsFail != nil && w.metricsFail(project, now) {
		return nil, 1, errMonitoring
	}
	if w.metricsEmpty != nil && w.metricsEmpty(project, now) {
		return nil, 1, nil
	}
	start, end := req.GetInterval().GetStartTime().AsTime(), req.GetInterval().GetEndTime().AsTime()
	visible := now.Add(-w.lag)
	if end.After(visible) {
		end = visible.Truncate(time.Minute)
	}
	filter := req.GetFilter()
	var out []*monitoringpb.TimeSeries
	series := func(j *simJob, typ string, labels map[string]string, v int64) {
		if v == 0 {
			return
		}
		out = append(out, &monitoringpb.TimeSeries{
			Metric:   &metric.Metric{Type: typ, Labels: labels},
			Resource: &monitoredres.MonitoredResource{Type: "cloud_run_job", Labels: map[string]string{"job_name": j.key.Job, "location": j.key.Location}},
			Points: []*monitoringpb.Point{{
				Interval: &monitoringpb.TimeInterval{StartTime: req.GetInterval().GetStartTime(), EndTime: req.GetInterval().GetEndTime()},
				Value:    &monitoringpb.TypedValue{Value: &monitoringpb.TypedValue_Int64Value{Int64Value: v}},
			}},
		})
	}
	bucketEnd := func(t time.Time) time.Time { return t.Truncate(time.Minute).Add(time.Minute) }
	for _, j := range w.jobs {
		if j.key.Project != project {
			continue
		}
		// Completions whose bucket ends in (start, end]: completed in [start, end) at minute grain.
		lo := sort.Search(len(j.byEnd), func(i int) bool { return bucketEnd(j.byEnd[i].completed).After(start) })
		switch {
		case strings.Contains(filter, metricCompletedExecutions):
			counts := map[string]int64{}
			for _, x := range j.byEnd[lo:] {
				if bucketEnd(x.completed).After(end) {
					break
				}
				counts[x.result]++
			}
			for _, r := range []string{"succeeded", "failed", "cancelled"} {
				series(j, metricCompletedExecutions, map[string]string{"result": r}, counts[r])
			}
		case strings.Contains(filter, metricCompletedAttempts):
			var n int64
			for _, x := range j.byEnd[lo:] {
				if bucketEnd(x.completed).After(end) {
					break
				}
				n += int64(x.retried)
				if x.result == "failed" {
					n++
				}
			}
			series(j, metricCompletedAttempts, map[string]string{}, n)
		case strings.Contains(filter, metricRunningExecutions):
			running := func(x *simExec) bool {
				return !x.started.After(end) && (x.completed.IsZero() || x.completed.After(start))
			}
			var n int64
			for _, x := range j.long {
				if running(x) {
					n++
				}
			}
			i := sort.Search(len(j.execs), func(i int) bool { return j.execs[i].created.After(end) })
			for k := i - 1; k >= 0 && j.execs[k].created.After(start.Add(-time.Hour)); k-- {
				if x := j.execs[k]; running(x) && !slices.Contains(j.long, x) {
					n++
				}
			}
			series(j, metricRunningExecutions, map[string]string{}, n)
		}
	}
	return out, 1, nil
}

// getSchedulerJob shows each job's Scheduler job as enabled and fine, its last attempt at the
// job's latest slot-like minute: the replays judge the executions, not the Scheduler.
func (w *world) getSchedulerJob(_ context.Context, name string) (*schedulerpb.Job, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, j := range w.jobs {
		if j.key.Name() == name && !j.created.After(w.now) && (j.deleted.IsZero() || j.deleted.After(w.now)) {
			return &schedulerpb.Job{Name: name, State: schedulerpb.Job_ENABLED, Status: &spb.Status{}, LastAttemptTime: timestamppb.New(w.now.Truncate(time.Minute))}, nil
		}
	}
	return nil, status.Errorf(codes.NotFound, "scheduler.GetJob %s: not found", name)
}
