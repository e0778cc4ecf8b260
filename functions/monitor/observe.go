package monitor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"cloud.google.com/go/monitoring/apiv3/v2/monitoringpb"
	"cloud.google.com/go/run/apiv2/runpb"
	"golang.org/x/sync/errgroup"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"runwayjobs.dev/shared/desired"
	"runwayjobs.dev/shared/detect"
	"runwayjobs.dev/shared/inventory"
	"runwayjobs.dev/shared/platform"
	"runwayjobs.dev/shared/state"
)

// The Cloud Run job metrics the monitor reads.
const (
	metricCompletedExecutions = "run.googleapis.com/job/completed_execution_count"
	metricCompletedAttempts   = "run.googleapis.com/job/completed_task_attempt_count"
	metricRunningExecutions   = "run.googleapis.com/job/running_executions"
)

// project is one GCP project of the inventory and the regions its job workloads live in.
type project struct {
	id        string
	regions   []string
	workloads map[string]inventory.Workload
}

// projectsOf groups the inventory's job workloads by project, in inventory order.
func projectsOf(inv *inventory.Inventory) []project {
	var out []project
	index := map[string]int{}
	for _, w := range inv.Jobs() {
		i, ok := index[w.GCPProject]
		if !ok {
			i = len(out)
			index[w.GCPProject] = i
			out = append(out, project{id: w.GCPProject, workloads: map[string]inventory.Workload{}})
		}
		p := &out[i]
		p.workloads[w.Name] = w
		for _, r := range w.Regions {
			if !slices.Contains(p.regions, r) {
				p.regions = append(p.regions, r)
			}
		}
	}
	return out
}

// observeJobs lists the Runway-managed jobs of p. Any failure fails the whole list: a job
// missing from it would be forgotten with its open incident.
func (h *Handler) observeJobs(ctx context.Context, p project) ([]detect.Observation, error) {
	lists := make([][]*runpb.Job, len(p.regions))
	g, gctx := errgroup.WithContext(ctx)
	for i, region := range p.regions {
		g.Go(func() error {
			js, err := h.cloud.listJobs(gctx, p.id, region)
			lists[i] = js
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	total := 0
	for _, list := range lists {
		total += len(list)
	}
	obs := make([]detect.Observation, 0, total)
	byWorkload := make(map[string][]int, total)
	raw := make([]*runpb.Job, 0, total) // raw[i] is the Cloud Run job of obs[i]
	for _, list := range lists {
		for _, rj := range list {
			j, ok, err := jobOf(rj, &h.settings)
			if err != nil {
				h.log.Warn().Err(err).Str("job", rj.GetName()).Msg("job not monitored")
				continue
			}
			if !ok {
				continue
			}
			w, known := p.workloads[j.Settings.Workload]
			j.Channels = slices.Clone(j.Settings.Channels)
			if len(j.Channels) == 0 && known {
				j.Channels = slices.Clone(w.Notifications.Channels)
			}
			if len(j.Channels) == 0 {
				j.Channels = slices.Clone(h.platform)
			}
			byWorkload[j.Settings.Workload] = append(byWorkload[j.Settings.Workload], len(obs))
			obs = append(obs, detect.Observation{Job: j})
			raw = append(raw, rj)
		}
	}
	// The slots of a workload belong to the copy the trigger runs them on: its home
	// (desired.Place); a copy a region move left is watched for its executions only.
	for workload, idx := range byWorkload {
		owner := idx[0]
		if w, ok := p.workloads[workload]; ok {
			copies := make([]*runpb.Job, len(idx))
			for k, i := range idx {
				copies[k] = raw[i]
			}
			pl := desired.Place(w, copies)
			for _, i := range idx {
				if raw[i] == pl.Home {
					owner = i
				}
			}
			for _, s := range pl.Strays {
				h.log.Warn().Str("workload", workload).Str("job", pl.Home.GetName()).Str("stray", s.GetName()).Msg("a region move left a copy of the job: its slots are expected of the home copy only")
			}
		}
		obs[owner].Job.SlotOwner = true
	}
	return obs, nil
}

// metricRequests are the monitor's ListTimeSeries calls for project over (w, t]: a constant
// number whatever the number of jobs, each aggregated to one point per job (and result).
func metricRequests(project string, w, t time.Time) []*monitoringpb.ListTimeSeriesRequest {
	period := max(t.Sub(w), time.Minute)
	interval := &monitoringpb.TimeInterval{StartTime: timestamppb.New(w), EndTime: timestamppb.New(t)}
	req := func(filter string, aligner monitoringpb.Aggregation_Aligner, groupBy ...string) *monitoringpb.ListTimeSeriesRequest {
		return &monitoringpb.ListTimeSeriesRequest{
			Name:     "projects/" + project,
			Filter:   filter,
			Interval: interval,
			Aggregation: &monitoringpb.Aggregation{
				AlignmentPeriod:    durationpb.New(period),
				PerSeriesAligner:   aligner,
				CrossSeriesReducer: monitoringpb.Aggregation_REDUCE_SUM,
				GroupByFields:      append([]string{"resource.label.job_name", "resource.label.location"}, groupBy...),
			},
			View:     monitoringpb.ListTimeSeriesRequest_FULL,
			PageSize: 100_000,
		}
	}
	of := func(metric string) string {
		return fmt.Sprintf(`metric.type = %q AND resource.type = "cloud_run_job"`, metric)
	}
	return []*monitoringpb.ListTimeSeriesRequest{
		req(of(metricCompletedExecutions), monitoringpb.Aggregation_ALIGN_SUM, "metric.label.result"),
		req(of(metricCompletedAttempts)+` AND metric.label.result = "failed"`, monitoringpb.Aggregation_ALIGN_SUM),
		req(of(metricRunningExecutions), monitoringpb.Aggregation_ALIGN_MAX),
	}
}

// observeMetrics fills each observation's Activity from the metrics over (w, t].
func (h *Handler) observeMetrics(ctx context.Context, project string, obs []detect.Observation, w, t time.Time) error {
	reqs := metricRequests(project, w, t)
	results := make([][]*monitoringpb.TimeSeries, len(reqs))
	ctx, cancel := context.WithTimeout(ctx, h.cfg.CallTimeout)
	defer cancel()
	g, gctx := errgroup.WithContext(ctx)
	for i, req := range reqs {
		g.Go(func() error {
			s, _, err := h.cloud.listTimeSeries(gctx, req)
			results[i] = s
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	index := make(map[string]int, len(obs))
	for i, o := range obs {
		index[o.Job.Key.Location+"/"+o.Job.Key.Job] = i
	}
	for m, series := range results {
		for _, ts := range series {
			rl := ts.GetResource().GetLabels()
			i, ok := index[rl["location"]+"/"+rl["job_name"]]
			if !ok {
				continue // not a Runway job
			}
			var sum, peak int64
			for _, p := range ts.GetPoints() {
				v := p.GetValue().GetInt64Value()
				sum += v
				peak = max(peak, v)
			}
			a := &obs[i].Activity
			switch m {
			case 0:
				switch ts.GetMetric().GetLabels()["result"] {
				case "succeeded":
					a.Succeeded += sum
				case "failed":
					a.Failed += sum
				default:
					a.Cancelled += sum
				}
			case 1:
				a.FailedAttempts += sum
			case 2:
				a.Running = max(a.Running, peak)
			}
		}
	}
	return nil
}

// observeExecutions reads the executions of the jobs that need it, Workers at a time.
func (h *Handler) observeExecutions(ctx context.Context, st *detect.State, obs []detect.Observation, w, t time.Time) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(h.cfg.Workers)
	for i := range obs {
		need, after := detect.NeedsExecutions(st, obs[i], w, t, h.detectConfig())
		if !need {
			continue
		}
		g.Go(func() error {
			xs, err := h.cloud.listExecutions(gctx, obs[i].Job.Key.Name(), after)
			if err != nil {
				return err
			}
			out := make([]detect.Execution, len(xs))
			for k, x := range xs {
				out[k] = executionOf(x)
			}
			obs[i].Executions, obs[i].Read = out, true
			return nil
		})
	}
	return g.Wait()
}

// observeSlots reads the trigger's records of the slots no known execution serves.
func (h *Handler) observeSlots(ctx context.Context, st *detect.State, obs []detect.Observation, t time.Time) error {
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(h.cfg.Workers)
	for i := range obs {
		slots := detect.Unserved(st, obs[i], t, h.detectConfig())
		if len(slots) == 0 {
			continue
		}
		workload := obs[i].Job.Settings.Workload
		g.Go(func() error {
			recs := map[int64]detect.SlotRecord{}
			for _, s := range slots {
				obj, err := h.store.Get(gctx, platform.SlotRecordKey(workload, s))
				if errors.Is(err, state.ErrNotFound) {
					continue
				}
				if err != nil {
					return err
				}
				var r platform.RunRecord
				if err := json.Unmarshal(obj.Data, &r); err != nil {
					h.log.Warn().Err(err).Str("workload", workload).Time("slot", s).Msg("unreadable slot record")
					continue
				}
				recs[s.Unix()] = detect.SlotRecord{Found: true, Outcome: r.Outcome, Reason: r.Reason}
			}
			mu.Lock()
			obs[i].Slots = recs
			mu.Unlock()
			return nil
		})
	}
	return g.Wait()
}
