package gcp

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/api/googleapi"
)

func TestStorageOptions(t *testing.T) {
	tests := []struct {
		name     string
		config   Config
		wantOpts int
	}{
		{name: "production: ADC and the default endpoint", config: Config{}, wantOpts: 0},
		{name: "emulator: endpoint, no auth, no telemetry", config: Config{EmulatorHost: "127.0.0.1:8085"}, wantOpts: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := len(tt.config.StorageOptions()); got != tt.wantOpts {
				t.Fatalf("%d options, want %d", got, tt.wantOpts)
			}
		})
	}
}

func TestNewStorageAPI(t *testing.T) {
	// Nobody listens on port 1: building the client must not connect.
	s, err := NewStorageAPI(context.Background(), Config{EmulatorHost: "127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	if want := "http://127.0.0.1:1/storage/v1/"; s.BasePath != want {
		t.Errorf("BasePath = %q, want %q", s.BasePath, want)
	}
}

func TestStorageTransient(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{name: "nil", err: nil, want: false},
		{name: "429", err: &googleapi.Error{Code: 429}, want: true},
		{name: "503 wrapped", err: fmt.Errorf("op: %w", &googleapi.Error{Code: 503}), want: true},
		{name: "408", err: &googleapi.Error{Code: 408}, want: true},
		{name: "412 precondition", err: &googleapi.Error{Code: 412}, want: false},
		{name: "404", err: &googleapi.Error{Code: 404}, want: false},
		{name: "unexpected EOF", err: fmt.Errorf("read: %w", io.ErrUnexpectedEOF), want: true},
		{name: "connection refused", err: &url.Error{Op: "Get", URL: "http://x", Err: errors.New("dial tcp: connection refused")}, want: true},
		{name: "url error EOF", err: &url.Error{Op: "Get", URL: "http://x", Err: io.EOF}, want: true},
		{name: "temporary DNS", err: &net.DNSError{Err: "timeout", IsTemporary: true}, want: true},
		{name: "context canceled", err: context.Canceled, want: false},
		{name: "other", err: errors.New("boom"), want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := StorageTransient(tt.err); got != tt.want {
				t.Errorf("StorageTransient(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

func TestRetryStorage(t *testing.T) {
	saved := storageBackoff
	storageBackoff.Initial = time.Millisecond
	t.Cleanup(func() { storageBackoff = saved })
	tests := []struct {
		name      string
		errs      []error // the answers of the successive calls; nil after the last
		wantCalls int
		wantErr   bool
	}{
		{name: "success", wantCalls: 1},
		{name: "permanent error is not repeated", errs: []error{&googleapi.Error{Code: 404}}, wantCalls: 1, wantErr: true},
		{name: "transient then success", errs: []error{&googleapi.Error{Code: 503}}, wantCalls: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			err := RetryStorage(context.Background(), func() error {
				calls++
				if calls <= len(tt.errs) {
					return tt.errs[calls-1]
				}
				return nil
			})
			if (err != nil) != tt.wantErr || calls != tt.wantCalls {
				t.Errorf("RetryStorage: %d calls, error %v; want %d calls, error %v", calls, err, tt.wantCalls, tt.wantErr)
			}
		})
	}
	t.Run("ends with the context", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
		defer cancel()
		err := RetryStorage(ctx, func() error { return &googleapi.Error{Code: 503} })
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("RetryStorage = %v, want the context's error", err)
		}
	})
}

func TestDownloadObject(t *testing.T) {
	saved := storageBackoff
	storageBackoff.Initial = time.Millisecond
	t.Cleanup(func() { storageBackoff = saved })
	crc := func(s string) string {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], crc32.Checksum([]byte(s), crc32.MakeTable(crc32.Castagnoli)))
		return "crc32c=" + base64.StdEncoding.EncodeToString(b[:]) + ",md5=AAAA"
	}
	tests := []struct {
		name       string
		answers    []int  // status of each request; 200 serves "hello"
		hash       string // X-Goog-Hash
		wantErr    error  // from DownloadObject
		wantRead   string
		wantReadOK bool
	}{
		{name: "checksum matches", answers: []int{200}, hash: crc("hello"), wantRead: "hello", wantReadOK: true},
		{name: "no checksum", answers: []int{200}, wantRead: "hello", wantReadOK: true},
		{name: "checksum mismatch", answers: []int{200}, hash: crc("other")},
		{name: "missing", answers: []int{404}, wantErr: ErrObjectNotExist},
		{name: "transient then served", answers: []int{503, 200}, hash: crc("hello"), wantRead: "hello", wantReadOK: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var n atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/storage/v1/b/bkt/o/dir/obj" || r.URL.Query().Get("alt") != "media" {
					http.Error(w, "unexpected "+r.URL.String(), http.StatusBadRequest)
					return
				}
				code := tt.answers[min(int(n.Add(1))-1, len(tt.answers)-1)]
				if code != 200 {
					http.Error(w, `{"error":{"code":`+fmt.Sprint(code)+`}}`, code)
					return
				}
				if tt.hash != "" {
					w.Header().Set("X-Goog-Hash", tt.hash)
				}
				io.WriteString(w, "hello")
			}))
			defer srv.Close()
			s, err := NewStorageAPI(context.Background(), Config{EmulatorHost: strings.TrimPrefix(srv.URL, "http://")})
			if err != nil {
				t.Fatal(err)
			}
			resp, err := DownloadObject(context.Background(), s, "bkt", "dir/obj")
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("DownloadObject = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			data, err := io.ReadAll(resp.Body)
			if (err == nil) != tt.wantReadOK || (err == nil && string(data) != tt.wantRead) {
				t.Errorf("read %q, %v; want %q, ok %v", data, err, tt.wantRead, tt.wantReadOK)
			}
		})
	}
}
