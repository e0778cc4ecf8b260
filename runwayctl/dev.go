package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/scheduler/apiv1/schedulerpb"
	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

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

The function binaries are looked up in --functions (default: the directory of runwayctl
itself, where 'make dev' builds them).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
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
	return cmd
}

// devFunction is one function of the platform and the topics that feed it.
type devFunction struct {
	name, target string
	url          string
	cmd          *exec.Cmd
	log          string
	done         chan struct{} // closed when the process has exited
}

func runDev(ctx context.Context, stdout, stderr io.Writer, o devOptions, now func() time.Time) (err error) {
	start := time.Now()
	inv, err := inventory.Load(o.inventory)
	if err != nil {
		return err
	}
	invPath, _ := filepath.Abs(o.inventory)
	data := o.data
	if data == "" {
		if data, err = os.MkdirTemp("", "runway-dev-"); err != nil {
			return err
		}
		defer os.RemoveAll(data)
	}
	if data, err = filepath.Abs(data); err != nil {
		return err
	}
	stateDir, logDir := filepath.Join(data, "state"), filepath.Join(data, "logs")
	for _, d := range []string{stateDir, logDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	if _, err := state.NewDir(stateDir); err != nil {
		return err
	}
	bins := o.functions
	if bins == "" {
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		bins = filepath.Dir(exe)
	}

	opts := emulator.Options{Addr: o.addr, OpDelay: o.opDelay, LogDir: filepath.Join(logDir, "executions")}
	if o.manual {
		t := now()
		if o.start != "" {
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
	defer emu.Close()
	env := []string{
		gcp.EmulatorHostEnv + "=" + emu.Addr(),
		state.EnvVar + "=" + stateDir,
		platform.EnvInventory + "=" + invPath,
	}

	jobs := inv.Jobs()
	if len(jobs) == 0 {
		return fmt.Errorf("%s lists no job workloads", o.inventory)
	}
	cl, err := allclients.Dial(ctx, gcp.Config{EmulatorHost: emu.Addr(), Project: jobs[0].GCPProject}, gcp.All)
	if err != nil {
		return err
	}
	defer cl.Close()

	// The alert sink: every channel the inventory and the examples name is a signed webhook to
	// it, so alerts are printed here and kept in alerts.jsonl.
	sink, err := startAlertSink(stdout, filepath.Join(data, "alerts.jsonl"))
	if err != nil {
		return err
	}
	defer sink.close()
	channelsFile := filepath.Join(data, "channels.yml")
	if err := writeDevChannels(channelsFile, sink, devChannelNames(inv, o.examples)); err != nil {
		return err
	}
	env = append(env, "RUNWAY_CHANNELS="+channelsFile, devSinkSecretEnv+"="+sink.secret, "RUNWAY_MONITOR_INGEST_LAG=30s")

	fns := []*devFunction{{name: "deploy", target: "Deploy"}, {name: "trigger", target: "Trigger"}, {name: "monitor", target: "Monitor"}}
	var running []*devFunction
	defer func() {
		for _, f := range running {
			f.stop()
		}
	}()
	for _, f := range fns {
		bin := filepath.Join(bins, f.name)
		if _, err := os.Stat(bin); err != nil {
			return fmt.Errorf("function %s: %w (build it with 'make dev', or pass --functions DIR)", f.name, err)
		}
		if err := f.startProcess(ctx, bin, env, logDir); err != nil {
			return err
		}
		running = append(running, f)
	}
	deploy, trigger := fns[0], fns[1]

	// Eventarc triggers: one push subscription per topic and function.
	projects := map[string]bool{}
	for _, w := range jobs {
		if err := wire(ctx, cl, w.GCPProject, platform.DeployTopic(w.Name), deploy); err != nil {
			return err
		}
		if err := wire(ctx, cl, w.GCPProject, platform.TriggerTopic(w.Name), trigger); err != nil {
			return err
		}
		if !projects[w.GCPProject] {
			projects[w.GCPProject] = true
			if err := wire(ctx, cl, w.GCPProject, platform.ArtifactTopic, deploy); err != nil {
				return err
			}
		}
	}

	// The monitor's tick: Cloud Scheduler, every minute, on the platform project's topic.
	if err := wire(ctx, cl, devPlatformProject, platform.MonitorTickTopic, fns[2]); err != nil {
		return err
	}
	tick := platform.JobName(devPlatformProject, devPlatformRegion, "runway-monitor-tick")
	if _, err := cl.Scheduler.CreateJob(ctx, &schedulerpb.CreateJobRequest{
		Parent: "projects/" + devPlatformProject + "/locations/" + devPlatformRegion,
		Job: &schedulerpb.Job{Name: tick, Schedule: "* * * * *", Description: "Runway Jobs monitor tick",
			Target: &schedulerpb.Job_PubsubTarget{PubsubTarget: &schedulerpb.PubsubTarget{
				TopicName: platform.TopicPath(devPlatformProject, platform.MonitorTickTopic), Data: []byte("{}")}}},
	}); err != nil && status.Code(err) != codes.AlreadyExists {
		return fmt.Errorf("create the monitor tick %s: %w", tick, err)
	}

	deployed, err := deployExamples(ctx, stderr, cl, inv, o.examples, stateDir)
	if err != nil {
		return err
	}

	fmt.Fprintf(stdout, "Runway Jobs is running locally (ready in %s).\n\n", time.Since(start).Round(10*time.Millisecond))
	fmt.Fprintf(stdout, "  emulator   %s   (Cloud Run, Cloud Scheduler, Monitoring, Pub/Sub)\n", emu.Addr())
	for _, f := range fns {
		fmt.Fprintf(stdout, "  %-10s %s   log %s\n", f.name, f.url, f.log)
	}
	fmt.Fprintf(stdout, "  alerts     %s   (every channel; also printed here)\n", sink.file)
	fmt.Fprintf(stdout, "  state      %s\n", stateDir)
	fmt.Fprintf(stdout, "  executions %s\n\n", opts.LogDir)
	for _, line := range deployed {
		fmt.Fprintf(stdout, "  %s\n", line)
	}
	fmt.Fprintf(stdout, "\nIn another terminal:\n\n  export %s=%s %s=%s %s=%s\n",
		gcp.EmulatorHostEnv, emu.Addr(), state.EnvVar, stateDir, platform.EnvInventory, invPath)
	fmt.Fprintf(stdout, "  bin/runwayctl status                                  # every workload, its next run and last result\n")
	fmt.Fprintf(stdout, "  bin/runwayctl run hello-runway --env GREETING=hi --wait   # an on-demand run\n")
	fmt.Fprintf(stdout, "  bin/runwayctl logs hello-runway                       # its output\n")
	fmt.Fprintf(stdout, "  bin/runwayctl plan examples/hello/.runway/runway.yml  # what a deploy would change\n")
	fmt.Fprintf(stdout, "\nAlerts (failed, missed, late runs, recoveries) are printed here as they come. Ctrl-C stops everything.\n")
	fmt.Fprintf(stdout, "runway dev ready: %s=%s %s=%s %s=%s\n", gcp.EmulatorHostEnv, emu.Addr(), state.EnvVar, stateDir, platform.EnvInventory, invPath)

	select {
	case <-ctx.Done():
	case err := <-exited(running):
		return err
	}
	fmt.Fprintln(stderr, "stopping")
	return nil
}

// startProcess runs the function binary as Cloud Functions does (PORT, FUNCTION_TARGET), in its
// own process group, killed with runwayctl (Pdeathsig) so none is left behind.
func (f *devFunction) startProcess(ctx context.Context, bin string, env []string, logDir string) error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	f.log = filepath.Join(logDir, f.name+".log")
	logFile, err := os.OpenFile(f.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	f.cmd = exec.Command(bin)
	f.cmd.Env = append(os.Environ(), append(env, fmt.Sprintf("PORT=%d", port), "FUNCTION_TARGET="+f.target)...)
	f.cmd.Stdout, f.cmd.Stderr = logFile, logFile
	f.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := f.cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("start %s: %w", bin, err)
	}
	f.done = make(chan struct{})
	go func() { f.cmd.Wait(); logFile.Close(); close(f.done) }()
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	f.url = "http://" + addr + "/"
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return nil
		}
		select {
		case <-f.done:
			return fmt.Errorf("function %s exited at start (%s); see %s", f.name, f.cmd.ProcessState, f.log)
		default:
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("function %s did not start on %s; see %s", f.name, addr, f.log)
		}
	}
}

func (f *devFunction) stop() {
	if f.cmd != nil && f.cmd.Process != nil {
		syscall.Kill(-f.cmd.Process.Pid, syscall.SIGKILL)
		<-f.done
	}
}

// exited reports the first function process that ends on its own.
func exited(fns []*devFunction) <-chan error {
	ch := make(chan error, len(fns))
	for _, f := range fns {
		go func() {
			<-f.done
			ch <- fmt.Errorf("function %s exited (%s); see %s", f.name, f.cmd.ProcessState, f.log)
		}()
	}
	return ch
}

// wire creates topic in project (if needed) and the push subscription Eventarc would create
// for the function.
func wire(ctx context.Context, cl *allclients.Clients, project, topic string, f *devFunction) error {
	tp := platform.TopicPath(project, topic)
	if _, err := cl.PubSub.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: tp}); err != nil && status.Code(err) != codes.AlreadyExists {
		return fmt.Errorf("create topic %s: %w", tp, err)
	}
	sub := "projects/" + project + "/subscriptions/eventarc-" + f.name + "-" + topic
	_, err := cl.PubSub.SubscriptionAdminClient.CreateSubscription(ctx, &pubsubpb.Subscription{
		Name: sub, Topic: tp, AckDeadlineSeconds: 60,
		PushConfig:  &pubsubpb.PushConfig{PushEndpoint: f.url},
		RetryPolicy: &pubsubpb.RetryPolicy{},
	})
	if err != nil && status.Code(err) != codes.AlreadyExists {
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
	type pending struct{ workload, id string }
	var sent []pending
	var lines []string
	for _, r := range repos {
		files, err := manifest.Discover(filepath.Dir(r))
		if err != nil {
			return nil, err
		}
		for _, file := range files {
			job, err := manifest.Load(file)
			if err != nil {
				fmt.Fprintf(progress, "skipping %s: %v\n", file, err)
				continue
			}
			w, ok := inv.Lookup(job.Metadata.Name)
			if !ok || w.Type != inventory.Job {
				continue
			}
			req := platform.DeployRequest{RequestID: fmt.Sprintf("dev-%s-%d", w.Name, time.Now().UnixNano()), Workload: w.Name}
			base, overlay := file, ""
			if filepath.Base(filepath.Dir(filepath.Dir(file))) == ".runway" {
				base, overlay = filepath.Join(filepath.Dir(filepath.Dir(file)), "runway.yml"), file
			}
			if req.Manifest, err = readManifestFile(base); err != nil {
				return nil, err
			}
			if overlay != "" {
				o, err := readManifestFile(overlay)
				if err != nil {
					return nil, err
				}
				req.Overlay = &o
			}
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
