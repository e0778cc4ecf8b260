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
	"net/url"
	"strings"
	"time"

	"github.com/googleapis/gax-go/v2"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/option"
	storagev1 "google.golang.org/api/storage/v1"
)

// StorageOptions returns the options of the Cloud Storage JSON API client (NewStorageAPI) for
// the configured world: production and the emulator run the same requests; with the emulator
// they call http://host:port/storage/v1/… (uploads: /upload/storage/v1/…) without
// authentication.
func (c Config) StorageOptions() []option.ClientOption {
	if c.EmulatorHost == "" {
		return nil // Application Default Credentials, default endpoint
	}
	return []option.ClientOption{
		option.WithEndpoint("http://" + c.EmulatorHost + "/storage/v1/"),
		option.WithoutAuthentication(),
		option.WithTelemetryDisabled(),
	}
}

// NewStorageAPI builds the generated Cloud Storage JSON API client (google.golang.org/api/
// storage/v1) for c, the one the functions use: it links none of the gRPC, xDS and
// OpenTelemetry packages of cloud.google.com/go/storage (issue 15: half the binary, 12 MiB of
// resident memory). It makes no network call: connections open on the first request.
func NewStorageAPI(ctx context.Context, c Config) (*storagev1.Service, error) {
	s, err := storagev1.NewService(ctx, c.StorageOptions()...)
	if err != nil {
		return nil, fmt.Errorf("gcp.NewStorageAPI: storage.NewService: %w", err)
	}
	return s, nil
}

// storageBackoff is the backoff of cloud.google.com/go/storage's retries.
var storageBackoff = gax.Backoff{Initial: time.Second, Max: 32 * time.Second, Multiplier: 2}

// RetryStorage runs op, an idempotent Cloud Storage call, until it succeeds, fails with an
// error that is not transient (see StorageTransient) or ctx ends, with the backoff and the
// rule of cloud.google.com/go/storage's default retries.
func RetryStorage(ctx context.Context, op func() error) error {
	bo := storageBackoff
	for {
		err := op()
		if err == nil || !StorageTransient(err) {
			return err
		}
		if serr := gax.Sleep(ctx, bo.Pause()); serr != nil {
			return fmt.Errorf("gcp.RetryStorage: %w (last error: %w)", serr, err)
		}
	}
}

// StorageTransient reports whether a Cloud Storage call that failed with err may succeed if
// repeated: the HTTP part of cloud.google.com/go/storage's ShouldRetry (408, 429 and 5xx,
// socket errors such as a connection refused or reset, an unexpected EOF, a closed
// connection, a temporary DNS or network error), through the chain of wrapped errors.
func StorageTransient(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) {
		return true
	}
	switch e := err.(type) {
	case *googleapi.Error:
		return e.Code == http.StatusRequestTimeout || e.Code == http.StatusTooManyRequests || (e.Code >= 500 && e.Code < 600)
	case *net.OpError, *url.Error:
		for _, s := range []string{"connection refused", "connection reset", "broken pipe", "client connection lost", "server closed idle connection"} {
			if strings.Contains(e.Error(), s) {
				return true
			}
		}
		if errors.Is(err, io.EOF) {
			return true
		}
	case *net.DNSError:
		if e.IsTemporary {
			return true
		}
	case interface{ Temporary() bool }:
		if e.Temporary() {
			return true
		}
	}
	if u := errors.Unwrap(err); u != nil {
		return StorageTransient(u)
	}
	return false
}

// ErrObjectNotExist is the error of a read of an object or bucket that does not exist, with the
// text of cloud.google.com/go/storage's.
var ErrObjectNotExist = errors.New("storage: object doesn't exist")

// objectNotExist is a 404 of the JSON API read as ErrObjectNotExist, the answer kept in the
// chain.
type objectNotExist struct{ err error }

func (e objectNotExist) Error() string        { return ErrObjectNotExist.Error() }
func (e objectNotExist) Is(target error) bool { return target == ErrObjectNotExist }
func (e objectNotExist) Unwrap() error        { return e.err }

// DownloadObject opens bucket/object for reading (retried on transient errors: see
// RetryStorage). A missing object is ErrObjectNotExist. As cloud.google.com/go/storage's
// reader does, the body is checked against the CRC32C of the X-Goog-Hash header when the
// object is served untranscoded: reading it to the end fails on a mismatch. The caller closes
// the body.
func DownloadObject(ctx context.Context, s *storagev1.Service, bucket, object string) (*http.Response, error) {
	var resp *http.Response
	err := RetryStorage(ctx, func() error {
		var err error
		resp, err = s.Objects.Get(bucket, object).Context(ctx).Download()
		return err
	})
	var ge *googleapi.Error
	if errors.As(err, &ge) && ge.Code == http.StatusNotFound {
		return nil, objectNotExist{err}
	}
	if err != nil {
		return nil, err
	}
	if want, ok := crc32cOf(resp.Header); ok && resp.Header.Get("Content-Encoding") == "" && !resp.Uncompressed {
		resp.Body = &crcReader{body: resp.Body, want: want, name: bucket + "/" + object}
	}
	return resp, nil
}

// crc32cOf reads the crc32c= entry of X-Goog-Hash.
func crc32cOf(h http.Header) (uint32, bool) {
	for _, v := range h.Values("X-Goog-Hash") {
		for _, part := range strings.Split(v, ",") {
			enc, ok := strings.CutPrefix(strings.TrimSpace(part), "crc32c=")
			if !ok {
				continue
			}
			b, err := base64.StdEncoding.DecodeString(enc)
			if err != nil || len(b) != 4 {
				return 0, false
			}
			return binary.BigEndian.Uint32(b), true
		}
	}
	return 0, false
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// crcReader fails the read that reaches the end of a body whose CRC32C is not want.
type crcReader struct {
	body io.ReadCloser
	want uint32
	got  uint32
	name string
}

func (r *crcReader) Read(p []byte) (int, error) {
	n, err := r.body.Read(p)
	r.got = crc32.Update(r.got, castagnoli, p[:n])
	if err == io.EOF && r.got != r.want {
		return n, fmt.Errorf("gcp.DownloadObject %s: CRC32C mismatch: got %08x, the object's is %08x", r.name, r.got, r.want)
	}
	return n, err
}

func (r *crcReader) Close() error { return r.body.Close() }
