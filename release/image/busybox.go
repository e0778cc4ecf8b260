package image

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ulikunitz/xz"
)

// GitLab's Docker and Kubernetes executors run a job's script with a shell found in the job's
// image (/bin/sh at the latest), so the image carries one: Debian's statically linked busybox,
// fetched as the Debian package (pinned by version and SHA-256, so the build stays reproducible
// and a tampered mirror fails it) and unpacked here, without dpkg or a container registry.

// BusyboxVersion is the Debian version of busybox-static in the image (Debian 12, bookworm).
const BusyboxVersion = "1:1.35.0-4+deb12u1+b1"

// busyboxDebs are the pinned packages, by Go architecture.
var busyboxDebs = map[string]struct{ file, sha256 string }{
	"amd64": {"busybox-static_1.35.0-4+deb12u1+b1_amd64.deb", "3d3fdbe91d4660c873e14b092c213fe81c1da6362daa236eb25d0171eb108744"},
	"arm64": {"busybox-static_1.35.0-4+deb12u1+b1_arm64.deb", "732c9135564fc71337e0e05fb4da4d11e6c28c1834bce3e405e575afef2a52f5"},
}

// DefaultDebianMirror is where the package is fetched from unless RUNWAY_DEBIAN_MIRROR names
// another mirror (any Debian mirror: the SHA-256 is checked, not the transport).
const DefaultDebianMirror = "http://deb.debian.org/debian"

// Applets are the commands linked to busybox in /bin: the shell and what GitLab Runner's
// generated job scripts and a user's before_script commonly call.
var Applets = []string{
	"[", "basename", "cat", "chmod", "cp", "cut", "date", "dirname", "echo", "env", "false",
	"grep", "head", "id", "ls", "mkdir", "mktemp", "mv", "printf", "pwd", "rm", "sed", "sh",
	"sleep", "sort", "tail", "tee", "test", "tr", "true", "uname", "wc", "which", "xargs",
}

// Bounds on the package and what it unpacks to (busybox is ~2 MB): the bytes come from a
// mirror, so they are bounded before any decoder reads them.
const (
	maxDeb      = 8 << 20
	maxUnpacked = 32 << 20
)

// Busybox is the busybox binary of one architecture and its Debian copyright file (the GPL
// notice, shipped beside it).
type Busybox struct {
	Binary, Copyright []byte
}

// FetchBusybox returns busybox for arch, from cacheDir when a verified copy is there, else from
// the mirror (then cached). An empty cacheDir disables the cache.
func FetchBusybox(ctx context.Context, arch, cacheDir string, getenv func(string) string) (Busybox, error) {
	deb, ok := busyboxDebs[arch]
	if !ok {
		return Busybox{}, fmt.Errorf("busybox %s: no pinned package for this architecture", arch)
	}
	var raw []byte
	cached := ""
	if cacheDir != "" {
		cached = filepath.Join(cacheDir, deb.file)
		if b, err := os.ReadFile(cached); err == nil && sum(b) == deb.sha256 {
			raw = b
		}
	}
	if raw == nil {
		mirror := strings.TrimSuffix(getenv("RUNWAY_DEBIAN_MIRROR"), "/")
		if mirror == "" {
			mirror = DefaultDebianMirror
		}
		url := mirror + "/pool/main/b/busybox/" + deb.file
		b, err := download(ctx, url)
		if err != nil {
			return Busybox{}, fmt.Errorf("busybox %s: %w (set RUNWAY_DEBIAN_MIRROR to a reachable Debian mirror)", arch, err)
		}
		if got := sum(b); got != deb.sha256 {
			return Busybox{}, fmt.Errorf("busybox %s: %s has sha256 %s, want %s", arch, url, got, deb.sha256)
		}
		raw = b
		if cached != "" {
			if err := writeCache(cached, raw); err != nil {
				return Busybox{}, fmt.Errorf("busybox %s: cache: %w", arch, err)
			}
		}
	}
	bb, err := unpackBusybox(raw)
	if err != nil {
		return Busybox{}, fmt.Errorf("busybox %s: %s: %w", arch, deb.file, err)
	}
	return bb, nil
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func download(ctx context.Context, url string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", url, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("get %s: %s", url, resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxDeb+1))
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", url, err)
	}
	if len(b) > maxDeb {
		return nil, fmt.Errorf("get %s: more than %d bytes", url, maxDeb)
	}
	return b, nil
}

// writeCache writes the package atomically, so a concurrent build never reads half of it.
func writeCache(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".deb-")
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return err
	}
	return os.Rename(f.Name(), path)
}

// unpackBusybox reads a .deb (an ar archive holding data.tar.xz) and returns ./bin/busybox
// and the package's copyright file.
func unpackBusybox(deb []byte) (Busybox, error) {
	data, err := arMember(deb, "data.tar.xz")
	if err != nil {
		return Busybox{}, err
	}
	xr, err := xz.NewReader(bytes.NewReader(data))
	if err != nil {
		return Busybox{}, fmt.Errorf("data.tar.xz: %w", err)
	}
	tr := tar.NewReader(io.LimitReader(xr, maxUnpacked))
	var bb Busybox
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return Busybox{}, fmt.Errorf("data.tar.xz: %w", err)
		}
		var dst *[]byte
		switch h.Name {
		case "./bin/busybox":
			dst = &bb.Binary
		case "./usr/share/doc/busybox-static/copyright":
			dst = &bb.Copyright
		default:
			continue
		}
		if *dst, err = io.ReadAll(tr); err != nil {
			return Busybox{}, fmt.Errorf("data.tar.xz %s: %w", h.Name, err)
		}
	}
	if bb.Binary == nil || bb.Copyright == nil {
		return Busybox{}, errors.New("data.tar.xz holds no ./bin/busybox or no copyright file")
	}
	return bb, nil
}

// arMember returns the named member of a common-format ar archive (what dpkg-deb writes).
func arMember(b []byte, name string) ([]byte, error) {
	const magic = "!<arch>\n"
	if !bytes.HasPrefix(b, []byte(magic)) {
		return nil, errors.New("not an ar archive")
	}
	r := bufio.NewReader(bytes.NewReader(b[len(magic):]))
	for {
		var h [60]byte
		if _, err := io.ReadFull(r, h[:]); err != nil {
			return nil, fmt.Errorf("ar: no member %s", name)
		}
		size, err := strconv.ParseInt(strings.TrimSpace(string(h[48:58])), 10, 64)
		if err != nil || size < 0 || size > int64(len(b)) {
			return nil, fmt.Errorf("ar: bad member size %q", h[48:58])
		}
		body := make([]byte, size)
		if _, err := io.ReadFull(r, body); err != nil {
			return nil, fmt.Errorf("ar: %w", err)
		}
		if size%2 == 1 {
			r.ReadByte() // members are 2-byte aligned
		}
		if strings.TrimRight(strings.TrimSpace(string(h[:16])), "/") == name {
			return body, nil
		}
	}
}
