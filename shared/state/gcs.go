package state

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"cloud.google.com/go/storage"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/iterator"

	"runwayjobs.dev/shared/gcp"
)

// GCS is the production Store: objects prefix/key in a Cloud Storage bucket, every write and
// delete conditional on the object's generation (ifGenerationMatch; 0 is "does not exist"),
// so the claim of a key is won by exactly one writer whatever the number of instances.
//
// Writes are single-request uploads (Writer.ChunkSize = 0): the whole object goes in one
// request whose answer, a 412 when the precondition fails, is reported by Close. Such an
// upload is not retried by the client; a failed Put is retried by its caller (the event is
// redelivered). A Put whose answer was lost after the write succeeded reads as
// ErrPrecondition on the retry: the claim protocol must tolerate finding its own claim.
type GCS struct {
	client *storage.Client
	bucket *storage.BucketHandle
	name   string // bucket name
	prefix string // "" or "prefix/"
}

var _ Store = (*GCS)(nil)

// NewGCS returns the store under prefix ("" for the whole bucket) in bucket, through client.
// The store owns client: Close closes it.
func NewGCS(client *storage.Client, bucket, prefix string) *GCS {
	prefix = strings.Trim(prefix, "/")
	if prefix != "" {
		prefix += "/"
	}
	return &GCS{client: client, bucket: client.Bucket(bucket), name: bucket, prefix: prefix}
}

// OpenGCS opens url (gs://bucket[/prefix]) in the world of cfg, for callers that hold a
// gcp.Config of their own; Open uses gcp.FromEnv. Close the store when done.
func OpenGCS(ctx context.Context, url string, cfg gcp.Config) (*GCS, error) {
	bucket, prefix, err := parseGCSURL(url)
	if err != nil {
		return nil, err
	}
	client, err := gcp.NewStorage(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("state.Open %s: %w", url, err)
	}
	return NewGCS(client, bucket, prefix), nil
}

// parseGCSURL splits gs://bucket/prefix.
func parseGCSURL(url string) (bucket, prefix string, err error) {
	rest, ok := strings.CutPrefix(url, "gs://")
	if !ok {
		return "", "", fmt.Errorf("state.Open %s: not a gs:// url", url)
	}
	bucket, prefix, _ = strings.Cut(rest, "/")
	if bucket == "" {
		return "", "", fmt.Errorf("state.Open %s: no bucket (want gs://bucket/prefix)", url)
	}
	if prefix = strings.Trim(prefix, "/"); prefix != "" {
		if err := validKey(prefix); err != nil {
			return "", "", fmt.Errorf("state.Open %s: invalid prefix: %w", url, err)
		}
	}
	return bucket, prefix, nil
}

// String returns the store's url.
func (g *GCS) String() string { return "gs://" + g.name + "/" + strings.TrimSuffix(g.prefix, "/") }

// Close closes the client.
func (g *GCS) Close() error { return g.client.Close() }

func (g *GCS) object(key string) *storage.ObjectHandle { return g.bucket.Object(g.prefix + key) }

// Get returns the object at key.
func (g *GCS) Get(ctx context.Context, key string) (Object, error) {
	if err := validKey(key); err != nil {
		return Object{}, err
	}
	r, err := g.object(key).NewReader(ctx)
	if err != nil {
		return Object{}, fmt.Errorf("state.Get %s: %w", key, mapError(err))
	}
	defer r.Close()
	data, err := io.ReadAll(r)
	if err != nil {
		return Object{}, fmt.Errorf("state.Get %s: %w", key, mapError(err))
	}
	return Object{Data: data, Generation: r.Attrs.Generation}, nil
}

// Put writes data at key if its generation is ifGeneration (0: must not exist).
func (g *GCS) Put(ctx context.Context, key string, data []byte, ifGeneration int64) (int64, error) {
	if err := validKey(key); err != nil {
		return 0, err
	}
	if ifGeneration < 0 {
		return 0, fmt.Errorf("state.Put %s: negative generation %d", key, ifGeneration)
	}
	cond := storage.Conditions{DoesNotExist: true}
	if ifGeneration != 0 {
		cond = storage.Conditions{GenerationMatch: ifGeneration}
	}
	// A cancelled context aborts the upload; cancel also releases the writer if Write fails.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w := g.object(key).If(cond).NewWriter(ctx)
	w.ChunkSize = 0 // one request; the precondition's answer comes back on Close
	w.ContentType = "application/octet-stream"
	_, err := w.Write(data)
	if cerr := w.Close(); cerr != nil {
		err = cerr // Close carries the server's answer; a failed Write only saw the closed pipe
	}
	if err != nil {
		return 0, fmt.Errorf("state.Put %s: %w", key, mapError(err))
	}
	return w.Attrs().Generation, nil
}

// Delete removes key if its generation is ifGeneration (0: any).
func (g *GCS) Delete(ctx context.Context, key string, ifGeneration int64) error {
	if err := validKey(key); err != nil {
		return err
	}
	o := g.object(key)
	if ifGeneration != 0 {
		o = o.If(storage.Conditions{GenerationMatch: ifGeneration})
	}
	if err := o.Delete(ctx); err != nil {
		return fmt.Errorf("state.Delete %s: %w", key, mapError(err))
	}
	return nil
}

// List returns the keys under prefix, sorted (Cloud Storage lists names in order).
func (g *GCS) List(ctx context.Context, prefix string) ([]string, error) {
	q := &storage.Query{Prefix: g.prefix + prefix}
	if err := q.SetAttrSelection([]string{"Name"}); err != nil {
		return nil, fmt.Errorf("state.List %s: %w", prefix, err)
	}
	it := g.bucket.Objects(ctx, q)
	var keys []string
	for {
		a, err := it.Next()
		if errors.Is(err, iterator.Done) {
			return keys, nil
		}
		if err != nil {
			return nil, fmt.Errorf("state.List %s: %w", prefix, mapError(err))
		}
		keys = append(keys, strings.TrimPrefix(a.Name, g.prefix))
	}
}

// mapError adds ErrNotFound or ErrPrecondition to the client's error, keeping it in the chain.
func mapError(err error) error {
	if errors.Is(err, storage.ErrObjectNotExist) {
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	var ge *googleapi.Error
	if errors.As(err, &ge) {
		switch ge.Code {
		case http.StatusPreconditionFailed, http.StatusNotModified:
			return fmt.Errorf("%w: %w", ErrPrecondition, err)
		case http.StatusNotFound:
			return fmt.Errorf("%w: %w", ErrNotFound, err)
		}
	}
	return err
}
