package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/run/apiv2/runpb"
	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"runwayjobs.dev/shared/gcp/allclients"
	"runwayjobs.dev/shared/platform"
	"runwayjobs.dev/shared/state"
)

// Exit statuses of runwayctl run (docs/trigger.md).
const (
	runFailed = exitFailed  // the execution failed or was cancelled
	runNotRun = exitNotDone // the request was refused (here or by the trigger), skipped or missed
)

// runFlags are the flags of runwayctl run.
type runFlags struct {
	env           []string
	args          []string
	clearArgs     bool
	taskCount     int
	timeout       string
	policy        string
	reason        string
	requestID     string
	wait          bool
	answerTimeout time.Duration
	poll          time.Duration
}

func newRunCmd(e *cmdEnv) *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "run WORKLOAD [--env K=V]... [--args ARG]... [--task-count N] [--timeout D] [--reason TEXT] [--wait] [-- ARGS...]",
		Short: "Run a job now: publish a run request for the workload, optionally wait for its execution",
		Long: `Publish a run request on the workload's trigger topic. The trigger function starts one
Cloud Run execution for it, however often the request is delivered, with the overrides given:
--args replace the job's args (repeat the flag, or put them after --), --clear-args runs it
without args, --env K=V is merged over the job's env, --task-count and --timeout replace the
job's. There is no image or command override. --concurrency-policy asks for another policy
than the job's for this run only (Allow, Forbid, Replace).

The request id is the GitLab CI pipeline and job ids (ci-PIPELINE-JOB), so retrying the
publication from the same CI job never starts a second execution; outside CI it is random.

The request is checked before it is published, by the rules (and in the words) the trigger
function refuses it with: a workload that is not a job of the inventory, or a request that
breaks a rule, is refused here and nothing is published.

With --wait, follow the request: print the execution's name and log link, then the progress
of its tasks until it ends. Exit status: 0 published (without --wait) or the execution
succeeded, 1 it failed (or was cancelled), 2 the request was refused (here or by the trigger
function), skipped (Forbid: a previous run is still active) or could not be followed.

Environment: RUNWAY_INVENTORY, RUNWAY_STATE (for --wait), RUNWAY_EMULATOR_HOST (local platform),
CI_PIPELINE_ID and CI_JOB_ID, GITLAB_USER_LOGIN and CI_JOB_URL (who asked).`,
		Example: `  runwayctl run topology-migrate --env DRY_RUN=1 --reason "schema 42" --wait -- migrate up`,
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			workload := args[0]
			f.args = append(f.args, args[1:]...)
			return runRun(cmd.Context(), e, workload, f)
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVar(&f.env, "env", nil, "K=V merged over the job's env (repeatable)")
	fl.StringArrayVar(&f.args, "args", nil, "an argument replacing the job's args (repeatable; or give them after --)")
	fl.BoolVar(&f.clearArgs, "clear-args", false, "run the job without its args")
	fl.IntVar(&f.taskCount, "task-count", 0, "number of tasks (default: the job's)")
	fl.StringVar(&f.timeout, "timeout", "", "the job's per-attempt timeout for this run, such as 30m (default: the job's)")
	fl.StringVar(&f.policy, "concurrency-policy", "", "Allow, Forbid or Replace for this run (default: the job's)")
	fl.StringVar(&f.reason, "reason", "", "why the job is run (recorded)")
	fl.StringVar(&f.requestID, "request-id", "", "the request id (default: ci-$CI_PIPELINE_ID-$CI_JOB_ID in GitLab CI, random otherwise)")
	e.addInventoryFlag(cmd)
	fl.BoolVar(&f.wait, "wait", false, "follow the execution until it ends; exit 0 succeeded, 1 failed, 2 refused or skipped")
	fl.DurationVar(&f.answerTimeout, "answer-timeout", 5*time.Minute, "with --wait: how long to wait for the trigger function's answer")
	fl.DurationVar(&f.poll, "poll-interval", 2*time.Second, "with --wait: how often to look at the execution")
	_ = fl.MarkHidden("poll-interval")
	return cmd
}

// runRequest builds the request f describes, or says which flag can't even be expressed as a
// request (--env without =, or twice). The request's rules are checked by checkRun.
func runRequest(workload string, f runFlags, lookup func(string) string) (platform.RunRequest, error) {
	req := platform.RunRequest{
		RequestID:         f.requestID,
		Workload:          workload,
		Args:              f.args,
		ClearArgs:         f.clearArgs,
		TaskCount:         f.taskCount,
		Timeout:           f.timeout,
		ConcurrencyPolicy: f.policy,
		Reason:            f.reason,
		RequestedBy:       requestedBy(lookup),
	}
	if req.RequestID == "" {
		req.RequestID = requestID(lookup)
	}
	for _, kv := range f.env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return req, fmt.Errorf("--env %q: want NAME=VALUE", kv)
		}
		if req.Env == nil {
			req.Env = map[string]string{}
		}
		if _, dup := req.Env[k]; dup {
			return req, fmt.Errorf("--env %s is given twice", k)
		}
		req.Env[k] = v
	}
	return req, nil
}

// checkRun encodes req as it will be published and decodes it as the trigger function will
// (platform.DecodeRunRequest), so a request the function would refuse is refused here, in
// its words, before anything is published.
func checkRun(req platform.RunRequest) ([]byte, error) {
	data, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("run request: %w", err)
	}
	_, problems, err := platform.DecodeRunRequest(data)
	switch {
	case err != nil:
		return nil, exitError{code: runNotRun, err: err}
	case len(problems) > 0:
		return nil, exitError{code: runNotRun, err: fmt.Errorf("run request refused: %s", platform.RunRefusal(problems))}
	}
	return data, nil
}

// requestedBy names who asked: the GitLab user and CI job, or the local user.
func requestedBy(lookup func(string) string) string {
	who := lookup("GITLAB_USER_LOGIN")
	if who == "" {
		who = lookup("USER")
	}
	if u := lookup("CI_JOB_URL"); u != "" {
		return strings.TrimSpace(who + " " + u)
	}
	return who
}

// runRun publishes the run request f describes for workload, and with --wait follows it.
func runRun(ctx context.Context, e *cmdEnv, workload string, f runFlags) error {
	out, stderr := e.out, e.errOut
	w, err := e.job(ctx, workload, runNotRun)
	if err != nil {
		return err
	}
	req, err := runRequest(workload, f, e.getenv)
	if err != nil {
		return err
	}
	data, err := checkRun(req)
	if err != nil {
		return err
	}
	var store state.Store
	if f.wait {
		if store, err = e.openStore(ctx); err != nil {
			return fmt.Errorf("--wait reads the outcome from the state store: %w", err)
		}
	}
	cl, err := e.gcpClients(ctx, w.GCPProject)
	if err != nil {
		return err
	}
	if err := publishRun(ctx, cl, w.GCPProject, req.Workload, data); err != nil {
		return err
	}
	fmt.Fprintf(out, "run request %s published for %s\n", req.RequestID, workload)
	if !f.wait {
		return nil
	}
	rec, err := waitRunRecord(ctx, stderr, store, workload, req.RequestID, f.answerTimeout)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitError{code: runNotRun}
	}
	if rec.Outcome != platform.RunStarted {
		fmt.Fprintf(stderr, "run request %s %s: %s\n", req.RequestID, rec.Outcome, rec.Reason)
		return exitError{code: runNotRun}
	}
	return followExecution(ctx, out, stderr, cl, rec, f.poll)
}

// publishRun publishes the run request body data on workload's trigger topic.
func publishRun(ctx context.Context, cl *allclients.Clients, project, workload string, data []byte) error {
	topic := platform.TriggerTopic(workload)
	pub := cl.PubSub.Publisher(topic)
	defer pub.Stop()
	msg := &pubsub.Message{Data: data, Attributes: map[string]string{platform.AttrKind: platform.KindRun}}
	if _, err := pub.Publish(ctx, msg).Get(ctx); err != nil {
		return fmt.Errorf("publish to %s: %w", platform.TopicPath(project, topic), err)
	}
	return nil
}

// waitRunRecord polls the store until the trigger function records a final outcome.
func waitRunRecord(ctx context.Context, progress io.Writer, store state.Store, workload, id string, timeout time.Duration) (platform.RunRecord, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	key := platform.RunRecordKey(workload, id)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	start, said := time.Now(), time.Now()
	for {
		var r platform.RunRecord
		o, err := store.Get(ctx, key)
		switch {
		case err == nil:
			if err := json.Unmarshal(o.Data, &r); err != nil {
				return r, fmt.Errorf("run record %s: %w", key, err)
			}
			if r.Outcome != platform.RunClaimed {
				return r, nil
			}
		case !errors.Is(err, state.ErrNotFound):
			return r, err
		}
		if time.Since(said) >= 5*time.Second {
			what := "waiting for the trigger function"
			if r.Outcome == platform.RunClaimed {
				what = fmt.Sprintf("the trigger function is starting it (attempt %d", r.Attempts)
				if r.Reason != "" {
					what += ", last: " + r.Reason
				}
				what += ")"
			}
			fmt.Fprintf(progress, "%s (%s)\n", what, time.Since(start).Round(time.Second))
			said = time.Now()
		}
		select {
		case <-ctx.Done():
			return r, fmt.Errorf("run request %s: no outcome after %s (is the trigger function running?)", id, timeout)
		case <-tick.C:
		}
	}
}

// followExecution prints the execution's progress until it ends and returns its exit status.
func followExecution(ctx context.Context, out, stderr io.Writer, cl *allclients.Clients, rec platform.RunRecord, poll time.Duration) error {
	short := rec.Execution[strings.LastIndexByte(rec.Execution, '/')+1:]
	fmt.Fprintf(out, "execution %s started\n", short)
	if rec.Reason != "" {
		fmt.Fprintf(out, "  %s\n", rec.Reason)
	}
	if rec.LogURI != "" {
		fmt.Fprintf(out, "  logs: %s\n", rec.LogURI)
	}
	last, failures := "", 0
	for {
		x, err := cl.Executions.GetExecution(ctx, &runpb.GetExecutionRequest{Name: rec.Execution})
		switch {
		case status.Code(err) == codes.NotFound:
			fmt.Fprintf(stderr, "execution %s no longer exists\n", short)
			return exitError{code: runFailed}
		case err != nil && ctx.Err() != nil:
			return ctx.Err()
		case err != nil:
			if failures++; failures >= 5 {
				return fmt.Errorf("follow execution %s: %w", short, err)
			}
		default:
			failures = 0
			if p := progressLine(x); p != last {
				fmt.Fprintf(out, "  %s\n", p)
				last = p
			}
			if x.CompletionTime != nil {
				return finished(out, stderr, short, x)
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(poll):
		}
	}
}

// progressLine summarises the execution's tasks.
func progressLine(x *runpb.Execution) string {
	s := fmt.Sprintf("tasks: %d running, %d succeeded, %d failed", x.RunningCount, x.SucceededCount, x.FailedCount)
	if x.CancelledCount > 0 {
		s += fmt.Sprintf(", %d cancelled", x.CancelledCount)
	}
	return s + fmt.Sprintf(", %d retried (of %d)", x.RetriedCount, x.TaskCount)
}

// finished reports a completed execution and returns its exit status.
func finished(out, stderr io.Writer, short string, x *runpb.Execution) error {
	took := x.CompletionTime.AsTime().Sub(x.CreateTime.AsTime()).Round(time.Second)
	switch {
	case x.CancelledCount > 0:
		fmt.Fprintf(stderr, "execution %s was cancelled after %s\n", short, took)
		return exitError{code: runFailed}
	case x.FailedCount > 0 || x.SucceededCount < x.TaskCount:
		fmt.Fprintf(stderr, "execution %s failed after %s: %d of %d tasks failed\n", short, took, x.FailedCount, x.TaskCount)
		return exitError{code: runFailed}
	}
	fmt.Fprintf(out, "execution %s succeeded in %s\n", short, took)
	return nil
}
