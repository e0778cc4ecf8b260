package state

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
)

// opener returns a new handle on one store, as another process or function instance opens it.
type opener func(t *testing.T) Store

// newStore makes an empty store and returns how to open it.
type newStore func(t *testing.T) opener

// testConformance runs the behaviour every Store must have. Dir and GCS both run it.
func testConformance(t *testing.T, mk newStore) {
	t.Run("preconditions", func(t *testing.T) { testPreconditions(t, mk(t)(t)) })
	t.Run("one winner", func(t *testing.T) { testOneWinner(t, mk(t)) })
	t.Run("compare and swap", func(t *testing.T) { testCompareAndSwap(t, mk(t)) })
	t.Run("list", func(t *testing.T) { testList(t, mk(t)(t)) })
	t.Run("list page", func(t *testing.T) { testListPage(t, mk(t)(t)) })
	t.Run("data", func(t *testing.T) { testData(t, mk(t)(t)) })
	t.Run("invalid keys", func(t *testing.T) { testInvalidKeys(t, mk(t)(t)) })
}

// testPreconditions walks one key through its life. Generations are named by the step that
// produced them ("g1"); "" means no precondition (0).
func testPreconditions(t *testing.T, s Store) {
	ctx := context.Background()
	const key = "runs/a/1"
	steps := []struct {
		name     string
		op       string // get, put, delete
		data     string
		ifGen    string // a saved generation's name, a number, or "" for 0
		save     string // save the generation returned by put or get under this name
		wantErr  error
		wantData string
	}{
		{name: "get missing", op: "get", wantErr: ErrNotFound},
		{name: "update missing", op: "put", data: "x", ifGen: "7", wantErr: ErrPrecondition},
		{name: "delete missing", op: "delete", wantErr: ErrNotFound},
		{name: "delete missing at a generation", op: "delete", ifGen: "7", wantErr: ErrNotFound},
		{name: "create", op: "put", data: "one", save: "g1"},
		{name: "get created", op: "get", wantData: "one", save: "read1"},
		{name: "second create", op: "put", data: "again", wantErr: ErrPrecondition},
		{name: "update", op: "put", data: "two", ifGen: "g1", save: "g2"},
		{name: "stale update", op: "put", data: "stale", ifGen: "g1", wantErr: ErrPrecondition},
		{name: "get updated", op: "get", wantData: "two", save: "read2"},
		{name: "stale delete", op: "delete", ifGen: "g1", wantErr: ErrPrecondition},
		{name: "delete", op: "delete", ifGen: "g2"},
		{name: "get deleted", op: "get", wantErr: ErrNotFound},
		{name: "update deleted", op: "put", data: "x", ifGen: "g2", wantErr: ErrPrecondition},
		{name: "recreate", op: "put", data: "new", save: "g3"},
		{name: "delete any", op: "delete"},
		{name: "delete again", op: "delete", wantErr: ErrNotFound},
	}
	gens := map[string]int64{}
	for _, st := range steps {
		var ifGen int64
		if st.ifGen != "" {
			g, ok := gens[st.ifGen]
			if !ok {
				var err error
				if g, err = strconv.ParseInt(st.ifGen, 10, 64); err != nil {
					t.Fatalf("%s: unknown generation %q", st.name, st.ifGen)
				}
			}
			ifGen = g
		}
		var gen int64
		var err error
		var got Object
		switch st.op {
		case "get":
			got, err = s.Get(ctx, key)
			gen = got.Generation
		case "put":
			gen, err = s.Put(ctx, key, []byte(st.data), ifGen)
		case "delete":
			err = s.Delete(ctx, key, ifGen)
		}
		if !errors.Is(err, st.wantErr) || (st.wantErr == nil && err != nil) {
			t.Fatalf("%s: %s = %v, want %v", st.name, st.op, err, st.wantErr)
		}
		if st.op == "get" && err == nil && string(got.Data) != st.wantData {
			t.Fatalf("%s: Get = %q, want %q", st.name, got.Data, st.wantData)
		}
		if st.save != "" {
			if gen <= 0 {
				t.Fatalf("%s: generation %d, want > 0", st.name, gen)
			}
			gens[st.save] = gen
		}
	}
	switch {
	case gens["read1"] != gens["g1"] || gens["read2"] != gens["g2"]:
		t.Errorf("Get generations %d, %d; Put returned %d, %d", gens["read1"], gens["read2"], gens["g1"], gens["g2"])
	case !(gens["g1"] < gens["g2"] && gens["g2"] < gens["g3"]):
		t.Errorf("generations %d, %d, %d: want strictly increasing, never repeated after a delete", gens["g1"], gens["g2"], gens["g3"])
	}
}

// testOneWinner races 20 creators of one key, each through its own handle, and counts winners.
func testOneWinner(t *testing.T, open opener) {
	ctx := context.Background()
	const workers = 20
	handles := make([]Store, workers)
	for i := range handles {
		handles[i] = open(t)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins, conflicts := 0, 0
	var winner int64
	start := make(chan struct{})
	for i, s := range handles {
		wg.Go(func() {
			<-start
			gen, err := s.Put(ctx, "runs/w/slot-1", []byte(strconv.Itoa(i)), 0)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
				winner = gen
			case errors.Is(err, ErrPrecondition):
				conflicts++
			default:
				t.Error(err)
			}
		})
	}
	close(start)
	wg.Wait()
	if wins != 1 || conflicts != workers-1 {
		t.Fatalf("wins = %d, conflicts = %d; want 1 and %d", wins, conflicts, workers-1)
	}
	o, err := handles[0].Get(ctx, "runs/w/slot-1")
	if err != nil || o.Generation != winner {
		t.Fatalf("Get = gen %d, %v; want the winner's generation %d", o.Generation, err, winner)
	}
}

// testCompareAndSwap increments a counter from many handles with read-modify-write loops; no
// increment may be lost.
func testCompareAndSwap(t *testing.T, open opener) {
	ctx := context.Background()
	const workers, increments = 8, 10
	s0 := open(t)
	if _, err := s0.Put(ctx, "counter", []byte("0"), 0); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range workers {
		s := open(t)
		wg.Go(func() {
			for range increments {
				for {
					o, err := s.Get(ctx, "counter")
					if err != nil {
						t.Error(err)
						return
					}
					n, _ := strconv.Atoi(string(o.Data))
					_, err = s.Put(ctx, "counter", []byte(strconv.Itoa(n+1)), o.Generation)
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
	o, err := s0.Get(ctx, "counter")
	if want := strconv.Itoa(workers * increments); err != nil || string(o.Data) != want {
		t.Fatalf("counter = %q, %v; want %s", o.Data, err, want)
	}
}

func testList(t *testing.T, s Store) {
	ctx := context.Background()
	if got, err := s.List(ctx, ""); err != nil || len(got) != 0 {
		t.Fatalf("List of an empty store = %v, %v; want nothing", got, err)
	}
	for _, k := range []string{"runs/b/2", "runs/a/1", "deploys/a/x", "runs/a/slot-5", "runs/ab/1"} {
		if _, err := s.Put(ctx, k, []byte("v"), 0); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name   string
		prefix string
		want   []string
	}{
		{name: "directory", prefix: "runs/a/", want: []string{"runs/a/1", "runs/a/slot-5"}},
		{name: "name prefix", prefix: "runs/a", want: []string{"runs/a/1", "runs/a/slot-5", "runs/ab/1"}},
		{name: "all", prefix: "", want: []string{"deploys/a/x", "runs/a/1", "runs/a/slot-5", "runs/ab/1", "runs/b/2"}},
		{name: "none", prefix: "monitor/", want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.List(ctx, tt.prefix)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("List(%q) = %v, want %v", tt.prefix, got, tt.want)
			}
		})
	}
	if err := s.Delete(ctx, "runs/a/1", 0); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.List(ctx, "runs/a/"); !slices.Equal(got, []string{"runs/a/slot-5"}) {
		t.Fatalf("List after delete = %v", got)
	}
}

// testListPage walks keys a page at a time from various places; a dash sorts before the slash,
// so runs/a-b/ comes before runs/a/ in key order though not in a directory's.
func testListPage(t *testing.T, s Store) {
	ctx := context.Background()
	keys := []string{"deploys/a/x", "runs/a-b/1", "runs/a/1", "runs/a/slot-5", "runs/a/slot-6", "runs/ab/1", "runs/b/2", "runs/b/c/3"}
	for _, k := range keys {
		if _, err := s.Put(ctx, k, []byte("v"), 0); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name, prefix, after string
		limit               int
		want                []string
	}{
		{name: "first page", prefix: "runs/", limit: 2, want: []string{"runs/a-b/1", "runs/a/1"}},
		{name: "after a key", prefix: "runs/", after: "runs/a/1", limit: 2, want: []string{"runs/a/slot-5", "runs/a/slot-6"}},
		{name: "after a missing key", prefix: "runs/", after: "runs/a/slot-55", limit: 2, want: []string{"runs/a/slot-6", "runs/ab/1"}},
		{name: "after a directory's name", prefix: "runs/", after: "runs/a", limit: 2, want: []string{"runs/a-b/1", "runs/a/1"}},
		{name: "after a directory", prefix: "runs/", after: "runs/a/", limit: 1, want: []string{"runs/a/1"}},
		{name: "into a subdirectory", prefix: "runs/b", after: "runs/b/2", limit: 5, want: []string{"runs/b/c/3"}},
		{name: "last page is short", prefix: "runs/", after: "runs/ab/1", limit: 5, want: []string{"runs/b/2", "runs/b/c/3"}},
		{name: "past the end", prefix: "runs/", after: "runs/z", limit: 5, want: nil},
		{name: "name prefix", prefix: "runs/a/slot-", limit: 5, want: []string{"runs/a/slot-5", "runs/a/slot-6"}},
		{name: "after below prefix", prefix: "runs/b/", after: "deploys/z", limit: 5, want: []string{"runs/b/2", "runs/b/c/3"}},
		{name: "everything", prefix: "", limit: 100, want: keys},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.ListPage(ctx, tt.prefix, tt.after, tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) == 0 {
				got = nil
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("ListPage(%q, %q, %d) = %v, want %v", tt.prefix, tt.after, tt.limit, got, tt.want)
			}
		})
	}
	// A walk by pages of every size sees what List sees.
	all, err := s.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	for limit := 1; limit <= len(all)+1; limit++ {
		var walked []string
		for after := ""; ; {
			page, err := s.ListPage(ctx, "", after, limit)
			if err != nil {
				t.Fatal(err)
			}
			walked = append(walked, page...)
			if len(page) < limit {
				break
			}
			after = page[len(page)-1]
		}
		if !slices.Equal(walked, all) {
			t.Fatalf("walk by pages of %d = %v, want %v", limit, walked, all)
		}
	}
	if _, err := s.ListPage(ctx, "", "", 0); err == nil {
		t.Error("ListPage with limit 0: no error")
	}
}

// testData stores values that a text-minded store would damage.
func testData(t *testing.T, s Store) {
	ctx := context.Background()
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	tests := []struct {
		name string
		key  string
		data []byte
	}{
		{name: "empty", key: "v/empty", data: []byte{}},
		{name: "every byte", key: "v/bytes", data: all},
		{name: "json", key: "v/json", data: []byte(`{"a":"b\n"}`)},
		{name: "large", key: "v/large", data: bytes.Repeat([]byte("0123456789abcdef"), 64<<10)}, // 1 MiB
		{name: "odd key", key: "v/a b+c%20d=é", data: []byte("x")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gen, err := s.Put(ctx, tt.key, tt.data, 0)
			if err != nil {
				t.Fatal(err)
			}
			o, err := s.Get(ctx, tt.key)
			if err != nil || !bytes.Equal(o.Data, tt.data) || o.Generation != gen {
				t.Fatalf("Get = %d bytes gen %d, %v; want %d bytes gen %d", len(o.Data), o.Generation, err, len(tt.data), gen)
			}
			if keys, _ := s.List(ctx, tt.key); !slices.Equal(keys, []string{tt.key}) {
				t.Fatalf("List(%q) = %q", tt.key, keys)
			}
		})
	}
}

func testInvalidKeys(t *testing.T, s Store) {
	ctx := context.Background()
	for _, key := range []string{"", "/abs", "a/../b", "a//b", "dir/", ".hidden", "a/.locks", "a\\b", "a\nb"} {
		if _, err := s.Put(ctx, key, nil, 0); err == nil {
			t.Errorf("Put(%q) succeeded, want an invalid-key error", key)
		}
		if _, err := s.Get(ctx, key); err == nil || errors.Is(err, ErrNotFound) {
			t.Errorf("Get(%q) = %v, want an invalid-key error", key, err)
		}
		if err := s.Delete(ctx, key, 0); err == nil || errors.Is(err, ErrNotFound) {
			t.Errorf("Delete(%q) = %v, want an invalid-key error", key, err)
		}
	}
}

func TestConformanceDir(t *testing.T) {
	testConformance(t, func(t *testing.T) opener {
		root := t.TempDir()
		return func(t *testing.T) Store {
			d, err := NewDir(root)
			if err != nil {
				t.Fatal(err)
			}
			return d
		}
	})
}

// TestDirDeleteLeavesNoLock checks that deleted keys leave no lock file behind (a store whose
// keys come and go would otherwise grow a lock per key ever written), and that writers racing
// with deletes of one key still exclude each other.
func TestDirDeleteLeavesNoLock(t *testing.T) {
	ctx := context.Background()
	d, err := NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"runs/a/slot-1", "runs/a/slot-2"} {
		if _, err := d.Put(ctx, k, []byte("v"), 0); err != nil {
			t.Fatal(err)
		}
		if err := d.Delete(ctx, k, 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Delete(ctx, "runs/a/never", 0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Delete of a missing key = %v, want ErrNotFound", err)
	}
	locks, err := os.ReadDir(filepath.Join(d.Root(), ".locks"))
	if err != nil {
		t.Fatal(err)
	}
	if len(locks) != 0 {
		t.Fatalf("%d lock files left after the keys were deleted: %v", len(locks), locks)
	}
	// Creators and deleters of one key: each create must be won by exactly one of the
	// creators that saw the key missing, whatever the deletes do to the lock file.
	const key = "runs/a/raced"
	var wg sync.WaitGroup
	var mu sync.Mutex
	created := 0
	for range 8 {
		wg.Go(func() {
			for range 50 {
				if _, err := d.Put(ctx, key, []byte("v"), 0); err == nil {
					mu.Lock()
					created++
					mu.Unlock()
					if err := d.Delete(ctx, key, 0); err != nil {
						t.Errorf("delete of a key this goroutine created: %v", err)
					}
				} else if !errors.Is(err, ErrPrecondition) {
					t.Errorf("put: %v", err)
				}
			}
		})
	}
	wg.Wait()
	if created == 0 {
		t.Fatal("no create succeeded")
	}
}
