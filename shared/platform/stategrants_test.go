package platform

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"runwayjobs.dev/shared/state"
)

// Every key a function builds is inside its own grant, and outside the others' write grants.
func TestStateKeysInGrants(t *testing.T) {
	slot := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name, key, writer string
	}{
		{name: "deploy record", key: DeployRecordKey("w", "r1"), writer: "deploy"},
		{name: "deploy intent", key: DeployIntentKey("w", "r1"), writer: "deploy"},
		{name: "run record", key: RunRecordKey("w", "r1"), writer: "trigger"},
		{name: "slot record", key: SlotRecordKey("w", slot), writer: "trigger"},
		{name: "run windows", key: RunWindowsKey("w"), writer: "trigger"},
		{name: "trigger lock", key: TriggerLockPrefix + "w", writer: "trigger"},
		{name: "monitor state", key: MonitorStateKey("p"), writer: "monitor"},
		{name: "retention cursor", key: MonitorRetentionPrefix + "cursor", writer: "monitor"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for fn, g := range StateGrants {
				writes := false
				for _, p := range g.Write {
					writes = writes || strings.HasPrefix(tc.key, p)
				}
				if writes != (fn == tc.writer) {
					t.Errorf("%s: %s writes it: %v, want %v", tc.key, fn, writes, fn == tc.writer)
				}
			}
		})
	}
}

// ScopedStore enforces the grant: the monitor may prune a run record but not write one, and the
// deploy function may not read one.
func TestScopedStore(t *testing.T) {
	ctx := context.Background()
	dir, err := state.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	key := RunRecordKey("w", "r1")
	if _, err := ScopedStore("trigger", dir).Put(ctx, key, []byte("{}"), 0); err != nil {
		t.Fatalf("trigger writes its record: %v", err)
	}
	if _, err := ScopedStore("monitor", dir).Put(ctx, key, []byte("{}"), 0); !errors.Is(err, state.ErrOutOfGrant) {
		t.Fatalf("monitor writes a run record: %v, want ErrOutOfGrant", err)
	}
	if _, err := ScopedStore("deploy", dir).Get(ctx, key); !errors.Is(err, state.ErrOutOfGrant) {
		t.Fatalf("deploy reads a run record: %v, want ErrOutOfGrant", err)
	}
	if err := ScopedStore("monitor", dir).Delete(ctx, key, 0); err != nil {
		t.Fatalf("monitor prunes a run record: %v", err)
	}
}
