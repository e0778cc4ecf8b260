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
// (flock over NFS is not reliable); ListPage reads the whole directory its page falls in (a
// flat directory has no order to start from), so its cost is that of the directory, not of the
// page as Store asks.
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
		if errors.Is(err, ErrNotFound) {
			os.Remove(d.lockPath(key)) // the lock of a key that is not there is not kept
		}
		if err != nil {
			return err
		}
		if ifGeneration != 0 && cur.Generation != ifGeneration {
			return fmt.Errorf("state.Delete %s: generation is %d, want %d: %w", key, cur.Generation, ifGeneration, ErrPrecondition)
		}
		if err := os.Remove(d.path(key)); err != nil {
			return fmt.Errorf("state.Delete %s: %w", key, err)
		}
		// Still holding it: a waiting locker sees the file gone and locks a new one.
		if err := os.Remove(d.lockPath(key)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("state.Delete %s: lock: %w", key, err)
		}
		return nil
	})
}

// List returns the keys under prefix, sorted. It reads only the directories that can hold such
// keys.
func (d *Dir) List(ctx context.Context, prefix string) ([]string, error) {
	var keys []string
	if err := d.walk("", prefix, "", func(key string) bool { keys = append(keys, key); return true }); err != nil {
		return nil, fmt.Errorf("state.List %s: %w", prefix, err)
	}
	return keys, nil
}

// ListPage returns at most limit keys under prefix after startAfter, sorted. It reads the
// directories that can hold such keys, skipping those whose keys all sort before startAfter;
// each directory it reads, it reads whole.
func (d *Dir) ListPage(ctx context.Context, prefix, startAfter string, limit int) ([]string, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("state.ListPage %s: limit %d, want > 0", prefix, limit)
	}
	var keys []string
	err := d.walk("", prefix, startAfter, func(key string) bool {
		keys = append(keys, key)
		return len(keys) < limit
	})
	if err != nil {
		return nil, fmt.Errorf("state.ListPage %s after %s: %w", prefix, startAfter, err)
	}
	return keys, nil
}

// walk calls fn, in key order, with each key under prefix that sorts after after (every key
// when after is ""), in the directory of the keys starting with base ("" or "a/b/"), until fn
// returns false; it reports whether fn asked for more. A directory is read only if it can hold
// such a key: its keys all start with its name and a slash, so its entries sort as that.
func (d *Dir) walk(base, prefix, after string, fn func(key string) bool) error {
	_, err := d.walkDir(base, prefix, after, fn)
	return err
}

func (d *Dir) walkDir(base, prefix, after string, fn func(key string) bool) (bool, error) {
	entries, err := os.ReadDir(filepath.Join(d.root, filepath.FromSlash(base)))
	if errors.Is(err, fs.ErrNotExist) {
		return true, nil // removed meanwhile, or never made
	}
	if err != nil {
		return false, err
	}
	type item struct {
		key string // a directory's ends with a slash
		dir bool
	}
	items := make([]item, 0, len(entries))
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue // locks, temporary files
		}
		k := base + e.Name()
		if e.IsDir() {
			k += "/"
			if !strings.HasPrefix(k, prefix) && !strings.HasPrefix(prefix, k) {
				continue // no key of it is under prefix
			}
			if after != "" && k <= after && !strings.HasPrefix(after, k) {
				continue // every key of it sorts before after
			}
		} else if !strings.HasPrefix(k, prefix) || k <= after {
			continue
		}
		items = append(items, item{key: k, dir: e.IsDir()})
	}
	slices.SortFunc(items, func(a, b item) int { return strings.Compare(a.key, b.key) })
	for _, it := range items {
		if it.dir {
			more, err := d.walkDir(it.key, prefix, after, fn)
			if !more || err != nil {
				return more, err
			}
			continue
		}
		if !fn(it.key) {
			return false, nil
		}
	}
	return true, nil
}

// locked runs fn holding the exclusive lock of key, across processes. fn may remove the lock
// file (Delete does, so that deleted keys leave no lock behind): a locker that then finds the
// file it locked no longer in place opens the new one and locks again.
func (d *Dir) locked(key string, fn func() error) error {
	name := d.lockPath(key)
	for {
		f, err := os.OpenFile(name, os.O_CREATE|os.O_RDWR, 0o644)
		if err != nil {
			return fmt.Errorf("state lock %s: %w", key, err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
			f.Close()
			return fmt.Errorf("state lock %s: %w", key, err)
		}
		held, herr := f.Stat()
		cur, cerr := os.Stat(name)
		if herr != nil || cerr != nil || !os.SameFile(held, cur) {
			f.Close() // removed (or replaced) by its last holder: lock the file now in place
			continue
		}
		err = fn()
		f.Close() // releases the lock
		return err
	}
}

func (d *Dir) lockPath(key string) string {
	return filepath.Join(d.root, ".locks", strings.ReplaceAll(key, "/", "%"))
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
