package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/scheduler/apiv1/schedulerpb"
	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"runwayjobs.dev/shared/emulator"
	emuclock "runwayjobs.dev/shared/emulator/clock"
	"runwayjobs.dev/shared/gcp"
	"runwayjobs.dev/shared/gcp/allclients"
	"runwayjobs.dev/shared/inventory"
	"runwayjobs.dev/shared/manifest"
	"runwayjobs.dev/shared/platform"
	"runwayjobs.dev/shared/state"
)

// The local platform's own project, where the monitor's tick lives.
const (
	devPlatformProject = "runway-platform"
	devPlatformRegion  = "us-east1"
	devSinkSecretEnv   = "RUNWAY_DEV_SINK_SECRET"
	// devIngestLagEnv is the monitor's RUNWAY_MONITOR_INGEST_LAG: the user's value, or
	// devIngestLag (the emulator's metrics have no lag of their own).
	devIngestLagEnv = "RUNWAY_MONITOR_INGEST_LAG"
	devIngestLag    = "30s"
	// A function that dies is restarted after devRestartMin, doubling up to devRestartMax
	// while it keeps dying within devRestartReset of its start.
	devRestartMin   = 100 * time.Millisecond
	devRestartMax   = 10 * time.Second
	devRestartReset = 30 * time.Second
)

// devOptions configure `runwayctl dev`.
type devOptions struct {
	addr      string
	data      string
	functions string
	inventory string
	examples  string
	manual    bool
	start     string
	opDelay   time.Duration
	getenv    func(string) string // the user's environment
	console   string              // the console's host:port, "" for none
}

func newDevCmd(e *cmdEnv) *cobra.Command {
	var o devOptions
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run the whole Runway Jobs platform locally on the embedded emulator",
		Long: `Start, on loopback and in one command: the emulator (Cloud Run, Cloud Scheduler,
Monitoring, Pub/Sub), the deploy, trigger and monitor functions (each its own process, served
by the functions framework exactly as deployed), the topics and Eventarc-style push
subscriptions that wire them together, and the durable store. Then deploy the example jobs
and print what runs where, and the commands to try next. Ctrl-C stops everything.

A function process that dies is started again on the same address, as Cloud Functions starts
a new instance. The push subscriptions have production's delivery policy (10s-600s backoff,
dead letters after 20 attempts, 5 for the monitor's tick, on runway-{function}-dead-letter,
kept on its -hold subscription). RUNWAY_MONITOR_INGEST_LAG, if set, is passed to the monitor (default 30s).

The function binaries are looked up in --functions (default: the directory of runwayctl
itself, where 'make dev' builds them).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.getenv = e.getenv
			return runDev(cmd.Context(), e.out, e.errOut, o, e.hostNow)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.addr, "addr", "127.0.0.1:8085", "host:port of the emulator (port 0: any free port)")
	f.StringVar(&o.data, "data", "", "directory for state and logs, kept across runs (default: a temporary directory, removed on exit)")
	f.StringVar(&o.functions, "functions", "", "directory holding the deploy, trigger and monitor binaries (default: runwayctl's own)")
	f.StringVar(&o.inventory, "inventory", filepath.Join("examples", "inventory.yml"), "the inventory to serve")
	f.StringVar(&o.examples, "examples", "examples", "a directory of repositories whose job manifests are deployed at start ('' for none)")
	f.BoolVar(&o.manual, "manual-clock", false, "run the emulator on a clock that moves only through POST /emulator/v1/clock:advance")
	f.StringVar(&o.start, "start", "", "with --manual-clock: the starting time (RFC3339; default now)")
	f.DurationVar(&o.opDelay, "op-delay", 100*time.Millisecond, "how long Cloud Run create/update/delete operations take")
	f.StringVar(&o.console, "console", "127.0.0.1:8086", "host:port of the web console (runwayctl console; '' for none)")
	return cmd
}

// devFunction is one function of the platform: its process, restarted when it dies.
type devFunction struct {
	name, target string
	url          string // fixed at the first start: restarts listen on the same port
	log          string
	bin          string
	env          []string
	port         int

	mu       sync.Mutex
	cmd      *exec.Cmd
	done     chan struct{} // closed when the current process has exited
	started  time.Time
	stopped  bool
	restarts int
}

// runDev starts the local platform (see newDevCmd) and serves until ctx ends.
func runDev(ctx context.Context, stdout, stderr io.Writer, o devOptions, now func() time.Time) error {
	start := time.Now()
	inv, err := inventory.Load(o.inventory)
	if err != nil {
		return err
	}
	jobs := inv.Jobs()
	if len(jobs) == 0 {
		return fmt.Errorf("%s lists no job workloads", o.inventory)
	}
	p := &devPlatform{}
	defer p.close()
	if p.invPath, err = filepath.Abs(o.inventory); err != nil {
		return err
	}
	if err := p.makeDirs(o.data); err != nil {
		return err
	}
	if err := p.startEmulator(ctx, o, now); err != nil {
		return err
	}
	if p.cl, err = allclients.Dial(ctx, gcp.Config{EmulatorHost: p.emu.Addr(), Project: jobs[0].GCPProject}, gcp.All); err != nil {
		return err
	}
	if err := p.startSink(stdout, devChannelNames(inv, o.examples), o.getenv); err != nil {
		return err
	}
	if err := p.startFunctions(ctx, stderr, o.functions); err != nil {
		return err
	}
	if err := p.wire(ctx, jobs); err != nil {
		return err
	}
	if err := p.createTick(ctx); err != nil {
		return err
	}
	deployed, err := deployExamples(ctx, stderr, p.cl, inv, o.examples, p.stateDir)
	if err != nil {
		return err
	}
	if o.console != "" {
		if err := p.startConsole(o.console); err != nil { // the platform runs without it
			fmt.Fprintf(stderr, "runwayctl dev: no console: %v (pass --console HOST:PORT, or '' for none)\n", err)
		}
	}
	p.banner(stdout, time.Since(start), deployed)
	<-ctx.Done()
	fmt.Fprintln(stderr, "stopping")
	return nil
}

// devPlatform is what runDev starts, in order; close stops it in reverse.
type devPlatform struct {
	data, stateDir, logDir, execLogs, invPath string
	removeData                                bool // data is a temporary directory

	emu       *emulator.Emulator
	cl        *allclients.Clients
	sink      *alertSink
	fns       []*devFunction // the processes started
	env       []string       // the functions' environment
	ingestLag string         // the monitor's RUNWAY_MONITOR_INGEST_LAG
	console   *devConsole    // nil without --console
}

// makeDirs creates the state and log directories under data (a temporary directory if empty).
func (p *devPlatform) makeDirs(data string) error {
	var err error
	if data == "" {
		if data, err = os.MkdirTemp("", "runway-dev-"); err != nil {
			return err
		}
		p.data, p.removeData = data, true
	}
	abs, err := filepath.Abs(data)
	if err != nil {
		return err
	}
	p.data = abs
	p.stateDir, p.logDir = filepath.Join(p.data, "state"), filepath.Join(p.data, "logs")
	p.execLogs = filepath.Join(p.logDir, "executions")
	for _, d := range []string{p.stateDir, p.logDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	_, err = state.NewDir(p.stateDir)
	return err
}

// startEmulator starts the emulator, on a manual clock with --manual-clock.
func (p *devPlatform) startEmulator(ctx context.Context, o devOptions, now func() time.Time) error {
	opts := emulator.Options{Addr: o.addr, OpDelay: o.opDelay, LogDir: p.execLogs}
	if o.manual {
		t := now()
		if o.start != "" {
			var err error
			if t, err = time.Parse(time.RFC3339, o.start); err != nil {
				return fmt.Errorf("--start %q: want an RFC3339 time", o.start)
			}
		}
		opts.Clock = emuclock.NewManual(t)
	}
	emu, err := emulator.Start(ctx, opts)
	if err != nil {
		return err
	}
	p.emu = emu
	p.env = []string{
		gcp.EmulatorHostEnv + "=" + emu.Addr(),
		state.EnvVar + "=" + p.stateDir,
		platform.EnvInventory + "=" + p.invPath,
	}
	return nil
}

// startSink starts the alert sink: every channel the inventory and the examples name is a
// signed webhook to it, so alerts are printed here and kept in alerts.jsonl.
func (p *devPlatform) startSink(stdout io.Writer, channels []string, getenv func(string) string) error {
	// The monitor checks the value (and refuses to start on a bad one, which its log says).
	p.ingestLag = devIngestLag
	if getenv != nil && getenv(devIngestLagEnv) != "" {
		p.ingestLag = getenv(devIngestLagEnv)
	}
	sink, err := startAlertSink(stdout, filepath.Join(p.data, "alerts.jsonl"))
	if err != nil {
		return err
	}
	p.sink = sink
	channelsFile := filepath.Join(p.data, "channels.yml")
	if err := writeDevChannels(channelsFile, sink, channels); err != nil {
		return err
	}
	p.env = append(p.env, "RUNWAY_CHANNELS="+channelsFile, devSinkSecretEnv+"="+sink.secret, devIngestLagEnv+"="+p.ingestLag)
	return nil
}

// startFunctions starts the deploy, trigger and monitor binaries of dir (default: the
// directory of runwayctl itself), each its own process, restarted when it dies.
func (p *devPlatform) startFunctions(ctx context.Context, stderr io.Writer, dir string) error {
	if dir == "" {
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		dir = filepath.Dir(exe)
	}
	for _, f := range []*devFunction{{name: "deploy", target: "Deploy"}, {name: "trigger", target: "Trigger"}, {name: "monitor", target: "Monitor"}} {
		bin := filepath.Join(dir, f.name)
		if _, err := os.Stat(bin); err != nil {
			return fmt.Errorf("function %s: %w (build it with 'make dev', or pass --functions DIR)", f.name, err)
		}
		f.bin, f.env, f.log = bin, p.env, filepath.Join(p.logDir, f.name+".log")
		if err := f.startProcess(ctx); err != nil {
			return err
		}
		p.fns = append(p.fns, f)
		go f.supervise(ctx, stderr)
	}
	return nil
}

// wire creates the Eventarc triggers: one push subscription per topic and function, with
// production's delivery policy and dead-letter topics.
func (p *devPlatform) wire(ctx context.Context, jobs []inventory.Workload) error {
	for _, f := range p.fns {
		if err := wireDeadLetter(ctx, p.cl, f.name); err != nil {
			return err
		}
	}
	deploy, trigger, monitor := p.fns[0], p.fns[1], p.fns[2]
	projects := map[string]bool{}
	for _, w := range jobs {
		if err := wire(ctx, p.cl, w.GCPProject, platform.DeployTopic(w.Name), deploy, platform.MaxDeliveryAttempts); err != nil {
			return err
		}
		if err := wire(ctx, p.cl, w.GCPProject, platform.TriggerTopic(w.Name), trigger, platform.MaxDeliveryAttempts); err != nil {
			return err
		}
		if !projects[w.GCPProject] {
			projects[w.GCPProject] = true
			if err := wire(ctx, p.cl, w.GCPProject, platform.ArtifactTopic, deploy, platform.MaxDeliveryAttempts); err != nil {
				return err
			}
		}
	}
	return wire(ctx, p.cl, devPlatformProject, platform.MonitorTickTopic, monitor, platform.TickMaxDeliveryAttempts)
}

// createTick creates the monitor's tick: Cloud Scheduler, every minute, on the platform
// project's topic.
func (p *devPlatform) createTick(ctx context.Context) error {
	tick := platform.JobName(devPlatformProject, devPlatformRegion, "runway-monitor-tick")
	if _, err := p.cl.Scheduler.CreateJob(ctx, &schedulerpb.CreateJobRequest{
		Parent: "projects/" + devPlatformProject + "/locations/" + devPlatformRegion,
		Job: &schedulerpb.Job{Name: tick, Schedule: "* * * * *", Description: "Runway Jobs monitor tick",
			Target: &schedulerpb.Job_PubsubTarget{PubsubTarget: &schedulerpb.PubsubTarget{
				TopicName: platform.TopicPath(devPlatformProject, platform.MonitorTickTopic), Data: []byte("{}")}}},
	}); err != nil && status.Code(err) != codes.AlreadyExists {
		return fmt.Errorf("create the monitor tick %s: %w", tick, err)
	}
	return nil
}

// banner prints what runs where and the commands to try next.
func (p *devPlatform) banner(stdout io.Writer, ready time.Duration, deployed []string) {
	addr := p.emu.Addr()
	fmt.Fprintf(stdout, "Runway Jobs is running locally (ready in %s).\n\n", ready.Round(10*time.Millisecond))
	fmt.Fprintf(stdout, "  emulator   %s   (Cloud Run, Cloud Scheduler, Monitoring, Pub/Sub)\n", addr)
	for _, f := range p.fns {
		var extra string
		if f.name == "monitor" {
			extra = fmt.Sprintf("   ingest lag %s (%s)", p.ingestLag, devIngestLagEnv)
		}
		fmt.Fprintf(stdout, "  %-10s %s   log %s%s\n", f.name, f.url, f.log, extra)
	}
	fmt.Fprintf(stdout, "  alerts     %s   (every channel; also printed here)\n", p.sink.file)
	fmt.Fprintf(stdout, "  state      %s\n", p.stateDir)
	if p.console != nil {
		fmt.Fprintf(stdout, "  console    %s   (read-only web console)\n", p.console.url)
	}
	fmt.Fprintf(stdout, "  executions %s\n\n", p.execLogs)
	for _, line := range deployed {
		fmt.Fprintf(stdout, "  %s\n", line)
	}
	fmt.Fprintf(stdout, "\nIn another terminal:\n\n  export %s=%s %s=%s %s=%s\n",
		gcp.EmulatorHostEnv, addr, state.EnvVar, p.stateDir, platform.EnvInventory, p.invPath)
	fmt.Fprintf(stdout, "  bin/runwayctl status                                  # every workload, its next run and last result\n")
	fmt.Fprintf(stdout, "  bin/runwayctl run hello-runway --env GREETING=hi --wait   # an on-demand run\n")
	fmt.Fprintf(stdout, "  bin/runwayctl logs hello-runway                       # its output\n")
	fmt.Fprintf(stdout, "  bin/runwayctl plan examples/hello/.runway/runway.yml  # what a deploy would change\n")
	fmt.Fprintf(stdout, "\nAlerts (failed, missed, late runs, recoveries) are printed here as they come. Ctrl-C stops everything.\n")
	fmt.Fprintf(stdout, "runway dev ready: %s=%s %s=%s %s=%s\n", gcp.EmulatorHostEnv, addr, state.EnvVar, p.stateDir, platform.EnvInventory, p.invPath)
}

// close stops what was started, in reverse order.
func (p *devPlatform) close() {
	p.console.close()
	for _, f := range p.fns {
		f.stop()
	}
	if p.sink != nil {
		p.sink.close()
	}
	if p.cl != nil {
		p.cl.Close()
	}
	if p.emu != nil {
		p.emu.Close()
	}
	if p.removeData {
		os.RemoveAll(p.data)
	}
}

// startProcess runs the function binary as Cloud Functions does (PORT, FUNCTION_TARGET), in its
// own process group, killed with runwayctl (Pdeathsig) so none is left behind. The first start
// picks a free port; a restart listens on the same one, so the push subscriptions still reach it.
func (f *devFunction) startProcess(ctx context.Context) error {
	if f.port == 0 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		f.port = l.Addr().(*net.TCPAddr).Port
		l.Close()
		f.url = fmt.Sprintf("http://127.0.0.1:%d/", f.port)
	}
	logFile, err := os.OpenFile(f.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(f.bin)
	cmd.Env = append(os.Environ(), append(slices.Clip(f.env), fmt.Sprintf("PORT=%d", f.port), "FUNCTION_TARGET="+f.target)...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("start %s: %w", f.bin, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); logFile.Close(); close(done) }()
	f.mu.Lock()
	if f.stopped {
		f.mu.Unlock()
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		return fmt.Errorf("function %s: stopped", f.name)
	}
	f.cmd, f.done, f.started = cmd, done, time.Now()
	f.mu.Unlock()
	addr := fmt.Sprintf("127.0.0.1:%d", f.port)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("function %s exited at start (%s); see %s", f.name, cmd.ProcessState, f.log)
		default:
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			return fmt.Errorf("function %s did not start on %s; see %s", f.name, addr, f.log)
		}
	}
}

// supervise starts the function again each time its process dies, until stop or ctx ends:
// after devRestartMin, doubling up to devRestartMax while it dies soon after its start.
func (f *devFunction) supervise(ctx context.Context, stderr io.Writer) {
	wait := devRestartMin
	for {
		f.mu.Lock()
		cmd, done, started := f.cmd, f.done, f.started
		f.mu.Unlock()
		<-done
		f.mu.Lock()
		if f.stopped {
			f.mu.Unlock()
			return
		}
		f.restarts++
		f.mu.Unlock()
		if time.Since(started) > devRestartReset {
			wait = devRestartMin
		}
		fmt.Fprintf(stderr, "function %s exited (%s); starting it again in %v on %s (see %s)\n", f.name, cmd.ProcessState, wait, f.url, f.log)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
		wait = min(2*wait, devRestartMax)
		if err := f.startProcess(ctx); err != nil {
			fmt.Fprintf(stderr, "function %s: %v\n", f.name, err)
		}
	}
}

// stop kills the function's process and ends its supervision.
func (f *devFunction) stop() {
	f.mu.Lock()
	f.stopped = true
	cmd, done := f.cmd, f.done
	f.mu.Unlock()
	if cmd != nil && cmd.Process != nil {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}

// wire creates topic in project (if needed) and the push subscription Eventarc would create
// for the function, dead-lettering after maxAttempts deliveries.
func wire(ctx context.Context, cl *allclients.Clients, project, topic string, f *devFunction, maxAttempts int32) error {
	tp := platform.TopicPath(project, topic)
	if _, err := cl.PubSub.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: tp}); err != nil && status.Code(err) != codes.AlreadyExists {
		return fmt.Errorf("create topic %s: %w", tp, err)
	}
	sub := "projects/" + project + "/subscriptions/eventarc-" + f.name + "-" + topic
	_, err := cl.PubSub.SubscriptionAdminClient.CreateSubscription(ctx, &pubsubpb.Subscription{
		// Not production's 600 s: pstest runs on the platform's (manual) clock and drops a
		// message that is available but undelivered 10 minutes after its publish time. Under
		// a 10-minute lease a message whose push failed is made available again only by its
		// backoff, and a manual clock that jumps whole slots then passes that age before the
		// redelivery (e2e TestPlatformScheduledSlotsRunOnce lost a slot in 3 of 5 runs);
		// a 60 s lease also makes it available when a jump passes the lease, as before.
		Name: sub, Topic: tp, AckDeadlineSeconds: devPushAckDeadlineSeconds,
		PushConfig: &pubsubpb.PushConfig{PushEndpoint: f.url},
		RetryPolicy: &pubsubpb.RetryPolicy{
			MinimumBackoff: durationpb.New(platform.PushMinBackoff),
			MaximumBackoff: durationpb.New(platform.PushMaxBackoff),
		},
		DeadLetterPolicy: &pubsubpb.DeadLetterPolicy{
			DeadLetterTopic:     platform.TopicPath(devPlatformProject, platform.DeadLetterTopic(f.name)),
			MaxDeliveryAttempts: maxAttempts,
		},
	})
	if err != nil && status.Code(err) != codes.AlreadyExists {
		return fmt.Errorf("create subscription %s: %w", sub, err)
	}
	return nil
}

// devPushAckDeadlineSeconds is the ack deadline of runwayctl dev's push subscriptions.
const devPushAckDeadlineSeconds = 60

// wireDeadLetter creates a function's dead-letter topic in the platform project and the pull
// subscription that keeps its messages, as infra/platform/pubsub.tf does.
func wireDeadLetter(ctx context.Context, cl *allclients.Clients, function string) error {
	tp := platform.TopicPath(devPlatformProject, platform.DeadLetterTopic(function))
	if _, err := cl.PubSub.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: tp}); err != nil && status.Code(err) != codes.AlreadyExists {
		return fmt.Errorf("create topic %s: %w", tp, err)
	}
	sub := "projects/" + devPlatformProject + "/subscriptions/" + platform.DeadLetterHoldSubscription(function)
	if _, err := cl.PubSub.SubscriptionAdminClient.CreateSubscription(ctx, &pubsubpb.Subscription{
		Name: sub, Topic: tp, AckDeadlineSeconds: 60, RetainAckedMessages: true,
		MessageRetentionDuration: durationpb.New(7 * 24 * time.Hour),
	}); err != nil && status.Code(err) != codes.AlreadyExists {
		return fmt.Errorf("create subscription %s: %w", sub, err)
	}
	return nil
}

// deployExamples publishes a deploy request for every job manifest of the repositories in
// dir, waits for their outcomes and returns one line per workload.
func deployExamples(ctx context.Context, progress io.Writer, cl *allclients.Clients, inv *inventory.Inventory, dir, stateDir string) ([]string, error) {
	if dir == "" {
		return nil, nil
	}
	repos, err := filepath.Glob(filepath.Join(dir, "*", ".runway"))
	if err != nil {
		return nil, err
	}
	sort.Strings(repos)
	store, err := state.NewDir(stateDir)
	if err != nil {
		return nil, err
	}
	// The workloads of inv, told apart from runwayctl's own environment (no CI variables).
	env := newCmdEnv(io.Discard, progress, func(string) string { return "" }, time.Now)
	env.inventory = inv
	type pending struct{ workload, id string }
	var sent []pending
	var lines []string
	for _, r := range repos {
		files, err := manifest.Discover(filepath.Dir(r))
		if err != nil {
			return nil, err
		}
		for _, file := range files {
			// The manifest with its overlay, bound to its workload, as runwayctl deploy reads it.
			t, err := loadDeployTarget(ctx, env, file, deployFlags{})
			var exit exitError
			if errors.As(err, &exit) {
				fmt.Fprintf(progress, "skipping %s: %v\n", file, cmp.Or(exit.err, errors.New("the problems above")))
				continue
			}
			if err != nil {
				return nil, err
			}
			job, w, req := t.job, t.workload, t.request
			req.RequestID = fmt.Sprintf("dev-%s-%d", w.Name, time.Now().UnixNano())
			if job.Spec.Image == "" {
				// Local mode pulls no image: any reference inside the workload's repository will do.
				req.Image = w.ArtifactRepository + "/" + w.Name + ":local"
			}
			b, _ := json.Marshal(req)
			pub := cl.PubSub.Publisher(platform.TopicPath(w.GCPProject, platform.DeployTopic(w.Name)))
			_, err = pub.Publish(ctx, &pubsub.Message{Data: b}).Get(ctx)
			pub.Stop()
			if err != nil {
				return nil, fmt.Errorf("publish deploy of %s: %w", w.Name, err)
			}
			sent = append(sent, pending{w.Name, req.RequestID})
			what := "on demand"
			if job.Schedule != nil {
				what = job.Schedule.Describe() + " (" + job.Schedule.Expr() + ")"
			}
			lines = append(lines, fmt.Sprintf("%-22s %s", w.Name, what))
		}
	}
	for i, p := range sent {
		rec, err := waitDeployRecord(ctx, progress, store, p.workload, p.id, time.Minute)
		if err != nil {
			return nil, err
		}
		switch rec.Outcome {
		case platform.DeployRefused:
			lines[i] += "   REFUSED: " + strings.Join(rec.Problems, "; ")
		default:
			lines[i] += "   " + rec.Outcome
		}
	}
	return lines, nil
}
