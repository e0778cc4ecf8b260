package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Dir is a Store in a local directory, shared safely by every process and goroutine that opens
// the same directory: each write holds an exclusive flock(2) on the key's lock file while it
// checks the generation, writes a temporary file and renames it into place, so a reader never
// sees a half-written object and two writers never both pass one precondition.
//
// Limits against Cloud Storage: generations are nanosecond timestamps made strictly
// increasing per key, not Cloud Storage's; the directory must be on a local filesystem
// (flock over NFS is not reliable).
type Dir struct {
	root string
}

var _ Store = (*Dir)(nil)

// NewDir opens (creating it if needed) the store in directory root.
func NewDir(root string) (*Dir, error) {
	if root == "" {
		return nil, errors.New("state.NewDir: empty directory")
	}
	if err := os.MkdirAll(filepath.Join(root, ".locks"), 0o755); err != nil {
		return nil, fmt.Errorf("state.NewDir %s: %w", root, err)
	}
	return &Dir{root: root}, nil
}

// Root returns the directory of the store.
func (d *Dir) Root() string { return d.root }

type envelope struct {
	Generation int64     `json:"generation"`
	Updated    time.Time `json:"updated"`
	Data       []byte    `json:"data"`
}

func (d *Dir) path(key string) string { return filepath.Join(d.root, filepath.FromSlash(key)) }

// Get returns the object at key.
func (d *Dir) Get(ctx context.Context, key string) (Object, error) {
	if err := validKey(key); err != nil {
		return Object{}, err
	}
	return d.read(key)
}

func (d *Dir) read(key string) (Object, error) {
	b, err := os.ReadFile(d.path(key))
	if errors.Is(err, fs.ErrNotExist) {
		return Object{}, fmt.Errorf("state.Get %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return Object{}, fmt.Errorf("state.Get %s: %w", key, err)
	}
	var e envelope
	if err := json.Unmarshal(b, &e); err != nil {
		return Object{}, fmt.Errorf("state.Get %s: corrupt object: %w", key, err)
	}
	return Object{Data: e.Data, Generation: e.Generation}, nil
}

// Put writes data at key if its generation is ifGeneration (0: must not exist).
func (d *Dir) Put(ctx context.Context, key string, data []byte, ifGeneration int64) (int64, error) {
	if err := validKey(key); err != nil {
		return 0, err
	}
	var gen int64
	err := d.locked(key, func() error {
		cur, err := d.read(key)
		switch {
		case errors.Is(err, ErrNotFound):
			if ifGeneration != 0 {
				return fmt.Errorf("state.Put %s: object does not exist, want generation %d: %w", key, ifGeneration, ErrPrecondition)
			}
		case err != nil:
			return err
		case cur.Generation != ifGeneration:
			return fmt.Errorf("state.Put %s: generation is %d, want %d: %w", key, cur.Generation, ifGeneration, ErrPrecondition)
		}
		now := time.Now()
		gen = max(now.UnixNano(), cur.Generation+1)
		b, err := json.Marshal(envelope{Generation: gen, Updated: now.UTC(), Data: data})
		if err != nil {
			return fmt.Errorf("state.Put %s: %w", key, err)
		}
		return d.writeAtomic(key, b)
	})
	return gen, err
}

// Delete removes key if its generation is ifGeneration (0: any).
func (d *Dir) Delete(ctx context.Context, key string, ifGeneration int64) error {
	if err := validKey(key); err != nil {
		return err
	}
	return d.locked(key, func() error {
		cur, err := d.read(key)
		if err != nil {
			return err
		}
		if ifGeneration != 0 && cur.Generation != ifGeneration {
			return fmt.Errorf("state.Delete %s: generation is %d, want %d: %w", key, cur.Generation, ifGeneration, ErrPrecondition)
		}
		if err := os.Remove(d.path(key)); err != nil {
			return fmt.Errorf("state.Delete %s: %w", key, err)
		}
		return nil
	})
}

// List returns the keys under prefix, sorted.
func (d *Dir) List(ctx context.Context, prefix string) ([]string, error) {
	var keys []string
	err := filepath.WalkDir(d.root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if strings.HasPrefix(e.Name(), ".") {
			if e.IsDir() && p != d.root {
				return filepath.SkipDir
			}
			return nil
		}
		if e.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(d.root, p)
		if err != nil {
			return err
		}
		if key := filepath.ToSlash(rel); strings.HasPrefix(key, prefix) {
			keys = append(keys, key)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("state.List %s: %w", prefix, err)
	}
	slices.Sort(keys)
	return keys, nil
}

// locked runs fn holding the exclusive lock of key, across processes.
func (d *Dir) locked(key string, fn func() error) error {
	name := filepath.Join(d.root, ".locks", strings.ReplaceAll(key, "/", "%"))
	f, err := os.OpenFile(name, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("state lock %s: %w", key, err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("state lock %s: %w", key, err)
	}
	defer syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return fn()
}

func (d *Dir) writeAtomic(key string, b []byte) error {
	p := d.path(key)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("state.Put %s: %w", key, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), ".tmp-*")
	if err != nil {
		return fmt.Errorf("state.Put %s: %w", key, err)
	}
	_, werr := tmp.Write(b)
	serr := tmp.Sync()
	cerr := tmp.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("state.Put %s: %w", key, err)
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("state.Put %s: %w", key, err)
	}
	return nil
}
