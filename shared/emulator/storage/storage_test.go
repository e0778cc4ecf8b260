package storage_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	"google.golang.org/api/googleapi"
	storagev1 "google.golang.org/api/storage/v1"
	"google.golang.org/grpc/codes"

	"runwayjobs.dev/shared/emulator"
	"runwayjobs.dev/shared/emulator/clock"
	"runwayjobs.dev/shared/emulator/emulatortest"
	"runwayjobs.dev/shared/emulator/fault"
	"runwayjobs.dev/shared/gcp"
)

// The official client of these tests is the generated Cloud Storage JSON API client
// (google.golang.org/api/storage/v1), the one the functions, runwayctl and the state store
// use. cloud.google.com/go/storage speaks the same JSON API to the emulator (which serves no
// XML API); it is not in the test graph, as it links gRPC's xDS and OpenTelemetry's SDK
// (177 packages, ~55 CPU-seconds of every make test: docs/benchmarks.md, "make test").

// start returns an emulator and an official client bound to it.
func start(t *testing.T) (*emulator.Emulator, *storagev1.Service) {
	t.Helper()
	e := emulatortest.Start(t, emulator.Options{})
	return e, client(t, e)
}

// client returns the official client bound to e.
func client(t *testing.T, e *emulator.Emulator) *storagev1.Service {
	t.Helper()
	c, err := gcp.NewStorageAPI(context.Background(), emulatortest.Config(e, "p"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// cond is the precondition of a write, read or delete; nil fields are not sent.
type cond struct {
	generationMatch, generationNotMatch, metagenerationMatch *int64
}

func i64(v int64) *int64 { return &v }

// doesNotExist is the precondition of a create: generation 0 matches no live object.
var doesNotExist = &cond{generationMatch: i64(0)}

// object names one object.
type object struct{ bucket, name string }

// put writes data at o under c in one (multipart) request and returns the new object.
func put(ctx context.Context, s *storagev1.Service, o object, data []byte, c *cond) (*storagev1.Object, error) {
	return insert(ctx, s, &storagev1.Object{Bucket: o.bucket, Name: o.name}, data, c, googleapi.ChunkSize(0))
}

// insert uploads obj's metadata and data with the media options (a chunk size makes it a
// resumable upload when data is larger).
func insert(ctx context.Context, s *storagev1.Service, obj *storagev1.Object, data []byte, c *cond, opts ...googleapi.MediaOption) (*storagev1.Object, error) {
	return conditioned(s.Objects.Insert(obj.Bucket, obj).Media(bytes.NewReader(data), opts...).Context(ctx), c).Do()
}

// conditioned returns call with c's preconditions set (the generated calls of inserts and gets
// have the same three setters).
func conditioned[C interface {
	IfGenerationMatch(int64) C
	IfGenerationNotMatch(int64) C
	IfMetagenerationMatch(int64) C
}](call C, c *cond) C {
	if c == nil {
		return call
	}
	if c.generationMatch != nil {
		call = call.IfGenerationMatch(*c.generationMatch)
	}
	if c.generationNotMatch != nil {
		call = call.IfGenerationNotMatch(*c.generationNotMatch)
	}
	if c.metagenerationMatch != nil {
		call = call.IfMetagenerationMatch(*c.metagenerationMatch)
	}
	return call
}

// get returns o's metadata under c, at generation gen when it is not 0.
func get(ctx context.Context, s *storagev1.Service, o object, c *cond, gen int64) *storagev1.ObjectsGetCall {
	call := s.Objects.Get(o.bucket, o.name).Context(ctx)
	if gen != 0 {
		call = call.Generation(gen)
	}
	return conditioned(call, c)
}

// read downloads o under c (at generation gen when not 0): its bytes and the generation the
// response names.
func read(ctx context.Context, s *storagev1.Service, o object, c *cond, gen int64) ([]byte, int64, error) {
	resp, err := get(ctx, s, o, c, gen).Download()
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	var g int64
	fmt.Sscan(resp.Header.Get("X-Goog-Generation"), &g)
	return b, g, err
}

// del deletes o under c.
func del(ctx context.Context, s *storagev1.Service, o object, c *cond) error {
	call := s.Objects.Delete(o.bucket, o.name).Context(ctx)
	if c != nil && c.generationMatch != nil {
		call = call.IfGenerationMatch(*c.generationMatch)
	}
	return call.Do()
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

// code is err's HTTP status, 0 for no error, -1 for an error that carries none.
func code(err error) int {
	var ge *googleapi.Error
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ge):
		return ge.Code
	}
	return -1
}

// crc32c is the base64 big-endian CRC32C of data, as the JSON API writes it.
func crc32c(data []byte) string {
	return base64.StdEncoding.EncodeToString(binary.BigEndian.AppendUint32(nil, crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli))))
}

func TestBuckets(t *testing.T) {
	ctx := context.Background()
	_, s := start(t)
	if _, err := s.Buckets.Get("runway-state").Context(ctx).Do(); code(err) != http.StatusNotFound {
		t.Fatalf("Get of a missing bucket = %v, want 404", err)
	}
	create := func(name string, b *storagev1.Bucket) error {
		b.Name = name
		_, err := s.Buckets.Insert("p", b).Context(ctx).Do()
		return err
	}
	if err := create("runway-state", &storagev1.Bucket{Location: "EU"}); err != nil {
		t.Fatal(err)
	}
	if ge := apiError(t, create("runway-state", &storagev1.Bucket{})); ge.Code != http.StatusConflict {
		t.Fatalf("second Insert = %d, want 409", ge.Code)
	}
	a, err := s.Buckets.Get("runway-state").Context(ctx).Do()
	if err != nil || a.Name != "runway-state" || a.Location != "EU" || a.StorageClass != "STANDARD" {
		t.Fatalf("Get = %+v, %v", a, err)
	}
	if ge := apiError(t, create("Bad_Name!", &storagev1.Bucket{})); ge.Code != http.StatusBadRequest {
		t.Fatalf("Insert with a bad name = %d, want 400", ge.Code)
	}
	// The first write creates a bucket.
	if _, err := put(ctx, s, object{"auto", "x"}, []byte("v"), nil); err != nil {
		t.Fatal(err)
	}
	var names []string
	err = s.Buckets.List("p").MaxResults(1).Pages(ctx, func(l *storagev1.Buckets) error {
		for _, b := range l.Items {
			names = append(names, b.Name)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"auto", "runway-state"}; !slices.Equal(names, want) {
		t.Fatalf("Buckets = %v, want %v", names, want)
	}
	if ge := apiError(t, s.Buckets.Delete("auto").Context(ctx).Do()); ge.Code != http.StatusConflict {
		t.Fatalf("Delete of a non-empty bucket = %d, want 409", ge.Code)
	}
	if err := s.Buckets.Delete("runway-state").Context(ctx).Do(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Buckets.Get("runway-state").Context(ctx).Do(); code(err) != http.StatusNotFound {
		t.Fatalf("Get after Delete = %v, want 404", err)
	}
}

// TestPreconditions checks each condition on insert, read and delete, with the status and
// the JSON error reason Google answers.
func TestPreconditions(t *testing.T) {
	ctx := context.Background()
	_, s := start(t)
	o := object{"bkt", "runs/w/slot-1"}
	first, err := put(ctx, s, o, []byte("one"), doesNotExist)
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
			_, err := put(ctx, s, o, []byte("x"), doesNotExist)
			return err
		}},
		{name: "update stale", wantCode: 412, call: func() error {
			_, err := put(ctx, s, o, []byte("x"), &cond{generationMatch: i64(gen - 1)})
			return err
		}},
		{name: "update missing", wantCode: 412, call: func() error {
			_, err := put(ctx, s, object{"bkt", "missing"}, []byte("x"), &cond{generationMatch: i64(gen)})
			return err
		}},
		{name: "replace unless generation", wantCode: 412, call: func() error {
			_, err := put(ctx, s, o, []byte("x"), &cond{generationNotMatch: i64(gen)})
			return err
		}},
		{name: "attrs at the wrong generation", wantCode: 412, call: func() error {
			_, err := get(ctx, s, o, &cond{generationMatch: i64(gen + 1)}, 0).Do()
			return err
		}},
		{name: "attrs not modified", wantCode: 304, call: func() error {
			_, err := get(ctx, s, o, &cond{generationNotMatch: i64(gen)}, 0).Do()
			return err
		}},
		{name: "read not modified", wantCode: 304, call: func() error {
			_, _, err := read(ctx, s, o, &cond{generationNotMatch: i64(gen)}, 0)
			return err
		}},
		{name: "read at the generation", call: func() error {
			_, _, err := read(ctx, s, o, &cond{generationMatch: i64(gen)}, 0)
			return err
		}},
		{name: "read an old generation", wantCode: 404, call: func() error {
			_, _, err := read(ctx, s, o, nil, gen-1)
			return err
		}},
		{name: "metageneration", wantCode: 412, call: func() error {
			_, err := get(ctx, s, o, &cond{metagenerationMatch: i64(2)}, 0).Do()
			return err
		}},
		{name: "delete stale", wantCode: 412, call: func() error {
			return del(ctx, s, o, &cond{generationMatch: i64(gen - 1)})
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
			ge := apiError(t, err)
			if ge.Code != tt.wantCode {
				t.Fatalf("code = %d (%v), want %d", ge.Code, err, tt.wantCode)
			}
			if tt.wantCode == 412 && (len(ge.Errors) != 1 || ge.Errors[0].Reason != "conditionNotMet" || ge.Message == "") {
				t.Fatalf("412 body = %+v, want one error with reason conditionNotMet and a message", ge)
			}
		})
	}
	if b, g, err := read(ctx, s, o, nil, 0); err != nil || string(b) != "one" || g != gen {
		t.Fatalf("after refused writes: %q gen %d, %v; want one gen %d", b, g, err, gen)
	}
	if err := del(ctx, s, o, &cond{generationMatch: i64(gen)}); err != nil {
		t.Fatal(err)
	}
	if err := del(ctx, s, o, nil); code(err) != http.StatusNotFound {
		t.Fatalf("second Delete = %v, want 404", err)
	}
	again, err := put(ctx, s, o, []byte("two"), doesNotExist)
	if err != nil || again.Generation <= gen {
		t.Fatalf("recreate = %v, %v: generation must exceed %d", again, err, gen)
	}
}

// TestObjects round-trips names the client escapes and checks the attributes and ranges.
func TestObjects(t *testing.T) {
	ctx := context.Background()
	_, s := start(t)
	names := []string{"plain", "runs/w/slot 1", "a+b=c&d?e#f%g", "ünï/çødé", "trailing/", "a//b"}
	var last int64
	for _, name := range names {
		o := object{"bkt", name}
		data := []byte("data of " + name)
		a, err := put(ctx, s, o, data, nil)
		if err != nil {
			t.Fatalf("put %q: %v", name, err)
		}
		if a.Name != name || a.Size != uint64(len(data)) || a.Generation <= last || a.Metageneration != 1 || a.Crc32c != crc32c(data) {
			t.Fatalf("put %q attrs = name %q size %d gen %d meta %d crc32c %s", name, a.Name, a.Size, a.Generation, a.Metageneration, a.Crc32c)
		}
		last = a.Generation
		got, gen, err := read(ctx, s, o, nil, 0)
		if err != nil || !bytes.Equal(got, data) || gen != a.Generation {
			t.Fatalf("read %q = %q gen %d, %v", name, got, gen, err)
		}
		attrs, err := get(ctx, s, o, nil, 0).Do()
		if err != nil || attrs.Generation != a.Generation || attrs.Crc32c != a.Crc32c || attrs.Md5Hash != a.Md5Hash || a.Md5Hash == "" {
			t.Fatalf("Get %q = %+v, %v", name, attrs, err)
		}
	}
	typed := &storagev1.Object{Bucket: "bkt", Name: "typed", Metadata: map[string]string{"owner": "trigger"}}
	if _, err := insert(ctx, s, typed, []byte(`{"a":1}`), nil, googleapi.ContentType("application/json")); err != nil {
		t.Fatal(err)
	}
	a, err := get(ctx, s, object{"bkt", "typed"}, nil, 0).Do()
	if err != nil || a.ContentType != "application/json" || a.Metadata["owner"] != "trigger" {
		t.Fatalf("Get = %+v, %v", a, err)
	}
	call := get(ctx, s, object{"bkt", "plain"}, nil, 0)
	call.Header().Set("Range", "bytes=3-6")
	resp, err := call.Download()
	if err != nil {
		t.Fatal(err)
	}
	part, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(part) != "a of" || resp.StatusCode != http.StatusPartialContent || resp.Header.Get("Content-Range") != fmt.Sprintf("bytes 3-6/%d", len("data of plain")) {
		t.Fatalf("range = %q, %d, Content-Range %q", part, resp.StatusCode, resp.Header.Get("Content-Range"))
	}
	if _, _, err := read(ctx, s, object{"bkt", "nope"}, nil, 0); code(err) != http.StatusNotFound {
		t.Fatalf("read missing = %v, want 404", err)
	}
	if _, _, err := read(ctx, s, object{"no-bucket", "x"}, nil, 0); code(err) != http.StatusNotFound {
		t.Fatalf("read in a missing bucket = %v, want 404", err)
	}
}

// TestUploads checks the checksums the client sends and the uploads the emulator refuses.
func TestUploads(t *testing.T) {
	ctx := context.Background()
	_, s := start(t)
	data := []byte("payload")
	wrong := &storagev1.Object{Bucket: "bkt", Name: "x", Crc32c: base64.StdEncoding.EncodeToString([]byte{0, 0, 0x30, 0x39})}
	if ge := apiError(t, func() error { _, err := insert(ctx, s, wrong, data, nil, googleapi.ChunkSize(0)); return err }()); ge.Code != http.StatusBadRequest {
		t.Fatalf("wrong crc32c = %d, want 400", ge.Code)
	}
	if _, err := get(ctx, s, object{"bkt", "x"}, nil, 0).Do(); code(err) != http.StatusNotFound {
		t.Fatalf("refused upload left an object: %v", err)
	}

	// The right checksum is accepted; with the default chunk size a small object is one
	// multipart request.
	right := &storagev1.Object{Bucket: "bkt", Name: "x", Crc32c: crc32c(data)}
	if _, err := insert(ctx, s, right, data, nil); err != nil {
		t.Fatalf("right crc32c, default chunk size: %v", err)
	}

	// An object larger than the chunk size is a resumable upload, which the emulator refuses.
	big := &storagev1.Object{Bucket: "bkt", Name: "big"}
	_, err := insert(ctx, s, big, bytes.Repeat([]byte("x"), 300<<10), nil, googleapi.ChunkSize(256<<10))
	if ge := apiError(t, err); ge.Code != http.StatusNotImplemented {
		t.Fatalf("resumable upload = %d, want 501", ge.Code)
	}
	if _, err := get(ctx, s, object{"bkt", "big"}, nil, 0).Do(); code(err) != http.StatusNotFound {
		t.Fatalf("refused upload left an object: %v", err)
	}
}

// TestList pages through objects with prefixes and delimiters.
func TestList(t *testing.T) {
	ctx := context.Background()
	_, s := start(t)
	var all []string
	for i := range 25 {
		all = append(all, fmt.Sprintf("runs/w/%02d", i))
	}
	all = append(all, "runs/v/1", "runs/x", "deploys/a", "runs/w/") // "runs/w/" ends in the delimiter
	for _, n := range all {
		if _, err := put(ctx, s, object{"bkt", n}, []byte("v"), nil); err != nil {
			t.Fatal(err)
		}
	}
	type query struct{ prefix, delimiter, startOffset, endOffset string }
	list := func(q query, pageSize int64) (names, prefixes []string, pages int) {
		t.Helper()
		for token := ""; ; {
			l, err := s.Objects.List("bkt").Prefix(q.prefix).Delimiter(q.delimiter).StartOffset(q.startOffset).
				EndOffset(q.endOffset).MaxResults(pageSize).PageToken(token).Context(ctx).Do()
			if err != nil {
				t.Fatal(err)
			}
			pages++
			for _, o := range l.Items {
				names = append(names, o.Name)
			}
			prefixes = append(prefixes, l.Prefixes...)
			if token = l.NextPageToken; token == "" {
				return names, prefixes, pages
			}
		}
	}
	tests := []struct {
		name         string
		query        query
		pageSize     int64
		wantNames    []string
		wantPrefixes []string
		wantPages    int
	}{
		{name: "prefix, pages of 10", query: query{prefix: "runs/w/"}, pageSize: 10,
			wantNames: append([]string{"runs/w/"}, all[:25]...), wantPages: 3},
		{name: "delimiter", query: query{prefix: "runs/", delimiter: "/"}, pageSize: 1000,
			wantNames: []string{"runs/x"}, wantPrefixes: []string{"runs/v/", "runs/w/"}, wantPages: 1},
		{name: "delimiter, pages of 1", query: query{delimiter: "/"}, pageSize: 1,
			wantPrefixes: []string{"deploys/", "runs/"}, wantPages: 2},
		{name: "offsets", query: query{startOffset: "runs/w/10", endOffset: "runs/w/13"}, pageSize: 2,
			wantNames: []string{"runs/w/10", "runs/w/11", "runs/w/12"}, wantPages: 2},
		{name: "nothing", query: query{prefix: "monitor/"}, pageSize: 10, wantPages: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			names, prefixes, pages := list(tt.query, tt.pageSize)
			if !slices.Equal(names, tt.wantNames) || !slices.Equal(prefixes, tt.wantPrefixes) || pages != tt.wantPages {
				t.Fatalf("names %v\nprefixes %v, %d pages\nwant %v\n%v, %d pages", names, prefixes, pages, tt.wantNames, tt.wantPrefixes, tt.wantPages)
			}
		})
	}
	if _, err := s.Objects.List("bkt").MatchGlob("**").Context(ctx).Do(); code(err) != http.StatusBadRequest {
		t.Fatalf("matchGlob listed: %v, want 400", err)
	}
}

// TestFaults makes the routes fail through the emulator's fault injector.
func TestFaults(t *testing.T) {
	ctx := context.Background()
	e, s := start(t)
	o := object{"bkt", "x"}
	if err := e.Faults().Add(fault.Rule{Method: "/http/storage.googleapis.com/objects.insert", Code: codes.ResourceExhausted, Times: 1}); err != nil {
		t.Fatal(err)
	}
	if ge := apiError(t, func() error { _, err := put(ctx, s, o, []byte("v"), nil); return err }()); ge.Code != http.StatusTooManyRequests {
		t.Fatalf("injected ResourceExhausted = %d, want 429", ge.Code)
	}
	if _, err := put(ctx, s, o, []byte("v"), nil); err != nil {
		t.Fatalf("after the fault: %v", err)
	}
}

// TestGenerationsManualClock checks that generations still increase when time stands still.
func TestGenerationsManualClock(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	e := emulatortest.Start(t, emulator.Options{Clock: clock.NewManual(now)})
	s := client(t, e)
	var gens []int64
	for _, name := range []string{"a", "b", "a"} {
		a, err := put(ctx, s, object{"bkt", name}, []byte("v"), nil)
		if err != nil {
			t.Fatal(err)
		}
		if created, err := time.Parse(time.RFC3339Nano, a.TimeCreated); err != nil || !created.Equal(now) {
			t.Errorf("TimeCreated = %q, want the emulator's clock %v", a.TimeCreated, now)
		}
		gens = append(gens, a.Generation)
	}
	if want := []int64{now.UnixMicro(), now.UnixMicro() + 1, now.UnixMicro() + 2}; !slices.Equal(gens, want) {
		t.Fatalf("generations = %v, want %v", gens, want)
	}
}
