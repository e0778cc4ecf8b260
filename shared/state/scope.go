package state

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// ErrOutOfGrant is returned by a Scoped store for an operation its Grant does not allow: in
// production Cloud Storage would refuse it (403). It is a bug of the caller, and the
// functions treat it as they would that 403: the message is kept until the code is fixed.
var ErrOutOfGrant = errors.New("state: outside the principal's grant")

// Grant is what one principal may do in the store, by key prefix (each ending in "/"). The
// platform declares each function's (platform.StateGrants); infra/platform/state.tf grants
// exactly that in Cloud Storage IAM, and infra's TestStateGrantsMatchCode holds the two equal.
// Every grant allows Get, List and ListPage under its prefixes.
type Grant struct {
	Write []string // also Put and Delete (roles/storage.objectUser)
	Prune []string // also Delete (a custom role: get, list, delete)
}

// Prefixes returns every prefix of g, sorted.
func (g Grant) Prefixes() []string {
	all := slices.Concat(g.Write, g.Prune)
	slices.Sort(all)
	return slices.Compact(all)
}

// Scoped returns s restricted to g: what g does not allow fails with ErrOutOfGrant before s
// is called, so that a key a function builds outside its grant fails its tests instead of
// failing in production with a 403.
func Scoped(s Store, who string, g Grant) Store { return &scoped{s: s, who: who, g: g} }

type scoped struct {
	s   Store
	who string
	g   Grant
}

func under(key string, prefixes ...[]string) bool {
	for _, ps := range prefixes {
		for _, p := range ps {
			if strings.HasPrefix(key, p) {
				return true
			}
		}
	}
	return false
}

func (c *scoped) refuse(op, key string) error {
	return fmt.Errorf("state %s %s by %s: %w (prefixes %s)", op, key, c.who, ErrOutOfGrant, strings.Join(c.g.Prefixes(), ", "))
}

func (c *scoped) Get(ctx context.Context, key string) (Object, error) {
	if !under(key, c.g.Write, c.g.Prune) {
		return Object{}, c.refuse("get", key)
	}
	return c.s.Get(ctx, key)
}

func (c *scoped) Put(ctx context.Context, key string, data []byte, ifGeneration int64) (int64, error) {
	if !under(key, c.g.Write) {
		return 0, c.refuse("put", key)
	}
	return c.s.Put(ctx, key, data, ifGeneration)
}

func (c *scoped) Delete(ctx context.Context, key string, ifGeneration int64) error {
	if !under(key, c.g.Write, c.g.Prune) {
		return c.refuse("delete", key)
	}
	return c.s.Delete(ctx, key, ifGeneration)
}

func (c *scoped) List(ctx context.Context, prefix string) ([]string, error) {
	if !under(prefix, c.g.Write, c.g.Prune) {
		return nil, c.refuse("list", prefix)
	}
	return c.s.List(ctx, prefix)
}

func (c *scoped) ListPage(ctx context.Context, prefix, startAfter string, limit int) ([]string, error) {
	if !under(prefix, c.g.Write, c.g.Prune) {
		return nil, c.refuse("list", prefix)
	}
	return c.s.ListPage(ctx, prefix, startAfter, limit)
}

// Close closes the underlying store if it has a Close method.
func (c *scoped) Close() error {
	if cl, ok := c.s.(interface{ Close() error }); ok {
		return cl.Close()
	}
	return nil
}
