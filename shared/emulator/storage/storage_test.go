package storage_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	gcs "cloud.google.com/go/storage"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/iterator"
	"google.golang.org/grpc/codes"

	"runwayjobs.dev/shared/emulator"
	"runwayjobs.dev/shared/emulator/clock"
	"runwayjobs.dev/shared/emulator/emulatortest"
	"runwayjobs.dev/shared/emulator/fault"
	"runwayjobs.dev/shared/gcp/storageclient"
)

// start returns an emulator and an official client bound to it.
func start(t *testing.T) (*emulator.Emulator, *gcs.Client) {
	t.Helper()
	e := emulatortest.Start(t, emulator.Options{})
	c, err := storageclient.New(context.Background(), emulatortest.Config(e, "p"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return e, c
}

// put writes data at o under cond in one request and returns the new attributes.
func put(ctx context.Context, o *gcs.ObjectHandle, data []byte, cond *gcs.Conditions) (*gcs.ObjectAttrs, error) {
	if cond != nil {
		o = o.If(*cond)
	}
	w := o.NewWriter(ctx)
	w.ChunkSize = 0
	if _, err := w.Write(data); err != nil {
		w.Close()
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return w.Attrs(), nil
}

func read(ctx context.Context, o *gcs.ObjectHandle) ([]byte, int64, error) {
	r, err := o.NewReader(ctx)
	if err != nil {
		return nil, 0, err
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	return b, r.Attrs.Generation, err
}

// apiError returns the googleapi error in err's chain, failing the test if there is none.
func apiError(t *testing.T, err error) *googleapi.Error {
	t.Helper()
	var ge *googleapi.Error
	if !errors.As(err, &ge) {
		t.Fatalf("error %v (%T) carries no googleapi.Error", err, err)
	}
	return ge
}

func TestBuckets(t *testing.T) {
	ctx := context.Background()
	_, c := start(t)
	b := c.Bucket("runway-state")
	if _, err := b.Attrs(ctx); !errors.Is(err, gcs.ErrBucketNotExist) {
		t.Fatalf("Attrs of a missing bucket = %v, want ErrBucketNotExist", err)
	}
	if err := b.Create(ctx, "p", &gcs.BucketAttrs{Location: "EU"}); err != nil {
		t.Fatal(err)
	}
	if ge := apiError(t, b.Create(ctx, "p", nil)); ge.Code != http.StatusConflict {
		t.Fatalf("second Create = %d, want 409", ge.Code)
	}
	a, err := b.Attrs(ctx)
	if err != nil || a.Name != "runway-state" || a.Location != "EU" || a.StorageClass != "STANDARD" {
		t.Fatalf("Attrs = %+v, %v", a, err)
	}
	if ge := apiError(t, c.Bucket("Bad_Name!").Create(ctx, "p", nil)); ge.Code != http.StatusBadRequest {
		t.Fatalf("Create with a bad name = %d, want 400", ge.Code)
	}
	// The first write creates a bucket.
	if _, err := put(ctx, c.Bucket("auto").Object("x"), []byte("v"), nil); err != nil {
		t.Fatal(err)
	}
	var names []string
	for it := c.Buckets(ctx, "p"); ; {
		a, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, a.Name)
	}
	if want := []string{"auto", "runway-state"}; !slices.Equal(names, want) {
		t.Fatalf("Buckets = %v, want %v", names, want)
	}
	if ge := apiError(t, c.Bucket("auto").Delete(ctx)); ge.Code != http.StatusConflict {
		t.Fatalf("Delete of a non-empty bucket = %d, want 409", ge.Code)
	}
	if err := b.Delete(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Attrs(ctx); !errors.Is(err, gcs.ErrBucketNotExist) {
		t.Fatalf("Attrs after Delete = %v, want ErrBucketNotExist", err)
	}
}

// TestPreconditions checks each condition on insert, read and delete, with the status and
// the JSON error reason Google answers.
func TestPreconditions(t *testing.T) {
	ctx := context.Background()
	_, c := start(t)
	o := c.Bucket("bkt").Object("runs/w/slot-1")
	first, err := put(ctx, o, []byte("one"), &gcs.Conditions{DoesNotExist: true})
	if err != nil {
		t.Fatal(err)
	}
	gen := first.Generation
	tests := []struct {
		name     string
		call     func() error
		wantCode int // 0: success
	}{
		{name: "create existing", wantCode: 412, call: func() error {
			_, err := put(ctx, o, []byte("x"), &gcs.Conditions{DoesNotExist: true})
			return err
		}},
		{name: "update stale", wantCode: 412, call: func() error {
			_, err := put(ctx, o, []byte("x"), &gcs.Conditions{GenerationMatch: gen - 1})
			return err
		}},
		{name: "update missing", wantCode: 412, call: func() error {
			_, err := put(ctx, c.Bucket("bkt").Object("missing"), []byte("x"), &gcs.Conditions{GenerationMatch: gen})
			return err
		}},
		{name: "replace unless generation", wantCode: 412, call: func() error {
			_, err := put(ctx, o, []byte("x"), &gcs.Conditions{GenerationNotMatch: gen})
			return err
		}},
		{name: "attrs at the wrong generation", wantCode: 412, call: func() error {
			_, err := o.If(gcs.Conditions{GenerationMatch: gen + 1}).Attrs(ctx)
			return err
		}},
		{name: "attrs not modified", wantCode: 304, call: func() error {
			_, err := o.If(gcs.Conditions{GenerationNotMatch: gen}).Attrs(ctx)
			return err
		}},
		{name: "read not modified", wantCode: 304, call: func() error {
			_, _, err := read(ctx, o.If(gcs.Conditions{GenerationNotMatch: gen}))
			return err
		}},
		{name: "read at the generation", call: func() error {
			_, _, err := read(ctx, o.If(gcs.Conditions{GenerationMatch: gen}))
			return err
		}},
		{name: "read an old generation", wantCode: 404, call: func() error {
			_, _, err := read(ctx, o.Generation(gen-1))
			return err
		}},
		{name: "metageneration", wantCode: 412, call: func() error {
			_, err := o.If(gcs.Conditions{MetagenerationMatch: 2}).Attrs(ctx)
			return err
		}},
		{name: "delete stale", wantCode: 412, call: func() error {
			return o.If(gcs.Conditions{GenerationMatch: gen - 1}).Delete(ctx)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if tt.wantCode == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatalf("succeeded, want %d", tt.wantCode)
			}
			if tt.wantCode == 404 {
				if !errors.Is(err, gcs.ErrObjectNotExist) {
					t.Fatalf("err = %v, want ErrObjectNotExist", err)
				}
				return
			}
			ge := apiError(t, err)
			if ge.Code != tt.wantCode {
				t.Fatalf("code = %d (%v), want %d", ge.Code, err, tt.wantCode)
			}
			if tt.wantCode == 412 && (len(ge.Errors) != 1 || ge.Errors[0].Reason != "conditionNotMet" || ge.Message == "") {
				t.Fatalf("412 body = %+v, want one error with reason conditionNotMet and a message", ge)
			}
		})
	}
	if b, g, err := read(ctx, o); err != nil || string(b) != "one" || g != gen {
		t.Fatalf("after refused writes: %q gen %d, %v; want one gen %d", b, g, err, gen)
	}
	if err := o.If(gcs.Conditions{GenerationMatch: gen}).Delete(ctx); err != nil {
		t.Fatal(err)
	}
	if err := o.Delete(ctx); !errors.Is(err, gcs.ErrObjectNotExist) {
		t.Fatalf("second Delete = %v, want ErrObjectNotExist", err)
	}
	again, err := put(ctx, o, []byte("two"), &gcs.Conditions{DoesNotExist: true})
	if err != nil || again.Generation <= gen {
		t.Fatalf("recreate = %v, %v: generation must exceed %d", again, err, gen)
	}
}

// TestObjects round-trips names the client escapes and checks the attributes and ranges.
func TestObjects(t *testing.T) {
	ctx := context.Background()
	_, c := start(t)
	b := c.Bucket("bkt")
	names := []string{"plain", "runs/w/slot 1", "a+b=c&d?e#f%g", "ünï/çødé", "trailing/", "a//b"}
	var last int64
	for _, name := range names {
		data := []byte("data of " + name)
		a, err := put(ctx, b.Object(name), data, nil)
		if err != nil {
			t.Fatalf("put %q: %v", name, err)
		}
		if a.Name != name || a.Size != int64(len(data)) || a.Generation <= last || a.Metageneration != 1 {
			t.Fatalf("put %q attrs = name %q size %d gen %d meta %d", name, a.Name, a.Size, a.Generation, a.Metageneration)
		}
		last = a.Generation
		got, gen, err := read(ctx, b.Object(name))
		if err != nil || !bytes.Equal(got, data) || gen != a.Generation {
			t.Fatalf("read %q = %q gen %d, %v", name, got, gen, err)
		}
		attrs, err := b.Object(name).Attrs(ctx)
		if err != nil || attrs.Generation != a.Generation || attrs.CRC32C != a.CRC32C || !bytes.Equal(attrs.MD5, a.MD5) {
			t.Fatalf("Attrs %q = %+v, %v", name, attrs, err)
		}
	}
	w := b.Object("typed").NewWriter(ctx)
	w.ChunkSize = 0
	w.ContentType = "application/json"
	w.Metadata = map[string]string{"owner": "trigger"}
	fmt.Fprint(w, `{"a":1}`)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	a, err := b.Object("typed").Attrs(ctx)
	if err != nil || a.ContentType != "application/json" || a.Metadata["owner"] != "trigger" {
		t.Fatalf("Attrs = %+v, %v", a, err)
	}
	r, err := b.Object("plain").NewRangeReader(ctx, 3, 4)
	if err != nil {
		t.Fatal(err)
	}
	part, _ := io.ReadAll(r)
	r.Close()
	if string(part) != "a of" || r.Attrs.Size != int64(len("data of plain")) || r.Attrs.StartOffset != 3 {
		t.Fatalf("range = %q, attrs %+v", part, r.Attrs)
	}
	if _, _, err := read(ctx, b.Object("nope")); !errors.Is(err, gcs.ErrObjectNotExist) {
		t.Fatalf("read missing = %v, want ErrObjectNotExist", err)
	}
	if _, _, err := read(ctx, c.Bucket("no-bucket").Object("x")); !errors.Is(err, gcs.ErrObjectNotExist) {
		t.Fatalf("read in a missing bucket = %v, want ErrObjectNotExist", err)
	}
}

// TestUploads checks the checksums the client sends and the uploads the emulator refuses.
func TestUploads(t *testing.T) {
	ctx := context.Background()
	_, c := start(t)
	o := c.Bucket("bkt").Object("x")

	w := o.NewWriter(ctx)
	w.ChunkSize = 0
	w.SendCRC32C, w.CRC32C = true, 12345 // wrong
	w.Write([]byte("payload"))
	if ge := apiError(t, w.Close()); ge.Code != http.StatusBadRequest {
		t.Fatalf("wrong crc32c = %d, want 400", ge.Code)
	}

	// The default ChunkSize makes a small write one multipart request, checksum included.
	w = o.NewWriter(ctx)
	w.Write([]byte("payload"))
	if err := w.Close(); err != nil {
		t.Fatalf("default writer, small object: %v", err)
	}

	// A write larger than ChunkSize is a resumable upload, which the emulator refuses.
	w = c.Bucket("bkt").Object("big").NewWriter(ctx)
	w.ChunkSize = 256 << 10
	w.Write(bytes.Repeat([]byte("x"), 300<<10))
	if ge := apiError(t, w.Close()); ge.Code != http.StatusNotImplemented {
		t.Fatalf("resumable upload = %d, want 501", ge.Code)
	}
	if _, err := c.Bucket("bkt").Object("big").Attrs(ctx); !errors.Is(err, gcs.ErrObjectNotExist) {
		t.Fatalf("refused upload left an object: %v", err)
	}
}

// TestList pages through objects with prefixes and delimiters.
func TestList(t *testing.T) {
	ctx := context.Background()
	_, c := start(t)
	b := c.Bucket("bkt")
	var all []string
	for i := range 25 {
		all = append(all, fmt.Sprintf("runs/w/%02d", i))
	}
	all = append(all, "runs/v/1", "runs/x", "deploys/a", "runs/w/") // "runs/w/" ends in the delimiter
	for _, n := range all {
		if _, err := put(ctx, b.Object(n), []byte("v"), nil); err != nil {
			t.Fatal(err)
		}
	}
	list := func(q *gcs.Query, pageSize int) (names, prefixes []string, pages int) {
		t.Helper()
		p := iterator.NewPager(b.Objects(ctx, q), pageSize, "")
		for {
			var page []*gcs.ObjectAttrs
			next, err := p.NextPage(&page)
			if err != nil {
				t.Fatal(err)
			}
			pages++
			for _, a := range page {
				if a.Prefix != "" {
					prefixes = append(prefixes, a.Prefix)
				} else {
					names = append(names, a.Name)
				}
			}
			if next == "" {
				return names, prefixes, pages
			}
		}
	}
	tests := []struct {
		name         string
		query        gcs.Query
		pageSize     int
		wantNames    []string
		wantPrefixes []string
		wantPages    int
	}{
		{name: "prefix, pages of 10", query: gcs.Query{Prefix: "runs/w/"}, pageSize: 10,
			wantNames: append([]string{"runs/w/"}, all[:25]...), wantPages: 3},
		{name: "delimiter", query: gcs.Query{Prefix: "runs/", Delimiter: "/"}, pageSize: 1000,
			wantNames: []string{"runs/x"}, wantPrefixes: []string{"runs/v/", "runs/w/"}, wantPages: 1},
		{name: "delimiter, pages of 1", query: gcs.Query{Delimiter: "/"}, pageSize: 1,
			wantPrefixes: []string{"deploys/", "runs/"}, wantPages: 2},
		{name: "offsets", query: gcs.Query{StartOffset: "runs/w/10", EndOffset: "runs/w/13"}, pageSize: 2,
			wantNames: []string{"runs/w/10", "runs/w/11", "runs/w/12"}, wantPages: 2},
		{name: "nothing", query: gcs.Query{Prefix: "monitor/"}, pageSize: 10, wantPages: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := tt.query
			names, prefixes, pages := list(&q, tt.pageSize)
			if !slices.Equal(names, tt.wantNames) || !slices.Equal(prefixes, tt.wantPrefixes) || pages != tt.wantPages {
				t.Fatalf("names %v\nprefixes %v, %d pages\nwant %v\n%v, %d pages", names, prefixes, pages, tt.wantNames, tt.wantPrefixes, tt.wantPages)
			}
		})
	}
	bad := &gcs.Query{MatchGlob: "**"}
	if _, err := b.Objects(ctx, bad).Next(); err == nil {
		t.Fatal("matchGlob listed, want 400")
	}
}

// TestFaults makes the routes fail through the emulator's fault injector.
func TestFaults(t *testing.T) {
	ctx := context.Background()
	e, c := start(t)
	o := c.Bucket("bkt").Object("x")
	if err := e.Faults().Add(fault.Rule{Method: "/http/storage.googleapis.com/objects.insert", Code: codes.ResourceExhausted, Times: 1}); err != nil {
		t.Fatal(err)
	}
	if ge := apiError(t, func() error { _, err := put(ctx, o, []byte("v"), nil); return err }()); ge.Code != http.StatusTooManyRequests {
		t.Fatalf("injected ResourceExhausted = %d, want 429", ge.Code)
	}
	if _, err := put(ctx, o, []byte("v"), nil); err != nil {
		t.Fatalf("after the fault: %v", err)
	}
}

// TestGenerationsManualClock checks that generations still increase when time stands still.
func TestGenerationsManualClock(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	e := emulatortest.Start(t, emulator.Options{Clock: clock.NewManual(now)})
	c, err := storageclient.New(ctx, emulatortest.Config(e, "p"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var gens []int64
	for _, name := range []string{"a", "b", "a"} {
		a, err := put(ctx, c.Bucket("bkt").Object(name), []byte("v"), nil)
		if err != nil {
			t.Fatal(err)
		}
		if !a.Created.Equal(now) {
			t.Errorf("Created = %v, want the emulator's clock %v", a.Created, now)
		}
		gens = append(gens, a.Generation)
	}
	if want := []int64{now.UnixMicro(), now.UnixMicro() + 1, now.UnixMicro() + 2}; !slices.Equal(gens, want) {
		t.Fatalf("generations = %v, want %v", gens, want)
	}
}
