package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"cloud.google.com/go/run/apiv2/runpb"
	"cloud.google.com/go/scheduler/apiv1/schedulerpb"
	"github.com/spf13/cobra"
	"google.golang.org/api/iterator"

	"runwayjobs.dev/shared/desired"
	"runwayjobs.dev/shared/gcp/allclients"
	"runwayjobs.dev/shared/inventory"
	"runwayjobs.dev/shared/platform"
	"runwayjobs.dev/shared/schedule"
	"runwayjobs.dev/shared/state"
)

// workloadStatus is what `runwayctl status` shows of one workload.
type workloadStatus struct {
	Workload   string               `json:"workload"`
	Job        string               `json:"job,omitempty"`
	Deployed   bool                 `json:"deployed"`
	Image      string               `json:"image,omitempty"`
	Schedule   string               `json:"schedule,omitempty"`
	TimeZone   string               `json:"time_zone,omitempty"`
	Describe   string               `json:"description,omitempty"`
	Suspended  bool                 `json:"suspended"`
	Next       []time.Time          `json:"next,omitempty"`
	Executions []executionStatus    `json:"executions,omitempty"`
	NotRun     []platform.RunRecord `json:"not_run,omitempty"` // skipped and missed slots, refused requests
}

// executionStatus is one execution of a workload.
type executionStatus struct {
	Name      string     `json:"name"`
	Trigger   string     `json:"trigger"`
	Slot      *time.Time `json:"scheduled_time,omitempty"`
	Result    string     `json:"result"` // running | succeeded | failed | cancelled
	Started   time.Time  `json:"started"`
	Duration  string     `json:"duration,omitempty"`
	LogURI    string     `json:"log_uri,omitempty"`
	TaskCount int32      `json:"task_count"`
	Retried   int32      `json:"retried"`
}

// statusOptions are the options of runwayctl status.
type statusOptions struct {
	workload string // "" for every job workload
	format   *formatFlag
	last     int
}

func newStatusCmd(e *cmdEnv) *cobra.Command {
	var o statusOptions
	cmd := &cobra.Command{
		Use:   "status [WORKLOAD]",
		Short: "Show a job's schedule, next runs, last executions and skipped or missed slots",
		Long: `Without a workload: one line per job workload of the inventory. With one: its schedule in
words with the next runs (on the platform's clock: the emulator's under runwayctl dev
--manual-clock), whether it is suspended, its last executions (result, duration and trigger:
manual or the slot they served), and, among its newest 100 slots, those the trigger skipped
(Forbid, suspend) or recorded as missed (starting deadline), with the run requests it refused,
read from RUNWAY_STATE when it is set. --format json
for scripts. Exit status 1 when the workload is not a job of the inventory.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				o.workload = args[0]
			}
			return runStatus(cmd.Context(), e, o)
		},
	}
	e.addInventoryFlag(cmd)
	o.format = addFormatFlag(cmd, "output format: text or json", "text", "json")
	cmd.Flags().IntVar(&o.last, "last", 10, "how many executions to show")
	return cmd
}

// runStatus prints the status of o's workload, or of every job workload.
func runStatus(ctx context.Context, e *cmdEnv, o statusOptions) error {
	var workloads []inventory.Workload
	if o.workload != "" {
		w, err := e.job(ctx, o.workload, exitFailed)
		if err != nil {
			return err
		}
		workloads = []inventory.Workload{w}
	} else {
		inv, err := e.loadInventory(ctx)
		if err != nil {
			return err
		}
		workloads = inv.Jobs()
	}
	store, err := e.optionalStore(ctx) // without RUNWAY_STATE: no skipped/missed slots
	if err != nil {
		return fmt.Errorf("%s: %w", state.EnvVar, err)
	}
	now := e.now()
	var all []workloadStatus
	for _, w := range workloads {
		cl, err := e.gcpClients(ctx, w.GCPProject)
		if err != nil {
			return err
		}
		s, err := loadStatus(ctx, cl, w, store, now, o.last)
		if err != nil {
			return err
		}
		all = append(all, s)
	}
	if o.format.value == "json" {
		enc := json.NewEncoder(e.out)
		enc.SetIndent("", "  ")
		return enc.Encode(all)
	}
	if o.workload != "" {
		printStatus(e.out, all[0])
	} else {
		printStatusTable(e.out, all)
	}
	return nil
}

// findJob returns the workload's Cloud Run job: its home copy (desired.Place), the one the
// trigger runs; nil when it has none.
func findJob(ctx context.Context, cl *allclients.Clients, w inventory.Workload) (*runpb.Job, error) {
	p, err := desired.Locate(ctx, cl.Jobs, w)
	if err != nil {
		return nil, fmt.Errorf("locate %s: %w", w.Name, err)
	}
	return p.Home, nil
}

// loadStatus reads the status of w through cl, with now the platform's time.
func loadStatus(ctx context.Context, cl *allclients.Clients, w inventory.Workload, store state.Store, now time.Time, last int) (workloadStatus, error) {
	s := workloadStatus{Workload: w.Name}
	job, err := findJob(ctx, cl, w)
	if err != nil || job == nil {
		return s, err
	}
	s.Job, s.Deployed = job.Name, true
	if cs := job.GetTemplate().GetTemplate().GetContainers(); len(cs) == 1 {
		s.Image = cs[0].Image
	}
	var sched *schedule.Schedule
	if set, err := platform.SettingsOf(job.Annotations); err == nil && set.Schedule != "" {
		s.Schedule, s.TimeZone, s.Suspended = set.Schedule, set.TimeZone, set.Suspend
		if sched, err = schedule.Parse(set.Schedule, set.TimeZone); err == nil {
			s.Describe = sched.Describe()
			s.Next = sched.NextN(now, 3)
		} else {
			sched = nil
		}
		if sj, err := cl.Scheduler.GetJob(ctx, &schedulerpb.GetJobRequest{Name: job.Name}); err == nil {
			s.Suspended = sj.State == schedulerpb.Job_PAUSED
		}
	}
	it := cl.Executions.ListExecutions(ctx, &runpb.ListExecutionsRequest{Parent: job.Name})
	for len(s.Executions) < last {
		x, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			return s, fmt.Errorf("run.ListExecutions %s: %w", job.Name, err)
		}
		s.Executions = append(s.Executions, executionOf(x))
	}
	if store != nil {
		if s.NotRun, err = notRunRecords(ctx, store, w.Name, sched, now); err != nil {
			return s, err
		}
	}
	return s, nil
}

// statusSlots is how many of a workload's newest slots status reads the records of.
const statusSlots = 100

// notRunRecords returns the records of w that did not start a run (skipped and missed slots,
// refused requests): of the newest statusSlots slots of sched (nil: none), and of every run
// request kept. The slot claims are read from the key of the oldest of those slots on, not
// listed from the start: a minutely job keeps 46,000 of them (platform.RecordRetention), and
// reading them all made status and the console cost what the job's history costs.
func notRunRecords(ctx context.Context, store state.Store, workload string, sched *schedule.Schedule, now time.Time) ([]platform.RunRecord, error) {
	var keys []string
	page := func(prefix, after string, stopAt string) error {
		for {
			ks, err := store.ListPage(ctx, prefix, after, 500)
			if err != nil {
				return err
			}
			for _, k := range ks {
				if stopAt != "" && k >= stopAt {
					return nil
				}
				keys = append(keys, k)
			}
			if len(ks) < 500 {
				return nil
			}
			after = ks[len(ks)-1]
		}
	}
	runs := platform.RunRecordPrefix + workload + "/"
	// Run requests sorting before the slots, the newest slots, run requests sorting after them.
	if err := page(runs, "", platform.SlotRecordPrefix(workload)); err != nil {
		return nil, err
	}
	if sched != nil {
		if oldest, ok := oldestOfNewestSlots(sched, now, statusSlots); ok {
			if err := page(platform.SlotRecordPrefix(workload), platform.SlotRecordKey(workload, oldest.Add(-time.Minute)), ""); err != nil {
				return nil, err
			}
		}
	}
	if err := page(runs, platform.AfterSlotRecords(workload), ""); err != nil {
		return nil, err
	}
	var out []platform.RunRecord
	for _, k := range keys {
		o, err := store.Get(ctx, k)
		switch {
		case errors.Is(err, state.ErrNotFound):
			continue // deleted since it was listed
		case err != nil:
			return nil, fmt.Errorf("read %s: %w", k, err)
		}
		var r platform.RunRecord
		if json.Unmarshal(o.Data, &r) == nil && r.Outcome != platform.RunStarted && r.Outcome != platform.RunClaimed {
			out = append(out, r)
		}
	}
	return out, nil
}

// oldestOfNewestSlots returns the oldest of the n newest slots of sched at or before now, within
// the records' retention; ok is false when it has none there. It looks back an hour, then twice
// as far each time, so its work follows n, not the retention.
func oldestOfNewestSlots(sched *schedule.Schedule, now time.Time, n int) (time.Time, bool) {
	for back := time.Hour; ; back *= 2 {
		back = min(back, platform.RecordRetention)
		var slots []time.Time // the newest n, oldest first
		for t := sched.Next(now.Add(-back)); !t.IsZero() && !t.After(now); t = sched.Next(t) {
			if len(slots) == n {
				slots = slots[1:]
			}
			slots = append(slots, t)
		}
		if len(slots) == n || back == platform.RecordRetention {
			if len(slots) == 0 {
				return time.Time{}, false
			}
			return slots[0], true
		}
	}
}

func executionOf(x *runpb.Execution) executionStatus {
	e := executionStatus{Name: x.Name[strings.LastIndexByte(x.Name, '/')+1:], Trigger: platform.TriggerManual, Result: "running",
		Started: x.CreateTime.AsTime(), LogURI: x.LogUri, TaskCount: x.TaskCount, Retried: x.RetriedCount}
	if cs := x.GetTemplate().GetContainers(); len(cs) == 1 {
		for _, v := range cs[0].Env {
			switch v.Name {
			case platform.EnvTrigger:
				e.Trigger = v.GetValue()
			case platform.EnvScheduledTime:
				if t, err := time.Parse(time.RFC3339, v.GetValue()); err == nil {
					e.Slot = &t
				}
			}
		}
	}
	if x.StartTime != nil {
		e.Started = x.StartTime.AsTime()
	}
	if x.CompletionTime != nil {
		d := x.CompletionTime.AsTime().Sub(e.Started)
		if d < time.Second {
			e.Duration = d.Round(time.Millisecond).String()
		} else {
			e.Duration = d.Round(time.Second).String()
		}
		switch {
		case x.CancelledCount > 0:
			e.Result = "cancelled"
		case x.FailedCount > 0 || x.SucceededCount < x.TaskCount:
			e.Result = "failed"
		default:
			e.Result = "succeeded"
		}
	}
	return e
}

func printStatus(out io.Writer, s workloadStatus) {
	fmt.Fprintf(out, "%s\n", s.Workload)
	if !s.Deployed {
		fmt.Fprintln(out, "  not deployed")
		return
	}
	fmt.Fprintf(out, "  job        %s\n  image      %s\n", s.Job, s.Image)
	if s.Schedule == "" {
		fmt.Fprintln(out, "  schedule   on demand only")
	} else {
		fmt.Fprintf(out, "  schedule   %s (%s, %s)\n", s.Describe, s.Schedule, s.TimeZone)
		if s.Suspended {
			fmt.Fprintln(out, "  state      SUSPENDED: scheduled runs are ignored")
		} else {
			var next []string
			for _, t := range s.Next {
				next = append(next, t.UTC().Format(time.RFC3339))
			}
			fmt.Fprintf(out, "  next       %s\n", strings.Join(next, ", "))
		}
	}
	if len(s.Executions) == 0 {
		fmt.Fprintln(out, "  no executions yet")
	} else {
		fmt.Fprintln(out)
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  EXECUTION\tTRIGGER\tRESULT\tSTARTED\tDURATION")
		for _, e := range s.Executions {
			trig := e.Trigger
			if e.Slot != nil {
				trig += " " + e.Slot.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", e.Name, trig, e.Result, e.Started.UTC().Format(time.RFC3339), e.Duration)
		}
		tw.Flush()
	}
	if len(s.NotRun) > 0 {
		fmt.Fprintln(out, "\n  not run:")
		for _, r := range s.NotRun {
			when := r.Time.UTC().Format(time.RFC3339)
			if !r.ScheduledTime.IsZero() {
				when = "slot " + r.ScheduledTime.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(out, "  %s  %s: %s\n", when, r.Outcome, r.Reason)
		}
	}
}

func printStatusTable(out io.Writer, all []workloadStatus) {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "WORKLOAD\tSCHEDULE\tNEXT\tLAST RUN\tRESULT")
	for _, s := range all {
		sched, next, lastRun, result := "on demand", "-", "-", "-"
		switch {
		case !s.Deployed:
			sched = "not deployed"
		case s.Schedule != "":
			sched = s.Schedule + " " + s.TimeZone
			if s.Suspended {
				next = "suspended"
			} else if len(s.Next) > 0 {
				next = s.Next[0].UTC().Format(time.RFC3339)
			}
		}
		if len(s.Executions) > 0 {
			lastRun, result = s.Executions[0].Started.UTC().Format(time.RFC3339), s.Executions[0].Result
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.Workload, sched, next, lastRun, result)
	}
	tw.Flush()
}

// logsOptions are the options of runwayctl logs.
type logsOptions struct {
	workload  string
	execution string // "" for the latest
	task      int    // -1 for every task
}

func newLogsCmd(e *cmdEnv) *cobra.Command {
	var o logsOptions
	cmd := &cobra.Command{
		Use:   "logs WORKLOAD [EXECUTION]",
		Short: "Print the output of an execution's tasks (default: the latest execution)",
		Long: `Print what an execution's task attempts wrote. On the local platform the output is read
from the emulator; against Google Cloud the command prints the execution's Cloud Logging link.
Exit status 1 when the workload is not a job of the inventory.`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.workload = args[0]
			if len(args) == 2 {
				o.execution = args[1]
			}
			return runLogs(cmd.Context(), e, o)
		},
	}
	e.addInventoryFlag(cmd)
	cmd.Flags().IntVar(&o.task, "task", -1, "only this task index")
	return cmd
}

// runLogs prints the output of o's execution, or its Cloud Logging link.
func runLogs(ctx context.Context, e *cmdEnv, o logsOptions) error {
	w, err := e.job(ctx, o.workload, exitFailed)
	if err != nil {
		return err
	}
	cl, err := e.gcpClients(ctx, w.GCPProject)
	if err != nil {
		return err
	}
	job, err := findJob(ctx, cl, w)
	if err != nil {
		return err
	}
	if job == nil {
		return fmt.Errorf("%s is not deployed", w.Name)
	}
	name := job.GetLatestCreatedExecution().GetName()
	if o.execution != "" {
		name = job.Name + "/executions/" + o.execution
	}
	if name == "" {
		return fmt.Errorf("%s has no executions yet", w.Name)
	}
	x, err := cl.Executions.GetExecution(ctx, &runpb.GetExecutionRequest{Name: name})
	if err != nil {
		return fmt.Errorf("run.GetExecution %s: %w", name, err)
	}
	host := e.gcpConfig(w.GCPProject).EmulatorHost
	if host == "" || !strings.HasPrefix(x.LogUri, "http://"+host+"/") {
		fmt.Fprintf(e.out, "logs of %s: %s\n", name, x.LogUri)
		return nil
	}
	return copyEmulatorLogs(ctx, e.out, x.LogUri, o.task)
}

// copyEmulatorLogs copies the output the emulator kept at uri (of one task, unless task < 0).
func copyEmulatorLogs(ctx context.Context, out io.Writer, uri string, task int) error {
	if task >= 0 {
		uri += fmt.Sprintf("?task=%d", task)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, uri, nil)
	if err != nil {
		return fmt.Errorf("read logs: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("read logs: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
		return fmt.Errorf("read logs %s: %s: %s", uri, resp.Status, strings.TrimSpace(string(b)))
	}
	_, err = io.Copy(out, resp.Body)
	return err
}
