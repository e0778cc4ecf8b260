package state

import (
	"context"
	"errors"
	"testing"
)

func TestScoped(t *testing.T) {
	ctx := context.Background()
	dir, err := NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"w/a", "p/a", "r/a", "x/a"} {
		if _, err := dir.Put(ctx, k, []byte("1"), 0); err != nil {
			t.Fatal(err)
		}
	}
	s := Scoped(dir, "tester", Grant{Write: []string{"w/"}, Prune: []string{"p/"}})
	get := func(k string) error { _, err := s.Get(ctx, k); return err }
	put := func(k string) error { _, err := s.Put(ctx, k, []byte("2"), 0); return err }
	del := func(k string) error { return s.Delete(ctx, k, 0) }
	list := func(p string) error { _, err := s.List(ctx, p); return err }
	page := func(p string) error { _, err := s.ListPage(ctx, p, "", 10); return err }
	for _, tc := range []struct {
		name    string
		op      func(string) error
		key     string
		allowed bool
	}{
		{name: "get write prefix", op: get, key: "w/a", allowed: true},
		{name: "get prune prefix", op: get, key: "p/a", allowed: true},
		{name: "get elsewhere", op: get, key: "x/a"},
		{name: "get a prefix's sibling", op: get, key: "wx/a"},
		{name: "put write prefix", op: put, key: "w/b", allowed: true},
		{name: "put prune prefix", op: put, key: "p/b"},
		{name: "delete prune prefix", op: del, key: "p/a", allowed: true},
		{name: "delete write prefix", op: del, key: "w/a", allowed: true},
		{name: "delete elsewhere", op: del, key: "x/a"},
		{name: "list prune prefix", op: list, key: "p/", allowed: true},
		{name: "list elsewhere", op: list, key: "r/"},
		{name: "list under a prefix", op: list, key: "w/sub/", allowed: true},
		{name: "list the whole store", op: list, key: ""},
		{name: "page prune prefix", op: page, key: "p/", allowed: true},
		{name: "page elsewhere", op: page, key: "x/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.op(tc.key)
			if tc.allowed && errors.Is(err, ErrOutOfGrant) || !tc.allowed && !errors.Is(err, ErrOutOfGrant) {
				t.Fatalf("%s: err %v, want allowed %v", tc.key, err, tc.allowed)
			}
		})
	}
	// What was refused never reached the store.
	if _, err := dir.Get(ctx, "x/a"); err != nil {
		t.Fatalf("x/a: %v", err)
	}
}
