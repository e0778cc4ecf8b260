// Package image builds the runwayctl container image without a Docker daemon or a base image:
// runwayctl cross-compiled statically for each platform and a static busybox for the shell
// GitLab's executors need (busybox.go), one layer per platform on an empty base, an OCI image index over them, written as an OCI image layout tarball or pushed to a
// registry. Every input is fixed by the source tree and the Meta (no clock, no host path, no
// file order), so two builds of one commit have the same digest.
package image

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The image's fixed contents: where runwayctl is, who runs it.
const (
	BinaryPath = "usr/local/bin/runwayctl"
	UID        = 65532
	Home       = "home/nonroot"
	User       = "65532:65532"
)

// OCI annotation and label keys (image-spec annotations.md).
const (
	LabelSource   = "org.opencontainers.image.source"
	LabelRevision = "org.opencontainers.image.revision"
	LabelVersion  = "org.opencontainers.image.version"
	LabelCreated  = "org.opencontainers.image.created"
	LabelTitle    = "org.opencontainers.image.title"
	// RefName names the image in an OCI layout's index.json (skopeo's oci-archive:FILE:NAME).
	RefName = "org.opencontainers.image.ref.name"
)

// DefaultSource is the repository runwayctl is built from.
const DefaultSource = "https://gitlab.com/gitlab-com/gl-infra/platform/runway/runwayctl"

// Platform is one OS/architecture the image is built for.
type Platform struct {
	OS, Arch, Variant string
}

// String returns os/arch[/variant].
func (p Platform) String() string {
	s := p.OS + "/" + p.Arch
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// Platforms are the platforms of the image, in index order.
var Platforms = []Platform{{OS: "linux", Arch: "amd64"}, {OS: "linux", Arch: "arm64", Variant: "v8"}}

// Meta is what the image says about itself: labels, the version runwayctl prints, the time
// every file and the config carry.
type Meta struct {
	Version string
	Commit  string
	Source  string
	Created time.Time
}

// Labels returns the OCI labels of the image config (and annotations of the index).
func (m Meta) Labels() map[string]string {
	return map[string]string{
		LabelSource:   m.Source,
		LabelRevision: m.Commit,
		LabelVersion:  m.Version,
		LabelCreated:  m.Created.UTC().Format(time.RFC3339),
		LabelTitle:    "runwayctl",
	}
}

// Options are the inputs of Build.
type Options struct {
	Repo      string     // repository root: runwayctl/ is built from there
	Meta      Meta       // labels and the version linked into runwayctl
	Platforms []Platform // default Platforms
	Go        string     // the go command; default "go"
	Log       io.Writer  // progress; default discard
	// CacheDir keeps the fetched busybox packages (default the user cache dir's
	// runwayjobs/debian; "-" for none).
	CacheDir string
	Getenv   func(string) string // RUNWAY_DEBIAN_MIRROR; default os.Getenv
}

// Build cross-compiles runwayctl for each platform and returns the image index over one image
// per platform. The binaries are built in a temporary directory that is removed on return (the
// layers hold their bytes).
func Build(ctx context.Context, o Options) (v1.ImageIndex, error) {
	if o.Go == "" {
		o.Go = "go"
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	switch o.CacheDir {
	case "":
		if dir, err := os.UserCacheDir(); err == nil {
			o.CacheDir = filepath.Join(dir, "runwayjobs", "debian")
		}
	case "-":
		o.CacheDir = ""
	}
	platforms := o.Platforms
	if len(platforms) == 0 {
		platforms = Platforms
	}
	if err := o.Meta.Check(); err != nil {
		return nil, fmt.Errorf("build image: %w", err)
	}
	tmp, err := os.MkdirTemp("", "runwayctl-image-")
	if err != nil {
		return nil, fmt.Errorf("build image: %w", err)
	}
	defer os.RemoveAll(tmp)

	// The platforms compile concurrently: each go build is parallel, but its link is not.
	bins := make([][]byte, len(platforms))
	shells := make([]Busybox, len(platforms))
	errs := make([]error, len(platforms))
	var wg sync.WaitGroup
	for i, p := range platforms {
		wg.Go(func() {
			if shells[i], errs[i] = FetchBusybox(ctx, p.Arch, o.CacheDir, o.Getenv); errs[i] != nil {
				return
			}
			bins[i], errs[i] = compile(ctx, o, p, filepath.Join(tmp, "runwayctl-"+p.OS+"-"+p.Arch))
		})
	}
	wg.Wait()
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	var adds []mutate.IndexAddendum
	for i, p := range platforms {
		if errs[i] != nil {
			return nil, errs[i]
		}
		img, err := platformImage(o.Meta, p, Entries(bins[i], shells[i]))
		if err != nil {
			return nil, fmt.Errorf("build image %s: %w", p, err)
		}
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{
			Platform: &v1.Platform{OS: p.OS, Architecture: p.Arch, Variant: p.Variant},
		}})
	}
	idx = mutate.AppendManifests(idx, adds...)
	return mutate.Annotations(idx, o.Meta.Labels()).(v1.ImageIndex), nil
}

// LDFlags are the linker flags of runwayctl: no symbol table, no build ID, the version and
// commit that `runwayctl version` prints.
func LDFlags(m Meta) string {
	return fmt.Sprintf("-s -w -buildid= -X main.version=%s -X main.commit=%s", m.Version, m.Commit)
}

// compile builds runwayctl for p into out and returns its bytes. The module is built alone
// (GOWORK=off): its own go.mod and go.sum fix the dependencies, whatever the workspace holds.
func compile(ctx context.Context, o Options, p Platform, out string) ([]byte, error) {
	start := time.Now()
	cmd := exec.CommandContext(ctx, o.Go, "build", "-trimpath", "-buildvcs=false", "-ldflags="+LDFlags(o.Meta), "-o", out, ".")
	cmd.Dir = filepath.Join(o.Repo, "runwayctl")
	cmd.Env = append(os.Environ(), "GOOS="+p.OS, "GOARCH="+p.Arch, "CGO_ENABLED=0", "GOWORK=off", "GOFLAGS=-mod=readonly",
		"GOAMD64=v1", "GOARM64=v8.0", "GOEXPERIMENT=")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("go build runwayctl %s: %w\n%s", p, err, strings.TrimSpace(stderr.String()))
	}
	b, err := os.ReadFile(out)
	if err != nil {
		return nil, fmt.Errorf("go build runwayctl %s: %w", p, err)
	}
	fmt.Fprintf(o.Log, "runwayctl %s: %d bytes in %s\n", p, len(b), time.Since(start).Round(100*time.Millisecond))
	return b, nil
}

// Entry is one file of the layer.
type Entry struct {
	Name     string // without a leading /; directories end in /
	Mode     int64  // permission bits (and sticky)
	UID, GID int
	Body     []byte // nil for directories and links
	Link     string // a symbolic link's target, relative to the link's directory
}

// Entries returns the layer's files, parents before children: the filesystem of the image.
func Entries(binary []byte, shell Busybox) []Entry {
	es := []Entry{
		{Name: "bin/", Mode: 0o755},
		{Name: "bin/busybox", Mode: 0o755, Body: shell.Binary},
	}
	for _, a := range Applets {
		es = append(es, Entry{Name: "bin/" + a, Mode: 0o777, Link: "busybox"})
	}
	return append(es, []Entry{
		{Name: "etc/", Mode: 0o755},
		{Name: "etc/group", Mode: 0o644, Body: []byte("root:x:0:\nnonroot:x:65532:\n")},
		{Name: "etc/passwd", Mode: 0o644, Body: []byte("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/bin/sh\n")},
		{Name: "home/", Mode: 0o755},
		{Name: Home + "/", Mode: 0o700, UID: UID, GID: UID},
		{Name: "tmp/", Mode: 0o1777},
		{Name: "usr/", Mode: 0o755},
		{Name: "usr/local/", Mode: 0o755},
		{Name: "usr/local/bin/", Mode: 0o755},
		{Name: BinaryPath, Mode: 0o755, Body: binary},
		{Name: "usr/share/", Mode: 0o755},
		{Name: "usr/share/doc/", Mode: 0o755},
		{Name: "usr/share/doc/busybox-static/", Mode: 0o755},
		{Name: "usr/share/doc/busybox-static/copyright", Mode: 0o644, Body: shell.Copyright},
	}...)
}

// layerTar writes the entries as an uncompressed tar, every header fixed (mtime, owners, format).
func layerTar(entries []Entry, mtime time.Time) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.Name, Mode: e.Mode, Uid: e.UID, Gid: e.GID, ModTime: mtime, Format: tar.FormatPAX}
		switch {
		case strings.HasSuffix(e.Name, "/"):
			h.Typeflag = tar.TypeDir
		case e.Link != "":
			h.Typeflag, h.Linkname = tar.TypeSymlink, e.Link
		default:
			h.Typeflag = tar.TypeReg
			h.Size = int64(len(e.Body))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("layer %s: %w", e.Name, err)
		}
		if _, err := tw.Write(e.Body); err != nil {
			return nil, fmt.Errorf("layer %s: %w", e.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	return buf.Bytes(), nil
}

// platformImage is the image of one platform: an empty base, one layer, the config.
func platformImage(m Meta, p Platform, entries []Entry) (v1.Image, error) {
	created := m.Created.UTC().Truncate(time.Second)
	raw, err := layerTar(entries, created)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(raw)), nil },
		tarball.WithMediaType(types.OCILayer), tarball.WithCompressedCaching) // digest, layout and push: gzip once
	if err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err := mutate.Append(base, mutate.Addendum{Layer: layer, MediaType: types.OCILayer, History: v1.History{
		Created:   v1.Time{Time: created},
		CreatedBy: "runwayjobs.dev/release/cmd/image",
		Comment:   "runwayctl " + m.Version + " " + p.String(),
	}})
	if err != nil {
		return nil, fmt.Errorf("append layer: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = p.OS, p.Arch, p.Variant
	cf.Created = v1.Time{Time: created}
	cf.Author = ""
	cf.Config = v1.Config{
		Entrypoint: []string{"/" + BinaryPath},
		User:       User,
		WorkingDir: "/" + Home,
		Env:        []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/" + Home},
		Labels:     m.Labels(),
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return img, nil
}
