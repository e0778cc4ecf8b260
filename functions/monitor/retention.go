package monitor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"runwayjobs.dev/shared/platform"
	"runwayjobs.dev/shared/state"
)

// Retention: the store keeps what its readers need, for platform.RecordRetention.
//
// The monitor's own state is one object per project and bounded by the number of jobs: an open
// incident per job, the span of the last one resolved, the slots served since the last check,
// the runs still running, and an outbox of alerts that is emptied by delivery or after
// MaxDeliveryAge. Nothing in it grows with time.
//
// The trigger's run records (runs/) and the deploy function's outcomes (deploys/) are written
// once per request or slot and would otherwise pile up forever. The monitor deletes the expired
// ones in passes: a pass walks the retained prefixes a page at a time, one page a tick — it
// lists at most PruneBatch keys after a cursor kept in the store (retentionKey), deletes those
// older than RecordRetention (a slot's claim by the slot in its key, any other record by its
// time, read for at most PruneReads records a tick) and moves the cursor on. A pass begins at
// most every PruneInterval: between passes a tick reads the cursor and nothing else. A record
// is therefore deleted between RecordRetention and RecordRetention + PruneInterval + one pass
// after its time, and the store holds at most that span of records.
//
// A pruning tick costs one listing page, a bounded number of reads and deletes, and two small
// writes, whatever the store holds; a tick between passes costs one read. A pass costs the
// store's records / PruneBatch ticks, once per PruneInterval rather than back to back, so the
// work per day is bounded by what the retention window holds, not by the platform's age, and
// most ticks do none of it. (On the directory store a page reads the whole directory it falls
// in, so a pruning tick there costs up to a retention window of one workload's claims.)
//
// Concurrent or duplicated ticks are safe: a delete of a key already deleted is a no-op, the
// cursor is written with a generation precondition (a tick that loses the race leaves it to the
// winner), and a record is deleted only once it is older than any delivery Pub/Sub can still make
// of its request.

// retentionKey is the store key of the pruning cursor.
const retentionKey = platform.MonitorRetentionPrefix + "cursor"

// retentionCursor is where the next tick's pruning starts: after After in
// platform.RetainedPrefixes[Prefix]. At the start of the prefixes (Prefix 0, After "") no pass
// is under way, and the next one begins PruneInterval after Began.
type retentionCursor struct {
	Prefix int    `json:"prefix"`
	After  string `json:"after,omitempty"`
	// Began is when the pass under way, or else the last one, began (zero: none yet).
	Began time.Time `json:"began,omitzero"`
}

// resting reports whether no pass is under way and the next may not begin yet at now. A Began
// in the future (a clock ahead) does not hold pruning off.
func (c retentionCursor) resting(now time.Time, interval time.Duration) bool {
	if c.Prefix != 0 || c.After != "" || c.Began.IsZero() {
		return false
	}
	since := now.Sub(c.Began)
	return since >= 0 && since < interval
}

// pruneStats counts what one tick's pruning did.
type pruneStats struct {
	Listed, Read, Deleted int
}

// prune deletes the expired records of one page after the cursor and moves the cursor on.
func (h *Handler) prune(ctx context.Context) (pruneStats, error) {
	var st pruneStats
	var cur retentionCursor
	obj, err := h.store.Get(ctx, retentionKey)
	switch {
	case errors.Is(err, state.ErrNotFound):
	case err != nil:
		return st, fmt.Errorf("retention cursor: %w", err)
	default:
		if err := json.Unmarshal(obj.Data, &cur); err != nil {
			cur = retentionCursor{} // unreadable: start a new pass
		}
	}
	prefixes := platform.RetainedPrefixes
	if cur.Prefix < 0 || cur.Prefix >= len(prefixes) {
		cur = retentionCursor{}
	}
	now := h.now()
	if cur.resting(now, h.cfg.PruneInterval) {
		return st, nil
	}
	next := retentionCursor{Prefix: cur.Prefix, After: cur.After, Began: cur.Began}
	if cur.Prefix == 0 && cur.After == "" {
		next.Began = now // a pass begins
	}
	prefix := prefixes[cur.Prefix]
	keys, err := h.store.ListPage(ctx, prefix, cur.After, h.cfg.PruneBatch)
	if err != nil {
		return st, fmt.Errorf("retention: %w", err)
	}
	st.Listed = len(keys)
	horizon := now.Add(-h.cfg.RecordRetention)
	done := len(keys) < h.cfg.PruneBatch // the page reaches the end of the prefix
	for _, key := range keys {
		at, ok := platform.SlotOfKey(key)
		var gen int64
		if !ok {
			if st.Read >= h.cfg.PruneReads {
				done = false // the rest of the page waits for the next tick
				break
			}
			st.Read++
			o, err := h.store.Get(ctx, key)
			if errors.Is(err, state.ErrNotFound) {
				next.After = key
				continue
			}
			if err != nil {
				return st, fmt.Errorf("retention: %w", err)
			}
			if at, err = platform.RecordTime(o.Data); err != nil {
				h.log.Warn().Err(err).Str("key", key).Msg("retention: record kept, its time is unreadable")
				next.After = key
				continue
			}
			gen = o.Generation // a record rewritten since it was read is not deleted
		}
		if at.Before(horizon) {
			err := h.store.Delete(ctx, key, gen)
			switch {
			case err == nil:
				st.Deleted++
			case errors.Is(err, state.ErrNotFound), errors.Is(err, state.ErrPrecondition):
			default:
				return st, fmt.Errorf("retention: %w", err)
			}
		}
		next.After = key
	}
	if done {
		// On to the next prefix; after the last, the pass is over and rests.
		next = retentionCursor{Prefix: (cur.Prefix + 1) % len(prefixes), Began: next.Began}
	}
	if next.Prefix == cur.Prefix && next.After == cur.After && next.Began.Equal(cur.Began) {
		return st, nil
	}
	b, err := json.Marshal(next)
	if err != nil {
		return st, fmt.Errorf("retention cursor: %w", err)
	}
	if _, err := h.store.Put(ctx, retentionKey, b, obj.Generation); err != nil && !errors.Is(err, state.ErrPrecondition) {
		return st, fmt.Errorf("retention cursor: %w", err)
	}
	return st, nil
}

// pruneDefaults are the retention settings a zero Config gets.
const (
	defaultPruneBatch    = 500
	defaultPruneReads    = 50
	defaultPruneInterval = 24 * time.Hour
)

// retentionOf is the store's record retention: platform.RecordRetention unless a test shortens
// it.
func retentionOf(d time.Duration) time.Duration {
	if d <= 0 {
		return platform.RecordRetention
	}
	return d
}
