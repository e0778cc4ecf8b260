package image

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestFetchBusybox serves the pinned package from a local mirror (fetched once through the
// real one into the cache the image build uses), then a tampered one, and checks what
// FetchBusybox accepts.
func TestFetchBusybox(t *testing.T) {
	cache := filepath.Join(t.TempDir(), "cache")
	deb := busyboxDebs["amd64"]
	// The pinned package: from the user cache the image build fills, else from the real mirror.
	src := filepath.Join(t.TempDir(), "src")
	if dir, err := os.UserCacheDir(); err == nil {
		src = filepath.Join(dir, "runwayjobs", "debian")
	}
	if _, err := FetchBusybox(context.Background(), "amd64", src, os.Getenv); err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(filepath.Join(src, deb.file))
	if err != nil {
		t.Fatal(err)
	}
	tampered := bytes.Clone(good)
	tampered[len(tampered)-10] ^= 1
	serve := good
	var gets int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gets++
		if r.URL.Path != "/debian/pool/main/b/busybox/"+deb.file {
			http.NotFound(w, r)
			return
		}
		w.Write(serve)
	}))
	defer srv.Close()
	env := func(k string) string {
		if k == "RUNWAY_DEBIAN_MIRROR" {
			return srv.URL + "/debian/"
		}
		return ""
	}
	ctx := context.Background()

	serve = tampered
	if _, err := FetchBusybox(ctx, "amd64", cache, env); err == nil || !strings.Contains(err.Error(), "want "+deb.sha256) {
		t.Errorf("a tampered package: %v, want a sha256 mismatch", err)
	}
	serve = good
	bb, err := FetchBusybox(ctx, "amd64", cache, env)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(bb.Binary, []byte("\x7fELF")) || !bytes.Contains(bb.Copyright, []byte("GPL")) {
		t.Errorf("busybox %d bytes (%q…), copyright %q…", len(bb.Binary), bb.Binary[:4], bb.Copyright[:min(40, len(bb.Copyright))])
	}
	before := gets
	if _, err := FetchBusybox(ctx, "amd64", cache, env); err != nil || gets != before {
		t.Errorf("second fetch: %v, %d requests, want the cached copy", err, gets-before)
	}
	if _, err := FetchBusybox(ctx, "riscv64", cache, env); err == nil {
		t.Error("riscv64: no error, want no pinned package")
	}
}

func TestArMember(t *testing.T) {
	for _, tc := range []struct {
		name, archive, member, want, err string
	}{
		{name: "found after an odd-sized member", archive: "!<arch>\n" + arHeader("debian-binary", 3) + "2.0\n" + arHeader("data.tar.xz", 2) + "xz",
			member: "data.tar.xz", want: "xz"},
		{name: "gnu name with slash", archive: "!<arch>\n" + arHeader("data.tar.xz/", 1) + "x\n", member: "data.tar.xz", want: "x"},
		{name: "missing", archive: "!<arch>\n" + arHeader("debian-binary", 4) + "2.0\n", member: "data.tar.xz", err: "no member"},
		{name: "not ar", archive: "PK\x03\x04", member: "data.tar.xz", err: "not an ar archive"},
		{name: "size beyond the archive", archive: "!<arch>\n" + arHeader("data.tar.xz", 1<<40), member: "data.tar.xz", err: "bad member size"},
		{name: "truncated", archive: "!<arch>\n" + arHeader("data.tar.xz", 10) + "abc", member: "data.tar.xz", err: "ar:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := arMember([]byte(tc.archive), tc.member)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || string(got) != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func arHeader(name string, size int64) string {
	h := []byte(strings.Repeat(" ", 60))
	copy(h[0:16], name)
	copy(h[48:58], strconv.FormatInt(size, 10))
	copy(h[58:60], "`\n")
	return string(h)
}

// FuzzUnpackBusybox: a .deb from a mirror never panics the unpacker.
func FuzzUnpackBusybox(f *testing.F) {
	f.Add([]byte("!<arch>\n" + arHeader("data.tar.xz", 2) + "xz"))
	f.Add([]byte("!<arch>\n" + arHeader("data.tar.xz", 99)))
	f.Fuzz(func(t *testing.T, b []byte) {
		unpackBusybox(b)
	})
}
