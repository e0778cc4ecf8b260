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
// once per request or slot and would otherwise pile up forever. Each tick deletes a bounded
// share of the expired ones: it lists one page of at most PruneBatch keys after a cursor kept in
// the store (retentionKey), deletes those older than RecordRetention — a slot's claim by the slot
// in its key, any other record by its time, read for at most PruneReads records a tick — and
// moves the cursor on, wrapping round the prefixes. So a tick's pruning costs one listing page,
// a bounded number of reads and deletes, and two small writes, whatever the store holds, and
// every record is looked at once per pass (the store's records / PruneBatch ticks).
//
// Concurrent or duplicated ticks are safe: a delete of a key already deleted is a no-op, the
// cursor is written with a generation precondition (a tick that loses the race leaves it to the
// winner), and a record is deleted only once it is older than any delivery Pub/Sub can still make
// of its request.

// retentionKey is the store key of the pruning cursor.
const retentionKey = "monitor-retention/cursor"

// retentionCursor is where the next tick's pruning starts: after After in
// platform.RetainedPrefixes[Prefix].
type retentionCursor struct {
	Prefix int    `json:"prefix"`
	After  string `json:"after,omitempty"`
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
	prefix := prefixes[cur.Prefix]
	keys, err := h.store.ListPage(ctx, prefix, cur.After, h.cfg.PruneBatch)
	if err != nil {
		return st, fmt.Errorf("retention: %w", err)
	}
	st.Listed = len(keys)
	horizon := h.now().Add(-h.cfg.RecordRetention)
	next := retentionCursor{Prefix: cur.Prefix, After: cur.After}
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
		next = retentionCursor{Prefix: (cur.Prefix + 1) % len(prefixes)}
	}
	if next == cur {
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
	defaultPruneBatch = 500
	defaultPruneReads = 50
)

// retentionOf is the store's record retention: platform.RecordRetention unless a test shortens
// it.
func retentionOf(d time.Duration) time.Duration {
	if d <= 0 {
		return platform.RecordRetention
	}
	return d
}
