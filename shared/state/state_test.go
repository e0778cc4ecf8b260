package state

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"sync"
	"testing"
)

func newDir(t *testing.T) *Dir {
	t.Helper()
	d, err := NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestDirPreconditions(t *testing.T) {
	ctx := context.Background()
	d := newDir(t)
	if _, err := d.Get(ctx, "runs/a/1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get missing = %v, want ErrNotFound", err)
	}
	if _, err := d.Put(ctx, "runs/a/1", []byte("x"), 7); !errors.Is(err, ErrPrecondition) {
		t.Fatalf("Put missing with generation 7 = %v, want ErrPrecondition", err)
	}
	g1, err := d.Put(ctx, "runs/a/1", []byte("one"), 0)
	if err != nil || g1 <= 0 {
		t.Fatalf("create = %d, %v", g1, err)
	}
	if _, err := d.Put(ctx, "runs/a/1", []byte("again"), 0); !errors.Is(err, ErrPrecondition) {
		t.Fatalf("second create = %v, want ErrPrecondition", err)
	}
	g2, err := d.Put(ctx, "runs/a/1", []byte("two"), g1)
	if err != nil || g2 <= g1 {
		t.Fatalf("update = %d, %v (previous %d)", g2, err, g1)
	}
	if _, err := d.Put(ctx, "runs/a/1", []byte("stale"), g1); !errors.Is(err, ErrPrecondition) {
		t.Fatalf("stale update = %v, want ErrPrecondition", err)
	}
	o, err := d.Get(ctx, "runs/a/1")
	if err != nil || string(o.Data) != "two" || o.Generation != g2 {
		t.Fatalf("Get = %q gen %d, %v; want two gen %d", o.Data, o.Generation, err, g2)
	}
	if err := d.Delete(ctx, "runs/a/1", g1); !errors.Is(err, ErrPrecondition) {
		t.Fatalf("stale delete = %v, want ErrPrecondition", err)
	}
	if err := d.Delete(ctx, "runs/a/1", g2); err != nil {
		t.Fatal(err)
	}
	if err := d.Delete(ctx, "runs/a/1", 0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("delete missing = %v, want ErrNotFound", err)
	}
	g3, err := d.Put(ctx, "runs/a/1", []byte("new"), 0)
	if err != nil || g3 <= g2 {
		t.Fatalf("recreate = %d, %v: a generation must never repeat (previous %d)", g3, err, g2)
	}
}

// TestDirOneWinner races creators of one key (each with its own lock file descriptor, as
// separate processes have) and counts the winners.
func TestDirOneWinner(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins, conflicts := 0, 0
	for i := range 20 {
		wg.Go(func() {
			d, err := NewDir(root) // a separate handle per worker
			if err != nil {
				t.Error(err)
				return
			}
			_, err = d.Put(ctx, "runs/w/slot-1", []byte(strconv.Itoa(i)), 0)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
			case errors.Is(err, ErrPrecondition):
				conflicts++
			default:
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if wins != 1 || conflicts != 19 {
		t.Fatalf("wins = %d, conflicts = %d; want 1 and 19", wins, conflicts)
	}
}

// TestDirCompareAndSwap increments a counter from many goroutines with read-modify-write
// loops; no increment may be lost.
func TestDirCompareAndSwap(t *testing.T) {
	ctx := context.Background()
	d := newDir(t)
	if _, err := d.Put(ctx, "counter", []byte("0"), 0); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 10 {
				for {
					o, err := d.Get(ctx, "counter")
					if err != nil {
						t.Error(err)
						return
					}
					n, _ := strconv.Atoi(string(o.Data))
					_, err = d.Put(ctx, "counter", []byte(strconv.Itoa(n+1)), o.Generation)
					if err == nil {
						break
					}
					if !errors.Is(err, ErrPrecondition) {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	o, err := d.Get(ctx, "counter")
	if err != nil || string(o.Data) != "80" {
		t.Fatalf("counter = %q, %v; want 80", o.Data, err)
	}
}

func TestDirList(t *testing.T) {
	ctx := context.Background()
	d := newDir(t)
	for _, k := range []string{"runs/b/2", "runs/a/1", "deploys/a/x", "runs/a/slot-5"} {
		if _, err := d.Put(ctx, k, []byte("v"), 0); err != nil {
			t.Fatal(err)
		}
	}
	got, err := d.List(ctx, "runs/a/")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"runs/a/1", "runs/a/slot-5"}; !slices.Equal(got, want) {
		t.Fatalf("List = %v, want %v", got, want)
	}
	all, _ := d.List(ctx, "")
	if len(all) != 4 {
		t.Fatalf("List all = %v: lock and temporary files must not show", all)
	}
}

func TestInvalidKeys(t *testing.T) {
	ctx := context.Background()
	d := newDir(t)
	for _, key := range []string{"", "/abs", "a/../b", "a//b", "dir/", ".hidden", "a/.locks", "a\\b"} {
		if _, err := d.Put(ctx, key, nil, 0); err == nil {
			t.Errorf("Put(%q) succeeded, want an invalid-key error", key)
		}
	}
}

func TestOpen(t *testing.T) {
	tests := []struct {
		name    string
		url     string
		wantErr bool
	}{
		{name: "directory", url: t.TempDir()},
		{name: "file url", url: "file://" + t.TempDir()},
		{name: "empty", url: "", wantErr: true},
		{name: "unknown scheme", url: "s3://bucket", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Open(tt.url)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Open(%q) error = %v, wantErr %v", tt.url, err, tt.wantErr)
			}
		})
	}
}
