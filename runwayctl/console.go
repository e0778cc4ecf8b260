package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"time"

	"cloud.google.com/go/run/apiv2/runpb"
	"github.com/spf13/cobra"
	"google.golang.org/api/iterator"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"runwayjobs.dev/runwayctl/console"
	"runwayjobs.dev/shared/detect"
	"runwayjobs.dev/shared/inventory"
	"runwayjobs.dev/shared/notify"
	"runwayjobs.dev/shared/platform"
	"runwayjobs.dev/shared/state"
)

// consoleOptions are the options of runwayctl console.
type consoleOptions struct {
	addr   string
	alerts string // the alert log (JSON lines of alertLogLine), "" for none
}

func newConsoleCmd(e *cmdEnv) *cobra.Command {
	var o consoleOptions
	cmd := &cobra.Command{
		Use:   "console",
		Short: "Serve a read-only web console: every workload, its slots over 30 days, executions, tasks, logs, alerts",
		Long: `Serve the Runway Jobs console on --addr: every job workload of the inventory (schedule in
words and time zone, next runs, last result, open incident), and for one workload the history
of its slots over 30 days, its executions and their tasks and logs, the monitor's incidents,
the alerts sent (from --alerts, the local platform's alert log) and the manifest as deployed.
It reads through the same clients and store as runwayctl status: the local platform when
RUNWAY_EMULATOR_HOST is set, Google Cloud with Application Default Credentials otherwise.
Read-only: it never starts, changes or deletes anything.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runConsole(cmd.Context(), e, o)
		},
	}
	e.addInventoryFlag(cmd)
	cmd.Flags().StringVar(&o.addr, "addr", "127.0.0.1:8086", "host:port to serve on (port 0: any free port)")
	cmd.Flags().StringVar(&o.alerts, "alerts", "", "the alert log to show the alerts sent from (runwayctl dev's alerts.jsonl)")
	return cmd
}

// runConsole serves the console until ctx ends.
func runConsole(ctx context.Context, e *cmdEnv, o consoleOptions) error {
	if _, err := e.loadInventory(ctx); err != nil {
		return err
	}
	srv, url, err := startConsole(e, o)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.out, "runwayctl console: %s\n", url)
	<-ctx.Done()
	return srv.Close()
}

// startConsole serves the console of e on o.addr and returns the server and its URL.
func startConsole(e *cmdEnv, o consoleOptions) (*http.Server, string, error) {
	l, err := net.Listen("tcp", o.addr)
	if err != nil {
		return nil, "", fmt.Errorf("console listen %s: %w", o.addr, err)
	}
	log := slog.New(slog.NewTextHandler(e.errOut, nil))
	srv := &http.Server{Handler: console.New(&consoleSource{e: e, alerts: o.alerts}, log), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(l)
	return srv, "http://" + l.Addr().String() + "/", nil
}

// consoleSource reads the platform for the console as runwayctl status does.
type consoleSource struct {
	e      *cmdEnv
	alerts string
}

// Bounds of what one page reads.
const (
	consoleMaxExecutions = 50_000    // executions of one workload in the window
	consoleMaxLog        = 256 << 10 // bytes of one task's output
	consoleMaxAlertLine  = 1 << 20   // bytes of one line of the alert log
	consoleMaxAlerts     = 500       // alerts of one workload kept, the newest
)

func (s *consoleSource) Now() time.Time { return s.e.now() }

func (s *consoleSource) Workloads(ctx context.Context) ([]console.Summary, error) {
	inv, err := s.e.loadInventory(ctx)
	if err != nil {
		return nil, err
	}
	store, err := s.e.optionalStore(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", state.EnvVar, err)
	}
	now := s.e.now()
	monitors := map[string]*detect.State{}
	var out []console.Summary
	for _, w := range inv.Jobs() {
		cl, err := s.e.gcpClients(ctx, w.GCPProject)
		if err != nil {
			return nil, err
		}
		st, err := loadStatus(ctx, cl, w, store, now, 1)
		if err != nil {
			return nil, err
		}
		sum := summaryOf(st)
		if _, ok := monitors[w.GCPProject]; !ok {
			if monitors[w.GCPProject], err = readMonitorState(ctx, store, w.GCPProject); err != nil {
				return nil, err
			}
		}
		if js := jobStateOf(monitors[w.GCPProject], w.Name); js != nil {
			sum.Incident = incidentOf(js.Incident)
		}
		out = append(out, sum)
	}
	return out, nil
}

// summaryOf is the console's summary of what status read; the last result is status's.
func summaryOf(st workloadStatus) console.Summary {
	sum := console.Summary{Name: st.Workload, Deployed: st.Deployed, Schedule: st.Schedule, TimeZone: st.TimeZone,
		Describe: st.Describe, Suspended: st.Suspended, Next: st.Next}
	if len(st.Executions) > 0 {
		x := consoleExecution(st.Executions[0])
		sum.Last = &x
	}
	return sum
}

func consoleExecution(x executionStatus) console.Execution {
	return console.Execution{ID: x.Name, Trigger: x.Trigger, Slot: x.Slot, Result: x.Result, Started: x.Started,
		Duration: x.Duration, LogURI: x.LogURI, TaskCount: x.TaskCount, Retried: x.Retried}
}

func (s *consoleSource) Workload(ctx context.Context, name string, from time.Time) (*console.Workload, error) {
	w, err := s.workload(ctx, name)
	if err != nil {
		return nil, err
	}
	store, err := s.e.optionalStore(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", state.EnvVar, err)
	}
	cl, err := s.e.gcpClients(ctx, w.GCPProject)
	if err != nil {
		return nil, err
	}
	st, err := loadStatus(ctx, cl, w, store, s.e.now(), 0)
	if err != nil {
		return nil, err
	}
	out := &console.Workload{Summary: summaryOf(st), Project: w.GCPProject, Records: st.NotRun}
	job, err := findJob(ctx, cl, w)
	if err != nil || job == nil {
		return out, err
	}
	out.Job = job.Name
	out.Region = strings.Split(job.Name, "/")[3]
	set, _ := platform.SettingsOf(job.Annotations)
	a := job.Annotations
	out.Manifest = console.Manifest{Image: st.Image, ImageTag: a[platform.AnnotationImageTag], Commit: a[platform.AnnotationCommit],
		PipelineID: a[platform.AnnotationPipelineID], PipelineURL: a[platform.AnnotationPipelineURL], Ref: a[platform.AnnotationRef],
		ManifestHash: a[platform.AnnotationManifestHash], Settings: set}
	out.Deadline = detect.ExpectedRuntime(set) + set.Monitoring.Grace // the monitor's missed-slot deadline
	it := cl.Executions.ListExecutions(ctx, &runpb.ListExecutionsRequest{Parent: job.Name, PageSize: 1000})
	for len(out.Executions) < consoleMaxExecutions {
		x, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("run.ListExecutions %s: %w", job.Name, err)
		}
		if x.CreateTime.AsTime().Before(from) {
			break // newest first: the rest are older still
		}
		out.Executions = append(out.Executions, consoleExecution(executionOf(x)))
	}
	if len(out.Executions) > 0 {
		out.Last = &out.Executions[0]
	}
	ms, err := readMonitorState(ctx, store, w.GCPProject)
	if err != nil {
		return nil, err
	}
	if js := jobStateOf(ms, w.Name); js != nil {
		out.Incident = incidentOf(js.Incident)
		if js.Resolved != nil {
			out.Resolved = &console.Span{From: js.Resolved.From, To: js.Resolved.To}
		}
	}
	if ms != nil {
		for _, p := range ms.Outbox {
			if p.Alert.Workload == w.Name {
				out.Pending = append(out.Pending, p.Alert)
			}
		}
	}
	if s.alerts != "" {
		out.AlertLog = s.alerts
		if out.Alerts, err = readAlertLog(s.alerts, w.Name); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// workload is the job workload name, or console.ErrNotFound.
func (s *consoleSource) workload(ctx context.Context, name string) (inventory.Workload, error) {
	w, err := s.e.job(ctx, name, exitFailed)
	var ee exitError
	if errors.As(err, &ee) {
		return w, fmt.Errorf("%w: %w", console.ErrNotFound, ee.err)
	}
	return w, err
}

// executionID is what an execution id looks like (Cloud Run: a job id and a suffix).
var executionID = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,99}$`)

func (s *consoleSource) Execution(ctx context.Context, workload, id string) (*console.ExecutionDetail, error) {
	if !executionID.MatchString(id) {
		return nil, fmt.Errorf("execution %q: %w", id, console.ErrNotFound)
	}
	w, err := s.workload(ctx, workload)
	if err != nil {
		return nil, err
	}
	cl, err := s.e.gcpClients(ctx, w.GCPProject)
	if err != nil {
		return nil, err
	}
	job, err := findJob(ctx, cl, w)
	if err != nil {
		return nil, err
	}
	if job == nil {
		return nil, fmt.Errorf("%s is not deployed: %w", w.Name, console.ErrNotFound)
	}
	name := job.Name + "/executions/" + id
	x, err := cl.Executions.GetExecution(ctx, &runpb.GetExecutionRequest{Name: name})
	if status.Code(err) == codes.NotFound {
		return nil, fmt.Errorf("execution %s: %w", id, console.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("run.GetExecution %s: %w", name, err)
	}
	set, _ := platform.SettingsOf(job.Annotations)
	out := &console.ExecutionDetail{Workload: w.Name, TimeZone: set.TimeZone, Name: name, Execution: consoleExecution(executionOf(x))}
	it := cl.Tasks.ListTasks(ctx, &runpb.ListTasksRequest{Parent: name})
	for len(out.Tasks) < 10_000 { // Cloud Run's most tasks per execution
		t, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("run.ListTasks %s: %w", name, err)
		}
		task := console.Task{Index: t.Index, Result: taskResult(t), ExitCode: t.GetLastAttemptResult().GetExitCode(), Retried: t.Retried,
			Started: t.GetStartTime().AsTime(), LogURI: t.LogUri}
		if t.StartTime == nil {
			task.Started = time.Time{}
		}
		if t.CompletionTime != nil {
			task.Completed = t.CompletionTime.AsTime()
		}
		if s.emulatorLogs(w.GCPProject, x.LogUri) && len(out.Tasks) < 20 {
			var b cappedBuffer
			b.max = consoleMaxLog
			if err := copyEmulatorLogs(ctx, &b, x.LogUri, int(t.Index)); err != nil && !errors.Is(err, errLogCapped) {
				return nil, err
			}
			task.Log, task.Truncated = b.String(), b.capped
		}
		out.Tasks = append(out.Tasks, task)
	}
	return out, nil
}

// emulatorLogs reports whether uri is served by the local platform's emulator (whose output
// the console shows inline), as runwayctl logs decides.
func (s *consoleSource) emulatorLogs(project, uri string) bool {
	host := s.e.gcpConfig(project).EmulatorHost
	return host != "" && strings.HasPrefix(uri, "http://"+host+"/")
}

// taskResult is a task's Completed condition in words.
func taskResult(t *runpb.Task) string {
	for _, c := range t.Conditions {
		if c.Type != "Completed" {
			continue
		}
		switch c.State {
		case runpb.Condition_CONDITION_SUCCEEDED:
			return "succeeded"
		case runpb.Condition_CONDITION_FAILED:
			if c.GetExecutionReason() == runpb.Condition_CANCELLED {
				return "cancelled"
			}
			return "failed"
		}
	}
	if t.StartTime != nil {
		return "running"
	}
	return "pending"
}

// errLogCapped ends a copy into a full cappedBuffer.
var errLogCapped = errors.New("log capped")

// cappedBuffer keeps the first max bytes written to it.
type cappedBuffer struct {
	strings.Builder
	max    int
	capped bool
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.Len(); len(p) > room {
		b.Builder.Write(p[:room])
		b.capped = true
		return room, errLogCapped
	}
	return b.Builder.Write(p)
}

// readMonitorState reads the monitor's state of project; nil without a store or state.
func readMonitorState(ctx context.Context, store state.Store, project string) (*detect.State, error) {
	if store == nil {
		return nil, nil
	}
	obj, err := store.Get(ctx, platform.MonitorStateKey(project))
	if errors.Is(err, state.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", platform.MonitorStateKey(project), err)
	}
	var st detect.State
	if err := json.Unmarshal(obj.Data, &st); err != nil {
		return nil, fmt.Errorf("read %s: %w", platform.MonitorStateKey(project), err)
	}
	return &st, nil
}

// jobStateOf is the monitor's state of workload's job (its home copy's, when several regions
// have one: the one with an incident).
func jobStateOf(st *detect.State, workload string) *detect.JobState {
	if st == nil {
		return nil
	}
	var found *detect.JobState
	for _, js := range st.Jobs {
		if js.Workload == workload && (found == nil || js.Incident != nil) {
			found = js
		}
	}
	return found
}

func incidentOf(in *detect.Incident) *console.Incident {
	if in == nil {
		return nil
	}
	return &console.Incident{Kind: string(in.Kind), Since: in.Since, LastAlert: in.LastAlert,
		Execution: in.Execution[strings.LastIndexByte(in.Execution, '/')+1:], Slot: in.Slot, LogURL: in.LogURL}
}

// alertLogLine is one line of the alert log runwayctl dev's alert sink writes.
type alertLogLine struct {
	Channel string       `json:"channel"`
	Alert   notify.Alert `json:"alert"`
}

// readAlertLog returns the alerts of workload in the alert log at path, oldest first, the
// newest consoleMaxAlerts of them. A missing file has none.
func readAlertLog(path, workload string) ([]console.SentAlert, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read alert log: %w", err)
	}
	defer f.Close()
	var out []console.SentAlert
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), consoleMaxAlertLine)
	for sc.Scan() {
		var l alertLogLine
		if json.Unmarshal(sc.Bytes(), &l) != nil || l.Alert.Workload != workload {
			continue
		}
		out = append(out, console.SentAlert{Channel: l.Channel, Alert: l.Alert})
		if len(out) > consoleMaxAlerts {
			out = out[1:]
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read alert log %s: %w", path, err)
	}
	return out, nil
}

// devConsole is the console runwayctl dev serves over the local platform.
type devConsole struct {
	env *cmdEnv
	srv *http.Server
	url string
}

// startConsole serves the console on addr over the local platform: the functions' environment
// (emulator, store, inventory) and the alert sink's log.
func (p *devPlatform) startConsole(addr string) error {
	vars := map[string]string{}
	for _, kv := range p.env {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	e := newCmdEnv(io.Discard, os.Stderr, func(k string) string { return vars[k] }, time.Now)
	srv, url, err := startConsole(e, consoleOptions{addr: addr, alerts: p.sink.file})
	if err != nil {
		e.Close()
		return err
	}
	p.console = &devConsole{env: e, srv: srv, url: url}
	return nil
}

func (c *devConsole) close() {
	if c != nil {
		c.srv.Close()
		c.env.Close()
	}
}
