package trigger

// The claim protocol: exactly one execution per request id or scheduled slot.
//
// Pub/Sub delivers at least once, possibly to several instances at the same moment, and Cloud
// Scheduler may fire one slot twice. Each request therefore has one store key (RunRecordKey or
// SlotRecordKey), and only the delivery that holds that key's claim may call RunJob for it:
//
//  1. A delivery claims the key with Put(key, {claimed, lease_until = now + Lease}, 0). The
//     store's precondition lets exactly one delivery create it.
//  2. A delivery that finds the key already written reads it. A final outcome (started,
//     skipped, missed, refused) is acknowledged: nothing more to do. A claim whose lease has
//     not expired belongs to a worker that may be calling RunJob right now, so the delivery
//     waits a little (Timing.Wait) for it to finish and otherwise returns a transient error:
//     Pub/Sub redelivers later. It never calls RunJob.
//  3. A claim whose lease has expired may be taken over, because its holder crashed or gave up.
//     Its holder may have started an execution and died before recording it, so the taker
//     first lists the job's executions for one whose template env has RUNWAY_REQUEST_ID = the
//     request id (every execution this function starts carries it). If there is one, it
//     records that execution as started and stops. Otherwise it takes the claim over with a
//     Put conditioned on the generation it read, so of two takers only one wins, and goes on
//     as the holder.
//  4. The holder decides (suspended, missed, Forbid, Replace), records the run's window
//     (history.go) and calls RunJob, then records
//     the outcome with a Put conditioned on its generation. If that Put fails, somebody took
//     the claim over, which step 5 makes impossible unless this worker stalled for a whole
//     lease; the taker then found this worker's execution in step 3.
//  5. The invariant that makes step 3 safe: a holder calls RunJob only while at least
//     RunJob + Settle of its lease is left (it renews the lease first otherwise), and each
//     RunJob call is cut off after Timing.RunJob. So every RunJob call of a holder ends at
//     least Settle before its lease does, and an execution it created is listed by the time
//     anybody may take the claim over. If Cloud Run created an execution after a call was cut
//     off later than Settle, a duplicate could start: Settle is sized far beyond Cloud Run's
//     latency, and the clocks of function instances are synchronised far better than that.
//  6. A holder that fails before calling RunJob, or whose RunJob failed with a code that
//     means nothing was created (FailedPrecondition, PermissionDenied, ResourceExhausted,
//     ...), knows that no execution exists: it releases the claim (lease_until = now) so the
//     redelivery can take it over at once. After an error that leaves the outcome unknown
//     (Unavailable, DeadlineExceeded, a lost connection) its call has ended but an execution
//     may still appear: it shortens the lease to Settle from now, and the redelivery looks for
//     the execution (step 3) before retrying. A claim whose RunJob failed transiently is thus
//     retried, and never run twice.
//  7. Leases are measured on each process's wall clock (Handler.leaseNow), not on Google
//     Cloud's time as the configured world sees it (Handler.now, which decides slots and
//     deadlines): on the local platform the emulator's manual clock can jump by hours while a
//     RunJob call is in flight, and a lease must bound that call in real time.
//
// Forbid and Replace decide on what else runs, which no per-request claim can protect: two
// different requests (a slot and a manual run) could both see nothing running and both start.
// Under those policies the holder also takes the job's policy lock (lock.go), a second leased
// key with the same rules, from its check of the running executions until its RunJob has
// returned.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"cloud.google.com/go/run/apiv2/runpb"
	"google.golang.org/api/iterator"

	"runwayjobs.dev/shared/event"
	"runwayjobs.dev/shared/platform"
	"runwayjobs.dev/shared/state"
)

// record is a claim as stored: the platform's RunRecord (which runwayctl and the monitor read)
// plus what the claim protocol and the audit need. RunRecord readers ignore the extra fields.
type record struct {
	platform.RunRecord
	// LeaseUntil is when another delivery may take a claimed record over.
	LeaseUntil time.Time `json:"lease_until,omitzero"`
	// ClaimedAt is when the record was first claimed: no execution of it can be older.
	ClaimedAt time.Time `json:"claimed_at,omitzero"`
	// Job is the Cloud Run job the request runs (full name).
	Job               string `json:"job,omitempty"`
	ConcurrencyPolicy string `json:"concurrency_policy,omitempty"`
	RequestedBy       string `json:"requested_by,omitempty"`
	RequestReason     string `json:"request_reason,omitempty"`
	// Uncertain says the last attempt's RunJob call failed with its outcome unknown (its
	// answer may have been lost after Cloud Run started the execution).
	Uncertain bool `json:"uncertain,omitempty"`
}

// final reports whether an outcome ends the request.
func final(outcome string) bool { return outcome != platform.RunClaimed }

// claim is a record this delivery holds, and its generation.
type claim struct {
	key string
	rec record
	gen int64
}

func (h *Handler) put(ctx context.Context, key string, v any, ifGen int64) (int64, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return 0, fmt.Errorf("encode %s: %w", key, err)
	}
	return h.store.Put(ctx, key, b, ifGen)
}

func (h *Handler) get(ctx context.Context, key string) (record, int64, error) {
	obj, err := h.store.Get(ctx, key)
	if err != nil {
		return record{}, 0, err
	}
	var rec record
	if err := json.Unmarshal(obj.Data, &rec); err != nil {
		return record{}, 0, fmt.Errorf("record %s: %w", key, err)
	}
	return rec, obj.Generation, nil
}

// newRecord is the first record of r.
func (h *Handler) newRecord(r request, job string, now time.Time) record {
	rec := record{
		RunRecord: platform.RunRecord{
			RequestID:     r.requestID,
			Workload:      r.workload.Name,
			Trigger:       r.trigger,
			ScheduledTime: r.slot,
			Outcome:       platform.RunClaimed,
			Time:          now,
		},
		ClaimedAt:         now,
		Job:               job,
		ConcurrencyPolicy: string(r.policy),
	}
	if r.run != nil {
		rec.RequestedBy, rec.RequestReason = r.run.RequestedBy, r.run.Reason
	}
	return rec
}

// refuse records r as refused for reason, unless the key already has a record (which stands),
// and returns the Permanent error that acknowledges the message.
func (h *Handler) refuse(ctx context.Context, r request, reason string) error {
	rec := h.newRecord(r, "", h.now())
	rec.Outcome, rec.Reason = platform.RunRefused, reason
	_, err := h.put(ctx, r.key, rec, 0)
	switch {
	case errors.Is(err, state.ErrPrecondition):
		h.log.Info().Str("key", r.key).Msg("refused request already has a record: it stands")
	case err != nil:
		return fmt.Errorf("record refusal %s: %w", r.key, err) // redeliver, to record it
	}
	return event.Permanent(fmt.Errorf("run request %s refused: %s", r.requestID, reason))
}

// acquire claims r's key for this delivery (steps 1-3 of the protocol). It returns a nil claim
// and nil error when the request needs nothing more (a final record, or an execution found).
func (h *Handler) acquire(ctx context.Context, r request, job *runpb.Job) (*claim, error) {
	rec := h.newRecord(r, job.Name, h.now())
	rec.Attempts, rec.LeaseUntil = 1, h.leaseNow().Add(h.t.Lease)
	gen, err := h.put(ctx, r.key, rec, 0)
	if err == nil {
		return &claim{key: r.key, rec: rec, gen: gen}, nil
	}
	if !errors.Is(err, state.ErrPrecondition) {
		return nil, fmt.Errorf("claim %s: %w", r.key, err)
	}
	var cur record
	waited := time.Duration(0)
	for {
		cur, gen, err = h.get(ctx, r.key)
		if err != nil {
			return nil, fmt.Errorf("claim %s: %w", r.key, err)
		}
		if final(cur.Outcome) {
			h.log.Info().Str("key", r.key).Str("outcome", cur.Outcome).Str("execution", cur.Execution).Msg("duplicate delivery: already done")
			return nil, nil
		}
		if !h.leaseNow().Before(cur.LeaseUntil) {
			return h.takeOver(ctx, r, job, cur, gen)
		}
		if waited >= h.t.Wait {
			break
		}
		if err := sleep(ctx, h.t.Poll); err != nil {
			return nil, err
		}
		waited += h.t.Poll
	}
	return nil, fmt.Errorf("claim %s is held by another delivery until %s (attempt %d)", r.key, cur.LeaseUntil.UTC().Format(time.RFC3339), cur.Attempts)
}

// takeOver is step 3: cur, at generation gen, is a claim whose lease has expired.
func (h *Handler) takeOver(ctx context.Context, r request, job *runpb.Job, cur record, gen int64) (*claim, error) {
	jobName := cur.Job
	if jobName == "" {
		jobName = job.Name
	}
	exec, err := h.findExecution(ctx, jobName, r.requestID, cur.ClaimedAt)
	if err != nil {
		return nil, err
	}
	c := &claim{key: r.key, rec: cur, gen: gen}
	if exec != nil {
		h.log.Warn().Str("key", r.key).Str("execution", exec.Name).Msg("expired claim had started an execution: recording it")
		reason := "recovered after the claim's holder stopped"
		if cur.Uncertain {
			reason = fmt.Sprintf("recovered: attempt %d started it, but its RunJob answer was lost", cur.Attempts)
		}
		return nil, h.finish(ctx, c, platform.RunStarted, reason, exec)
	}
	c.rec.Attempts++
	c.rec.Job, c.rec.Uncertain = job.Name, false
	c.rec.LeaseUntil = h.leaseNow().Add(h.t.Lease)
	c.rec.Time = h.now()
	if c.gen, err = h.put(ctx, r.key, c.rec, gen); err != nil {
		return nil, fmt.Errorf("take over claim %s: %w", r.key, err)
	}
	h.log.Info().Str("key", r.key).Int("attempt", c.rec.Attempts).Msg("expired claim taken over")
	return c, nil
}

// finish records the outcome of a claim this delivery holds. It returns nil, or the
// Permanent error of a refusal, or the store's error (redelivery then reads what happened).
func (h *Handler) finish(ctx context.Context, c *claim, outcome, reason string, exec *runpb.Execution) error {
	c.rec.Outcome, c.rec.Reason = outcome, reason
	c.rec.LeaseUntil, c.rec.Time = time.Time{}, h.now()
	if exec != nil {
		c.rec.Execution, c.rec.LogURI = exec.Name, exec.LogUri
	}
	gen, err := h.put(ctx, c.key, c.rec, c.gen)
	if err != nil {
		h.log.Error().Err(err).Str("key", c.key).Str("outcome", outcome).Str("execution", c.rec.Execution).Msg("outcome not recorded")
		return fmt.Errorf("record %s %s: %w", outcome, c.key, err)
	}
	c.gen = gen
	h.log.Info().Str("key", c.key).Str("outcome", outcome).Str("reason", reason).Str("execution", c.rec.Execution).Int("attempt", c.rec.Attempts).Msg("run request done")
	if outcome == platform.RunRefused {
		return event.Permanent(fmt.Errorf("run request %s refused: %s", c.rec.RequestID, reason))
	}
	return nil
}

// release gives up a claim that is known to have started nothing (step 6), so that the
// redelivery may take it over at once. A failure to release only delays the redelivery until
// the lease expires.
func (h *Handler) release(ctx context.Context, c *claim, cause error) {
	c.rec.LeaseUntil = h.leaseNow()
	c.rec.Reason = fmt.Sprintf("attempt %d: %v", c.rec.Attempts, cause)
	c.rec.Time = h.now()
	gen, err := h.put(ctx, c.key, c.rec, c.gen)
	if err != nil {
		h.log.Warn().Err(err).Str("key", c.key).Msg("claim not released: the redelivery waits for its lease")
		return
	}
	c.gen = gen
}

// note records why the last attempt failed when the outcome of its RunJob call is unknown.
// The call has ended, so the claim may be taken over once Settle has passed: by then an
// execution it created is listed (step 6).
func (h *Handler) note(ctx context.Context, c *claim, cause error) {
	c.rec.Reason = fmt.Sprintf("attempt %d: %v (outcome unknown: looked for after %s)", c.rec.Attempts, cause, h.t.Settle)
	c.rec.Uncertain = true
	if until := h.leaseNow().Add(h.t.Settle); until.Before(c.rec.LeaseUntil) {
		c.rec.LeaseUntil = until
	}
	if gen, err := h.put(ctx, c.key, c.rec, c.gen); err == nil {
		c.gen = gen
	}
}

// renew extends the lease of c if less than RunJob + Settle of it is left (step 5).
func (h *Handler) renew(ctx context.Context, c *claim) error {
	now := h.leaseNow()
	if now.Add(h.t.RunJob + h.t.Settle).Before(c.rec.LeaseUntil) {
		return nil
	}
	c.rec.LeaseUntil = now.Add(h.t.Lease)
	gen, err := h.put(ctx, c.key, c.rec, c.gen)
	if err != nil {
		return fmt.Errorf("renew claim %s: %w", c.key, err)
	}
	c.gen = gen
	return nil
}

// skew is how much older than its claim an execution may look, for clock differences between
// the function and Cloud Run.
const skew = 10 * time.Minute

// findExecution returns the execution of job started for requestID, if any: the one whose
// template env has RUNWAY_REQUEST_ID = requestID. Executions are listed newest first; the walk
// stops at executions created well before since.
func (h *Handler) findExecution(ctx context.Context, job, requestID string, since time.Time) (*runpb.Execution, error) {
	it := h.execs.ListExecutions(ctx, &runpb.ListExecutionsRequest{Parent: job})
	for {
		e, err := it.Next()
		if errors.Is(err, iterator.Done) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("run.ListExecutions %s: %w", job, err)
		}
		if !since.IsZero() && e.GetCreateTime().AsTime().Before(since.Add(-skew)) {
			return nil, nil
		}
		if envOf(e)[platform.EnvRequestID] == requestID {
			return e, nil
		}
	}
}

// envOf returns the plain env values of an execution's first container.
func envOf(e *runpb.Execution) map[string]string {
	out := map[string]string{}
	cs := e.GetTemplate().GetContainers()
	if len(cs) == 0 {
		return out
	}
	for _, v := range cs[0].GetEnv() {
		if _, ok := v.GetValues().(*runpb.EnvVar_Value); ok {
			out[v.GetName()] = v.GetValue()
		}
	}
	return out
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
