// Package state is the durable store of Runway Jobs: the trigger function's claims (one
// execution per request id or scheduled slot), the deploy function's request outcomes and the
// monitor's incidents and watermark. Every write is conditional on the object's generation, as
// Cloud Storage's ifGenerationMatch is, so two workers racing on one key cannot both win.
//
// The functions and runwayctl open it with Open(RUNWAY_STATE, their Google Cloud config). Production is GCS, a Cloud
// Storage bucket (gs://bucket/prefix) reached with Application Default Credentials, or the
// emulator's Cloud Storage when RUNWAY_EMULATOR_HOST is set. The embedded default is Dir, a
// local directory shared by every process of the local platform. Both pass one conformance
// test (conformance_test.go).
package state

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"runwayjobs.dev/shared/gcp"
)

// ErrNotFound is returned by Get and Delete for a key that does not exist.
var ErrNotFound = errors.New("state: object not found")

// ErrPrecondition is returned by Put and Delete when the object's generation is not the
// expected one: somebody else wrote first.
var ErrPrecondition = errors.New("state: generation precondition failed")

// Object is a stored value and its generation (> 0; it changes on every write).
type Object struct {
	Data       []byte
	Generation int64
}

// Store is a key/value store with generation preconditions.
type Store interface {
	// Get returns the object at key, or ErrNotFound.
	Get(ctx context.Context, key string) (Object, error)
	// Put writes data at key if the object's generation is ifGeneration, where 0 means the
	// object must not exist, and returns the new generation; ErrPrecondition otherwise.
	Put(ctx context.Context, key string, data []byte, ifGeneration int64) (int64, error)
	// Delete removes key if its generation is ifGeneration (0: whatever it is).
	Delete(ctx context.Context, key string, ifGeneration int64) error
	// List returns the keys under prefix, sorted.
	List(ctx context.Context, prefix string) ([]string, error)
	// ListPage returns, sorted, at most limit (> 0) keys under prefix that sort after
	// startAfter ("": from the first). Fewer than limit means the prefix has no more. Its cost
	// is that of the page, not of the keys before startAfter (Cloud Storage's startOffset), so
	// a reader can walk a large prefix a page at a time.
	ListPage(ctx context.Context, prefix, startAfter string, limit int) ([]string, error)
}

// EnvVar names the environment variable that says where the store is.
const EnvVar = "RUNWAY_STATE"

// Open opens the store at url: Cloud Storage (gs://bucket/prefix, the production store, or
// the emulator's when cfg.EmulatorHost is set) or a local directory (a path, or
// file:///path). A GCS store holds a client: close it with its Close method when done.
func Open(ctx context.Context, url string, cfg gcp.Config) (Store, error) {
	switch {
	case url == "":
		return nil, fmt.Errorf("state.Open: no store configured (set %s to gs://bucket/prefix or a directory)", EnvVar)
	case strings.HasPrefix(url, "gs://"):
		g, err := OpenGCS(ctx, url, cfg)
		if err != nil {
			return nil, err // not a nil *GCS in a non-nil Store
		}
		return g, nil
	case strings.HasPrefix(url, "file://"):
		return NewDir(strings.TrimPrefix(url, "file://"))
	case strings.Contains(url, "://"):
		return nil, fmt.Errorf("state.Open %s: unknown scheme (want a directory or file:///dir)", url)
	}
	return NewDir(url)
}

// validKey refuses keys that could escape a directory or are not portable object names.
func validKey(key string) error {
	if key == "" || len(key) > 1024 || strings.HasPrefix(key, "/") || strings.HasSuffix(key, "/") {
		return fmt.Errorf("state: invalid key %q", key)
	}
	for _, part := range strings.Split(key, "/") {
		if part == "" || part == "." || part == ".." || strings.HasPrefix(part, ".") {
			return fmt.Errorf("state: invalid key %q", key)
		}
	}
	if strings.ContainsAny(key, "\x00\\\n\r") {
		return fmt.Errorf("state: invalid key %q", key)
	}
	return nil
}
