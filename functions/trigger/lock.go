package trigger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"runwayjobs.dev/shared/platform"
	"runwayjobs.dev/shared/state"
)

// lockPrefix holds the policy locks, one per workload, apart from the run records.
const lockPrefix = platform.TriggerLockPrefix

// lockRecord is a job's policy lock: the claim key of the request deciding what runs, and when
// another request may take the lock over.
type lockRecord struct {
	Holder     string    `json:"holder"`
	LeaseUntil time.Time `json:"lease_until"`
}

// policyLock is a lock this delivery holds.
type policyLock struct {
	key string
	rec lockRecord
	gen int64
}

// lock takes the policy lock of r's workload, waiting up to Timing.Wait for its holder. The
// lock follows the claim's rules: it is taken over only after its lease expired (a holder
// calls RunJob only with RunJob + Settle of the lease left, so whatever it started is listed
// by then), and a request may retake a lock its own earlier attempt left behind.
func (h *Handler) lock(ctx context.Context, r request) (*policyLock, error) {
	key := lockPrefix + r.workload.Name
	// Fast path: the lock is usually free (each holder deletes it).
	first := &policyLock{key: key, rec: lockRecord{Holder: r.key, LeaseUntil: h.leaseNow().Add(h.t.Lease)}}
	gen, err := h.put(ctx, key, first.rec, 0)
	if err == nil {
		first.gen = gen
		return first, nil
	}
	if !errors.Is(err, state.ErrPrecondition) {
		return nil, fmt.Errorf("policy lock %s: %w", key, err)
	}
	waited := time.Duration(0)
	for {
		l := &policyLock{key: key, rec: lockRecord{Holder: r.key, LeaseUntil: h.leaseNow().Add(h.t.Lease)}}
		var ifGen int64
		var cur lockRecord
		obj, err := h.store.Get(ctx, key)
		switch {
		case errors.Is(err, state.ErrNotFound):
		case err != nil:
			return nil, fmt.Errorf("policy lock %s: %w", key, err)
		default:
			if err := json.Unmarshal(obj.Data, &cur); err != nil {
				return nil, fmt.Errorf("policy lock %s: %w", key, err)
			}
			ifGen = obj.Generation
		}
		if ifGen == 0 || cur.Holder == r.key || !h.leaseNow().Before(cur.LeaseUntil) {
			l.gen, err = h.put(ctx, key, l.rec, ifGen)
			if err == nil {
				return l, nil
			}
			if !errors.Is(err, state.ErrPrecondition) {
				return nil, fmt.Errorf("policy lock %s: %w", key, err)
			}
			continue // somebody else took it in between: look again
		}
		if waited >= h.t.Wait {
			return nil, fmt.Errorf("job %s is being started by %s (policy lock held until %s)", r.workload.Name, cur.Holder, cur.LeaseUntil.UTC().Format(time.RFC3339))
		}
		if err := sleep(ctx, h.t.Poll); err != nil {
			return nil, err
		}
		waited += h.t.Poll
	}
}

// renewLock extends the lock's lease like renew does a claim's.
func (h *Handler) renewLock(ctx context.Context, l *policyLock) error {
	now := h.leaseNow()
	if now.Add(h.t.RunJob + h.t.Settle).Before(l.rec.LeaseUntil) {
		return nil
	}
	l.rec.LeaseUntil = now.Add(h.t.Lease)
	gen, err := h.put(ctx, l.key, l.rec, l.gen)
	if err != nil {
		return fmt.Errorf("renew policy lock %s: %w", l.key, err)
	}
	l.gen = gen
	return nil
}

// unlock releases the lock; if that fails its lease expires on its own. After a RunJob call
// whose outcome is unknown the lock is kept for Settle instead, so that the next request's look
// at the running executions sees the execution that call may have created.
func (h *Handler) unlock(ctx context.Context, l *policyLock, settle bool) {
	ctx = context.WithoutCancel(ctx)
	if settle {
		l.rec.LeaseUntil = h.leaseNow().Add(h.t.Settle)
		if _, err := h.put(ctx, l.key, l.rec, l.gen); err != nil {
			h.log.Warn().Err(err).Str("key", l.key).Msg("policy lock not shortened: it expires with its lease")
		}
		return
	}
	if err := h.store.Delete(ctx, l.key, l.gen); err != nil {
		h.log.Warn().Err(err).Str("key", l.key).Msg("policy lock not released: it expires with its lease")
	}
}
