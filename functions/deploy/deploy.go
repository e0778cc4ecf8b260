// Package deploy is the Runway Jobs deploy function: it reconciles RunwayJob manifests and
// artifact pushes into Cloud Run jobs and Cloud Scheduler jobs.
//
// Eventarc delivers Pub/Sub messages to it as CloudEvents through functions-framework-go: deploy
// requests published by `runwayctl deploy` on a workload's deploy topic, and Artifact Registry
// notifications on topic "gcr". The reconciler is level-based: it re-reads what exists and
// writes only the difference, so a redelivered or duplicated event writes nothing.
//
// The Cloud Functions Go buildpack builds this folder on its own, so the package sits at the
// module root and is not package main (the local main is under cmd/deploy).
package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/GoogleCloudPlatform/functions-framework-go/funcframework"
	"github.com/GoogleCloudPlatform/functions-framework-go/functions"
	cloudevent "github.com/cloudevents/sdk-go/v2/event"
	"github.com/rs/zerolog"

	"runwayjobs.dev/shared/document"
	"runwayjobs.dev/shared/event"
	"runwayjobs.dev/shared/gcp"
	"runwayjobs.dev/shared/inventory"
	"runwayjobs.dev/shared/logging"
	"runwayjobs.dev/shared/platform"
	"runwayjobs.dev/shared/state"
)

// FunctionName is the target the function is registered as (FUNCTION_TARGET).
const FunctionName = "Deploy"

func init() {
	functions.CloudEvent(FunctionName, Deploy)
}

// Config is the function's configuration, read from the environment.
type Config = platform.FunctionConfig

// ConfigFromEnv reads the Config through lookup (os.LookupEnv in production; tests pass a
// map's lookup).
func ConfigFromEnv(lookup func(string) (string, bool)) (Config, error) {
	return platform.FunctionConfigFromEnv("deploy", lookup)
}

// Handler reconciles the workloads events name. It is safe for concurrent use.
type Handler struct {
	jobs  jobsAPI
	sched schedulerAPI
	store state.Store
	inv   *inventory.Inventory
	now   func() time.Time
	log   zerolog.Logger
	// OpTimeout bounds the wait for one Cloud Run operation.
	opTimeout time.Duration
}

// New builds the Handler of cfg: it loads the inventory, opens the store and dials the Cloud
// Run jobs and Cloud Scheduler clients, the only ones deploy calls.
func New(ctx context.Context, cfg Config, log zerolog.Logger) (*Handler, error) {
	inv, err := inventory.Open(ctx, cfg.Inventory, cfg.GCP)
	if err != nil {
		return nil, fmt.Errorf("deploy: %w", err)
	}
	store, err := state.Open(ctx, cfg.State, cfg.GCP)
	if err != nil {
		return nil, fmt.Errorf("deploy: %w", err)
	}
	cl, err := gcp.Dial(ctx, cfg.GCP, gcp.Jobs|gcp.Scheduler)
	if err != nil {
		return nil, fmt.Errorf("deploy: %w", err)
	}
	return newHandler(cl.Jobs, cl.Scheduler, store, inv, cfg.GCP.Clock(), log), nil
}

// newHandler is the Handler over its parts; tests wrap the clients to count their writes.
func newHandler(jobs jobsAPI, sched schedulerAPI, store state.Store, inv *inventory.Inventory, now func() time.Time, log zerolog.Logger) *Handler {
	return &Handler{jobs: jobs, sched: sched, store: platform.ScopedStore("deploy", store), inv: inv, now: now, log: log, opTimeout: 2 * time.Minute}
}

// fromEnv builds the instance's Handler once, on the first event.
var fromEnv = sync.OnceValues(func() (*Handler, error) {
	cfg, err := ConfigFromEnv(os.LookupEnv)
	if err != nil {
		return nil, err
	}
	return New(context.Background(), cfg, logging.New(os.Stdout, "deploy", zerolog.InfoLevel))
})

// Deploy is the CloudEvent entry point: it acknowledges what succeeded or can never succeed
// and returns the error of what may succeed on redelivery.
func Deploy(ctx context.Context, e cloudevent.Event) error {
	h, err := fromEnv()
	if err != nil {
		return err // misconfigured: keep the message until the function is fixed
	}
	return event.Result(h.Handle(ctx, e))
}

// Handle processes one event. Permanent errors are marked with event.Permanent.
func (h *Handler) Handle(ctx context.Context, e cloudevent.Event) error {
	m, err := event.Decode(e)
	if err != nil {
		h.log.Error().Str("event_id", e.ID()).Err(err).Msg("event refused")
		return err
	}
	// One logger per event: the request's trace and the labels Cloud Logging filters on.
	workload, _ := platform.WorkloadOfTopic(m.Topic)
	log := logging.ForEvent(h.log, m.Project, funcframework.TraceIDFromContext(ctx), funcframework.SpanIDFromContext(ctx),
		map[string]string{"workload": workload, "event_id": m.ID, "topic": m.Topic})
	hc := *h
	hc.log = log
	if m.Topic == platform.ArtifactTopic {
		return hc.handlePush(ctx, m)
	}
	return hc.handleRequest(ctx, m)
}

// handleRequest applies (or deletes) the workload bound to the message's topic.
func (h *Handler) handleRequest(ctx context.Context, m event.Message) error {
	workload, ok := platform.WorkloadOfTopic(m.Topic)
	if !ok || m.Topic != platform.DeployTopic(workload) {
		err := event.Permanent(fmt.Errorf("topic %s is not a deploy topic", m.Topic))
		h.log.Error().Str("event_id", m.ID).Str("topic", m.Topic).Err(err).Msg("deploy refused")
		return err
	}
	var req platform.DeployRequest
	if err := document.ScanJSON(m.Data, event.MaxData); err != nil {
		return h.refuse(ctx, m, workload, &platform.DeployRequest{RequestID: m.ID}, fmt.Errorf("deploy request: %w", err))
	}
	if err := json.Unmarshal(m.Data, &req); err != nil {
		return h.refuse(ctx, m, workload, &platform.DeployRequest{RequestID: m.ID}, fmt.Errorf("deploy request is not JSON: %w", err))
	}
	if req.RequestID == "" {
		req.RequestID = m.ID
	}
	if req.Workload != "" && req.Workload != workload {
		return h.refuse(ctx, m, workload, &req, fmt.Errorf("request names workload %q but arrived on the deploy topic of %q", req.Workload, workload))
	}
	w, ok := h.inv.Lookup(workload)
	switch {
	case !ok:
		return h.refuse(ctx, m, workload, &req, fmt.Errorf("workload %q is not in the inventory", workload))
	case w.Type != inventory.Job:
		return h.refuse(ctx, m, workload, &req, fmt.Errorf("workload %q is a %s, not a job", workload, w.Type))
	case w.GCPProject != m.Project:
		return h.refuse(ctx, m, workload, &req, fmt.Errorf("workload %q lives in project %s, the request came from %s", workload, w.GCPProject, m.Project))
	}
	var (
		res Result
		err error
	)
	switch req.Action {
	case "", platform.ActionApply:
		res, err = h.Apply(ctx, w, &req)
	case platform.ActionDelete:
		res, err = h.Delete(ctx, w)
	default:
		err = event.Permanent(fmt.Errorf("unknown action %q (want %q or %q)", req.Action, platform.ActionApply, platform.ActionDelete))
	}
	if err != nil {
		if event.IsPermanent(err) {
			return h.refuse(ctx, m, workload, &req, err)
		}
		h.log.Warn().Str("event_id", m.ID).Str("workload", workload).Str("request_id", req.RequestID).Err(err).Msg("deploy failed, will retry")
		return err
	}
	h.log.Info().Str("event_id", m.ID).Str("workload", workload).Str("request_id", req.RequestID).
		Str("outcome", res.Outcome).Strs("changes", res.Changes).Msg("deploy " + res.Outcome)
	if err := h.record(ctx, platform.DeployRecord{
		RequestID: req.RequestID, Workload: workload, Outcome: res.Outcome, Changes: res.Changes,
		Job: res.Job, Scheduler: res.Scheduler, Time: h.now().UTC(),
	}); err != nil {
		return err
	}
	if res.intent {
		h.dropIntent(ctx, workload, req.RequestID)
	}
	return nil
}

// refuse logs and records a request that can never succeed, and acknowledges it.
func (h *Handler) refuse(ctx context.Context, m event.Message, workload string, req *platform.DeployRequest, err error) error {
	problems := problemsOf(err)
	h.log.Error().Str("event_id", m.ID).Str("workload", workload).Str("request_id", req.RequestID).Strs("problems", problems).Msg("deploy refused")
	if rerr := h.record(ctx, platform.DeployRecord{
		RequestID: req.RequestID, Workload: workload, Outcome: platform.DeployRefused, Problems: problems, Time: h.now().UTC(),
	}); rerr != nil {
		return rerr // transient: redeliver so the requester hears of it
	}
	return event.Permanent(err)
}

// record keeps the first outcome of a request: a redelivery that changed nothing must not
// overwrite "applied" with "unchanged".
func (h *Handler) record(ctx context.Context, r platform.DeployRecord) error {
	if r.RequestID == "" {
		return nil
	}
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("deploy record: %w", err)
	}
	_, err = h.store.Put(ctx, platform.DeployRecordKey(r.Workload, r.RequestID), b, 0)
	if errors.Is(err, state.ErrPrecondition) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("deploy record %s: %w", r.RequestID, err)
	}
	return nil
}
