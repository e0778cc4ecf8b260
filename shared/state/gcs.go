package state

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"google.golang.org/api/googleapi"
	storage "google.golang.org/api/storage/v1"

	"runwayjobs.dev/shared/gcp"
)

// GCS is the production Store: objects prefix/key in a Cloud Storage bucket, every write and
// delete conditional on the object's generation (ifGenerationMatch; 0 is "does not exist"),
// so the claim of a key is won by exactly one writer whatever the number of instances.
//
// The client is the generated JSON API client (gcp.NewStorageAPI). Reads, lists and
// conditional deletes are retried on transient errors (gcp.RetryStorage), as the default
// policy of cloud.google.com/go/storage does. Writes are single-request uploads
// (googleapi.ChunkSize(0)): the whole object goes in one request, whose answer is a 412 when
// the precondition fails. Such an upload is not retried here; a failed Put is retried by its
// caller (the event is redelivered). A Put whose answer was lost after the write succeeded
// reads as ErrPrecondition on the retry: the claim protocol must tolerate finding its own
// claim.
type GCS struct {
	client *storage.Service
	name   string // bucket name
	prefix string // "" or "prefix/"
}

var _ Store = (*GCS)(nil)

// NewGCS returns the store under prefix ("" for the whole bucket) in bucket, through client.
func NewGCS(client *storage.Service, bucket, prefix string) *GCS {
	prefix = strings.Trim(prefix, "/")
	if prefix != "" {
		prefix += "/"
	}
	return &GCS{client: client, name: bucket, prefix: prefix}
}

// OpenGCS opens url (gs://bucket[/prefix]) in the world of cfg (Open calls it for gs://
// URLs). Close the store when done.
func OpenGCS(ctx context.Context, url string, cfg gcp.Config) (*GCS, error) {
	bucket, prefix, err := parseGCSURL(url)
	if err != nil {
		return nil, err
	}
	client, err := gcp.NewStorageAPI(ctx, cfg)
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

// Close releases nothing: the client holds only idle connections, which the transport closes.
func (g *GCS) Close() error { return nil }

// Get returns the object at key.
func (g *GCS) Get(ctx context.Context, key string) (Object, error) {
	if err := validKey(key); err != nil {
		return Object{}, err
	}
	resp, err := gcp.DownloadObject(ctx, g.client, g.name, g.prefix+key)
	if err != nil {
		return Object{}, fmt.Errorf("state.Get %s: %w", key, mapError(err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return Object{}, fmt.Errorf("state.Get %s: %w", key, mapError(err))
	}
	gen, err := strconv.ParseInt(resp.Header.Get("X-Goog-Generation"), 10, 64)
	if err != nil {
		return Object{}, fmt.Errorf("state.Get %s: generation header %q: %w", key, resp.Header.Get("X-Goog-Generation"), err)
	}
	return Object{Data: data, Generation: gen}, nil
}

// Put writes data at key if its generation is ifGeneration (0: must not exist).
func (g *GCS) Put(ctx context.Context, key string, data []byte, ifGeneration int64) (int64, error) {
	if err := validKey(key); err != nil {
		return 0, err
	}
	if ifGeneration < 0 {
		return 0, fmt.Errorf("state.Put %s: negative generation %d", key, ifGeneration)
	}
	// One request (ChunkSize 0); ifGenerationMatch=0 is "must not exist".
	obj, err := g.client.Objects.Insert(g.name, &storage.Object{Name: g.prefix + key, ContentType: "application/octet-stream"}).
		IfGenerationMatch(ifGeneration).Media(bytes.NewReader(data), googleapi.ChunkSize(0), googleapi.ContentType("application/octet-stream")).
		Context(ctx).Do()
	if err != nil {
		return 0, fmt.Errorf("state.Put %s: %w", key, mapError(err))
	}
	return obj.Generation, nil
}

// Delete removes key if its generation is ifGeneration (0: any).
func (g *GCS) Delete(ctx context.Context, key string, ifGeneration int64) error {
	if err := validKey(key); err != nil {
		return err
	}
	call := g.client.Objects.Delete(g.name, g.prefix+key).Context(ctx)
	if ifGeneration == 0 {
		err := call.Do() // not idempotent: a repeat may answer 404 for its own delete
		if err != nil {
			return fmt.Errorf("state.Delete %s: %w", key, mapError(err))
		}
		return nil
	}
	err := gcp.RetryStorage(ctx, func() error { return call.IfGenerationMatch(ifGeneration).Do() })
	if err != nil {
		return fmt.Errorf("state.Delete %s: %w", key, mapError(err))
	}
	return nil
}

// List returns the keys under prefix, sorted (Cloud Storage lists names in order).
func (g *GCS) List(ctx context.Context, prefix string) ([]string, error) {
	var keys []string
	call := g.client.Objects.List(g.name).Prefix(g.prefix+prefix).Fields("items(name)", "nextPageToken")
	for token := ""; ; {
		var page *storage.Objects
		err := gcp.RetryStorage(ctx, func() error {
			var err error
			page, err = call.PageToken(token).Context(ctx).Do()
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("state.List %s: %w", prefix, mapError(err))
		}
		for _, o := range page.Items {
			keys = append(keys, strings.TrimPrefix(o.Name, g.prefix))
		}
		if token = page.NextPageToken; token == "" {
			return keys, nil
		}
	}
}

// ListPage returns at most limit keys under prefix after startAfter, sorted: objects.list
// from startOffset (inclusive, so startAfter itself is skipped), in pages of limit + 1.
func (g *GCS) ListPage(ctx context.Context, prefix, startAfter string, limit int) ([]string, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("state.ListPage %s: limit %d, want > 0", prefix, limit)
	}
	call := g.client.Objects.List(g.name).Prefix(g.prefix+prefix).Fields("items(name)", "nextPageToken").MaxResults(int64(min(limit+1, 1000)))
	if startAfter != "" {
		call = call.StartOffset(g.prefix + startAfter)
	}
	keys := make([]string, 0, min(limit, 1000))
	for token := ""; ; {
		var page *storage.Objects
		err := gcp.RetryStorage(ctx, func() error {
			var err error
			page, err = call.PageToken(token).Context(ctx).Do()
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("state.ListPage %s after %s: %w", prefix, startAfter, mapError(err))
		}
		for _, o := range page.Items {
			if k := strings.TrimPrefix(o.Name, g.prefix); k > startAfter && len(keys) < limit {
				keys = append(keys, k)
			}
		}
		if token = page.NextPageToken; token == "" || len(keys) == limit {
			return keys, nil
		}
	}
}

// mapError adds ErrNotFound or ErrPrecondition to the client's error, keeping it in the chain.
func mapError(err error) error {
	if errors.Is(err, gcp.ErrObjectNotExist) {
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
