package storage

import (
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
)

// maxResults is Google's page size limit (and default) for objects.list.
const maxResults = 1000

func (s *Service) listObjects(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if q.Get("matchGlob") != "" {
		return errorf(http.StatusBadRequest, "invalid", "the emulator does not serve matchGlob")
	}
	if q.Get("versions") == "true" {
		return errorf(http.StatusBadRequest, "invalid", "the emulator keeps no object versions (versions=true)")
	}
	limit := maxResults
	if v := q.Get("maxResults"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return errorf(http.StatusBadRequest, "invalid", "Invalid argument for maxResults: %q", v)
		}
		if n > 0 {
			limit = min(n, maxResults)
		}
	}
	var after pageToken
	if v := q.Get("pageToken"); v != "" {
		t, err := decodePageToken(v)
		if err != nil {
			return errorf(http.StatusBadRequest, "invalid", "Invalid pageToken: %q", v)
		}
		after = t
	}
	page := listPage(s.snapshot(r.PathValue("bucket")), listQuery{
		prefix:      q.Get("prefix"),
		delimiter:   q.Get("delimiter"),
		trailing:    q.Get("includeTrailingDelimiter") == "true",
		startOffset: q.Get("startOffset"),
		endOffset:   q.Get("endOffset"),
		after:       after,
		limit:       limit,
		bucket:      r.PathValue("bucket"),
	})
	res := map[string]any{"kind": "storage#objects"}
	if len(page.items) > 0 {
		res["items"] = page.items
	}
	if len(page.prefixes) > 0 {
		res["prefixes"] = page.prefixes
	}
	if page.next != nil {
		res["nextPageToken"] = page.next.encode()
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

type listQuery struct {
	prefix, delimiter, startOffset, endOffset string
	trailing                                  bool
	after                                     pageToken
	limit                                     int
	bucket                                    string
}

type page struct {
	items    []objectResource
	prefixes []string
	next     *pageToken
}

// listPage selects one page of objs (sorted by name). Items and prefixes share the limit, and
// a prefix is listed once, on the page where its first object falls.
func listPage(objs []*object, q listQuery) page {
	var p page
	var last pageToken
	n := 0
	for _, o := range objs {
		name := o.name
		if !strings.HasPrefix(name, q.prefix) ||
			(q.startOffset != "" && name < q.startOffset) ||
			(q.endOffset != "" && name >= q.endOffset) ||
			q.after.covers(name) {
			continue
		}
		entry := pageToken{name: name}
		if q.delimiter != "" {
			if i := strings.Index(name[len(q.prefix):], q.delimiter); i >= 0 {
				entry = pageToken{name: name[:len(q.prefix)+i+len(q.delimiter)], prefix: true}
			}
		}
		if entry.prefix && last.prefix && last.name == entry.name {
			if q.trailing && name == entry.name {
				p.items = append(p.items, o.resource(q.bucket))
			}
			continue // the prefix is already listed
		}
		if n == q.limit {
			p.next = &last
			return p
		}
		n++
		last = entry
		if entry.prefix {
			p.prefixes = append(p.prefixes, entry.name)
			if q.trailing && name == entry.name {
				p.items = append(p.items, o.resource(q.bucket))
			}
			continue
		}
		p.items = append(p.items, o.resource(q.bucket))
	}
	return p
}

// pageToken is where the previous page ended: after an object name, or after every name under
// a prefix. The zero value starts at the beginning.
type pageToken struct {
	name   string
	prefix bool
}

// covers reports whether name was listed on an earlier page.
func (t pageToken) covers(name string) bool {
	if t.name == "" && !t.prefix {
		return false
	}
	return name <= t.name || (t.prefix && strings.HasPrefix(name, t.name))
}

func (t pageToken) encode() string {
	kind := "o:"
	if t.prefix {
		kind = "p:"
	}
	return base64.RawURLEncoding.EncodeToString([]byte(kind + t.name))
}

func decodePageToken(s string) (pageToken, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return pageToken{}, err
	}
	v := string(b)
	switch {
	case strings.HasPrefix(v, "o:") && len(v) > 2:
		return pageToken{name: v[2:]}, nil
	case strings.HasPrefix(v, "p:") && len(v) > 2:
		return pageToken{name: v[2:], prefix: true}, nil
	}
	return pageToken{}, errorf(http.StatusBadRequest, "invalid", "Invalid pageToken")
}
