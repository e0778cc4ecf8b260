package image

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"debug/buildinfo"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The image under test: bin/runwayctl.oci.tar when make test gives it (RUNWAY_IMAGE_TAR, after
// make image), else one built here from the working tree.
var (
	builtOnce sync.Once
	builtTar  string
	builtErr  error
)

const repoRoot = "../.."

func imageTar(t *testing.T) string {
	t.Helper()
	builtOnce.Do(func() {
		if p := os.Getenv("RUNWAY_IMAGE_TAR"); p != "" {
			if _, builtErr = os.Stat(p); builtErr != nil {
				builtErr = fmt.Errorf("RUNWAY_IMAGE_TAR: %w (make image writes it)", builtErr)
			}
			builtTar = p
			return
		}
		ctx := context.Background()
		m, err := Describe(ctx, repoRoot, os.Getenv)
		if err != nil {
			builtErr = err
			return
		}
		dir, err := os.MkdirTemp("", "runwayctl-image-test-")
		if err != nil {
			builtErr = err
			return
		}
		builtTar = filepath.Join(dir, "runwayctl.oci.tar")
		builtErr = buildTar(ctx, m, builtTar)
	})
	if builtErr != nil {
		t.Fatal(builtErr)
	}
	return builtTar
}

func buildTar(ctx context.Context, m Meta, path string) error {
	idx, err := Build(ctx, Options{Repo: repoRoot, Meta: m})
	if err != nil {
		return err
	}
	return WriteLayoutTar(path, idx, m.Version, m.Created)
}

// openLayout unpacks an OCI layout tarball and returns the image index its index.json names.
func openLayout(t *testing.T, tarPath string) (v1.ImageIndex, v1.Descriptor) {
	t.Helper()
	dir := t.TempDir()
	f, err := os.Open(tarPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(h.Name, "..") || filepath.IsAbs(h.Name) {
			t.Fatalf("layout entry %q escapes the layout", h.Name)
		}
		p := filepath.Join(dir, h.Name)
		switch h.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(p, 0o755)
		case tar.TypeReg:
			var b []byte
			if b, err = io.ReadAll(tr); err == nil {
				err = os.WriteFile(p, b, 0o644)
			}
		default:
			t.Fatalf("layout entry %q: type %c", h.Name, h.Typeflag)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	top, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	im, err := top.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 1 {
		t.Fatalf("index.json lists %d manifests, want the one image index", len(im.Manifests))
	}
	d := im.Manifests[0]
	if d.MediaType != types.OCIImageIndex {
		t.Fatalf("index.json names a %s, want %s", d.MediaType, types.OCIImageIndex)
	}
	idx, err := top.ImageIndex(d.Digest)
	if err != nil {
		t.Fatal(err)
	}
	return idx, d
}

// layerFiles reads the image's only layer, unpacking it into dir (directories, files, symbolic
// links, owners when root): its headers and the runwayctl binary.
func layerFiles(t *testing.T, img v1.Image, dir string) ([]*tar.Header, []byte) {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 1 {
		t.Fatalf("%d layers, want 1", len(layers))
	}
	if mt, err := layers[0].MediaType(); err != nil || mt != types.OCILayer {
		t.Errorf("layer media type %s (%v), want %s", mt, err, types.OCILayer)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var hs []*tar.Header
	var bin []byte
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		hs = append(hs, h)
		p := filepath.Join(dir, h.Name)
		switch h.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(p, 0o777)
		case tar.TypeSymlink:
			err = os.Symlink(h.Linkname, p)
		case tar.TypeReg:
			var b []byte
			if b, err = io.ReadAll(tr); err == nil {
				err = os.WriteFile(p, b, os.FileMode(h.Mode))
			}
			if h.Name == BinaryPath {
				bin = b
			}
		}
		if err == nil && os.Geteuid() == 0 {
			err = os.Lchown(p, h.Uid, h.Gid)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return hs, bin
}

func TestImage(t *testing.T) {
	path := imageTar(t)
	idx, top := openLayout(t, path)
	if mt, _ := idx.MediaType(); mt != types.OCIImageIndex {
		t.Errorf("index media type %s", mt)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var platforms []string
	for _, d := range im.Manifests {
		platforms = append(platforms, d.Platform.String())
	}
	if want := []string{"linux/amd64", "linux/arm64/v8"}; !slices.Equal(platforms, want) {
		t.Fatalf("platforms %v, want %v", platforms, want)
	}
	labels := im.Annotations
	for _, k := range []string{LabelSource, LabelRevision, LabelVersion, LabelCreated} {
		if labels[k] == "" {
			t.Errorf("index annotation %s is empty", k)
		}
	}
	if got := top.Annotations[RefName]; got != labels[LabelVersion] {
		t.Errorf("index.json ref.name %q, want the version %q", got, labels[LabelVersion])
	}
	meta := Meta{Version: labels[LabelVersion], Commit: labels[LabelRevision], Source: labels[LabelSource]}
	if meta.Created, err = time.Parse(time.RFC3339, labels[LabelCreated]); err != nil {
		t.Fatal(err)
	}
	if err := meta.Check(); err != nil {
		t.Error(err)
	}
	for _, d := range im.Manifests {
		t.Run(d.Platform.String(), func(t *testing.T) {
			img, err := idx.Image(d.Digest)
			if err != nil {
				t.Fatal(err)
			}
			checkImage(t, img, *d.Platform, meta)
		})
	}
	t.Run("reproducible", func(t *testing.T) {
		// A second build from the labels alone, by the command make image runs (the build
		// cache is warm: two links). Equal bytes are equal digests; only a difference is
		// opened, to name the digests.
		again := filepath.Join(t.TempDir(), "again.oci.tar")
		cmd := exec.Command("go", "run", "./cmd/image", "-repo", "..", "-o", again, "-version", meta.Version,
			"-commit", meta.Commit, "-source", meta.Source, "-created", strconv.FormatInt(meta.Created.Unix(), 10))
		cmd.Dir = ".."
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0") // as the Makefile runs it: the tool is cached
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go run ./cmd/image: %v\n%s", err, out)
		}
		if a, b := fileSum(t, path), fileSum(t, again); a != b {
			idx2, _ := openLayout(t, again)
			h1, _ := idx.Digest()
			h2, _ := idx2.Digest()
			t.Errorf("tarball sha256 %x, rebuilt %x; index digest %s, rebuilt %s (a stale %s? make image rebuilds it)", a, b, h1, h2, path)
		}
	})
}

func checkImage(t *testing.T, img v1.Image, p v1.Platform, meta Meta) {
	if mt, _ := img.MediaType(); mt != types.OCIManifestSchema1 {
		t.Errorf("manifest media type %s", mt)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != p.OS || cf.Architecture != p.Architecture || cf.Variant != p.Variant {
		t.Errorf("config platform %s/%s/%s, index says %s", cf.OS, cf.Architecture, cf.Variant, p.String())
	}
	if want := []string{"/usr/local/bin/runwayctl"}; !slices.Equal(cf.Config.Entrypoint, want) || cf.Config.Cmd != nil {
		t.Errorf("entrypoint %q cmd %q, want %q and no cmd", cf.Config.Entrypoint, cf.Config.Cmd, want)
	}
	if cf.Config.User != "65532:65532" {
		t.Errorf("user %q, want 65532:65532 (not root)", cf.Config.User)
	}
	for k, v := range meta.Labels() {
		if cf.Config.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, cf.Config.Labels[k], v)
		}
	}
	if !cf.Created.Time.Equal(meta.Created) {
		t.Errorf("created %s, want %s", cf.Created.Time, meta.Created)
	}
	root := t.TempDir()
	hs, bin := layerFiles(t, img, root)
	want := Entries(nil, Busybox{})
	if len(hs) != len(want) {
		var names []string
		for _, h := range hs {
			names = append(names, h.Name)
		}
		t.Fatalf("layer holds %q, want %d entries", names, len(want))
	}
	for i, h := range hs {
		w := want[i]
		typ := byte(tar.TypeReg)
		switch {
		case strings.HasSuffix(w.Name, "/"):
			typ = tar.TypeDir
		case w.Link != "":
			typ = tar.TypeSymlink
		}
		if h.Linkname != w.Link {
			t.Errorf("layer entry %s: link %q, want %q", h.Name, h.Linkname, w.Link)
		}
		if h.Name != w.Name || h.Typeflag != typ || h.Mode != w.Mode || h.Uid != w.UID || h.Gid != w.GID || !h.ModTime.Equal(meta.Created) {
			t.Errorf("layer entry %d: %s type %c mode %o owner %d:%d mtime %s; want %s %c %o %d:%d %s",
				i, h.Name, h.Typeflag, h.Mode, h.Uid, h.Gid, h.ModTime, w.Name, typ, w.Mode, w.UID, w.GID, meta.Created)
		}
		if w.Body != nil && h.Size != int64(len(w.Body)) {
			t.Errorf("%s: %d bytes, want %d", h.Name, h.Size, len(w.Body))
		}
	}
	checkBinary(t, bin, p, meta)
	if p.Architecture == runtime.GOARCH && runtime.GOOS == "linux" {
		checkShell(t, root, meta)
	}
}

// checkBinary: a static Linux executable of the platform, built as the image promises; the
// one of this machine's architecture is run.
func checkBinary(t *testing.T, bin []byte, p v1.Platform, meta Meta) {
	f, err := elf.NewFile(bytes.NewReader(bin))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[p.Architecture]
	if f.Machine != want {
		t.Errorf("ELF machine %s, want %s", f.Machine, want)
	}
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP || prog.Type == elf.PT_DYNAMIC {
			t.Errorf("ELF has a %s program header: not static", prog.Type)
		}
	}
	if f.Section(".symtab") != nil {
		t.Error("ELF has a symbol table: not linked with -s")
	}
	bi, err := buildinfo.Read(bytes.NewReader(bin))
	if err != nil {
		t.Fatal(err)
	}
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	for k, v := range map[string]string{"CGO_ENABLED": "0", "-trimpath": "true", "GOOS": p.OS, "GOARCH": p.Architecture} {
		if settings[k] != v {
			t.Errorf("build setting %s = %q, want %q", k, settings[k], v)
		}
	}
	// -trimpath keeps -ldflags out of the build info: the -X values are in the data.
	for _, w := range []string{meta.Version, meta.Commit} {
		if !bytes.Contains(bin, []byte(w)) {
			t.Errorf("the binary does not hold %q (-X main.version, main.commit)", w)
		}
	}
	if bi.Path != "runwayjobs.dev/runwayctl" {
		t.Errorf("main package %s", bi.Path)
	}
	if !slices.ContainsFunc(bi.Deps, func(m *debug.Module) bool { return m.Path == "golang.org/x/crypto/x509roots/fallback" }) {
		t.Error("runwayctl does not link golang.org/x/crypto/x509roots/fallback: no CA roots without cert files")
	}
	if p.Architecture != runtime.GOARCH || runtime.GOOS != "linux" {
		return
	}
	exe := filepath.Join(t.TempDir(), "runwayctl")
	if err := os.WriteFile(exe, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(exe, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("runwayctl version: %v\n%s", err, out)
	}
	for _, w := range []string{meta.Version, meta.Commit, bi.GoVersion} {
		if !strings.Contains(string(out), w) {
			t.Errorf("runwayctl version prints %q, want it to contain %q", out, w)
		}
	}
	if out, err := exec.Command(exe, "validate", "--help").CombinedOutput(); err != nil || !strings.Contains(string(out), "--inventory") {
		t.Errorf("runwayctl validate --help: %v\n%s", err, out)
	}
}

func fileSum(t *testing.T, path string) [32]byte {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// TestPush pushes the image to a registry (go-containerregistry's, in process) and pulls it
// back by the digest Push returned and by its tags.
func TestPush(t *testing.T) {
	idx, _ := openLayout(t, imageTar(t))
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	repo := strings.TrimPrefix(srv.URL, "http://") + "/runway/runwayctl"
	ref, err := Push(context.Background(), idx, repo, []string{"v1.2.3", "latest"})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := idx.Digest()
	if ref.DigestStr() != want.String() || ref.Context().String() != repo {
		t.Errorf("Push returned %s, want %s@%s", ref, repo, want)
	}
	for _, r := range []string{ref.String(), repo + ":v1.2.3", repo + ":latest"} {
		pr, err := name.ParseReference(r)
		if err != nil {
			t.Fatal(err)
		}
		got, err := remote.Index(pr)
		if err != nil {
			t.Fatalf("pull %s: %v", r, err)
		}
		if h, _ := got.Digest(); h != want {
			t.Errorf("pull %s: digest %s, want %s", r, h, want)
		}
	}
	if _, err := Push(context.Background(), idx, repo, []string{"bad tag"}); err == nil || !strings.Contains(err.Error(), "bad tag") {
		t.Errorf("Push with tag %q: %v, want an error naming it", "bad tag", err)
	}
}

// gitlabDetectShell is the script GitLab Runner's Docker and Kubernetes executors run with
// `sh -c` to find the job's shell (gitlab-runner shells/bash.go), the job script on its stdin.
const gitlabDetectShell = `if [ -x /usr/local/bin/bash ]; then
	exec /usr/local/bin/bash $@
elif [ -x /usr/bin/bash ]; then
	exec /usr/bin/bash $@
elif [ -x /bin/bash ]; then
	exec /bin/bash $@
elif [ -x /usr/local/bin/sh ]; then
	exec /usr/local/bin/sh $@
elif [ -x /usr/bin/sh ]; then
	exec /usr/bin/sh $@
elif [ -x /bin/sh ]; then
	exec /bin/sh $@
elif [ -x /busybox/sh ]; then
	exec /busybox/sh $@
else
	echo shell not found
	exit 1
fi
`

// jobScript has the shapes of a runner-generated job script: pipefail, ANSI-C quoted eval of
// the user's lines, the applets before_script lines use, and runwayctl on PATH.
const jobScript = `set -eo pipefail
set +o noclobber
: | eval $'echo "$ runwayctl version"\nrunwayctl version\n'
mkdir -p "$HOME/work" && cd "$HOME/work"
printf '%s\n' "arg one" "arg two" > args.txt
test "$(wc -l < args.txt | tr -d ' ')" = 2
grep -q 'arg two' args.txt && echo "user $(id -u) in $(pwd)"
`

// checkShell unpacks the image and runs a GitLab job in it: the runner's shell detection with
// sh -c, the job script on stdin, as the image's user, chrooted into the image when this test
// may chroot (as root, or in a user namespace), else with the image's paths relative.
func checkShell(t *testing.T, root string, meta Meta) {
	cmd := exec.Command("/bin/sh", "-c", gitlabDetectShell)
	cmd.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/" + Home}
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root}
	if os.Geteuid() == 0 {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: UID, Gid: UID}
	} else {
		cmd.SysProcAttr.Cloneflags = syscall.CLONE_NEWUSER
		cmd.SysProcAttr.UidMappings = []syscall.SysProcIDMap{{ContainerID: UID, HostID: os.Geteuid(), Size: 1}}
		cmd.SysProcAttr.GidMappings = []syscall.SysProcIDMap{{ContainerID: UID, HostID: os.Getegid(), Size: 1}}
	}
	cmd.Stdin = strings.NewReader(jobScript)
	out, err := cmd.CombinedOutput()
	if errors.Is(err, syscall.EPERM) {
		t.Logf("cannot chroot here (%v): running the image's shell with relative paths", err)
		script := strings.ReplaceAll(gitlabDetectShell, " /", " "+root+"/")
		cmd = exec.Command(filepath.Join(root, "bin/sh"), "-c", script)
		cmd.Env = []string{"PATH=" + root + "/usr/local/bin:" + root + "/bin", "HOME=" + filepath.Join(root, Home)}
		cmd.Stdin = strings.NewReader(jobScript)
		out, err = cmd.CombinedOutput()
	}
	if err != nil {
		t.Fatalf("a GitLab job in the image: %v\n%s", err, out)
	}
	for _, w := range []string{"$ runwayctl version", meta.Version, meta.Commit, "user " + strconv.Itoa(UID)} {
		if !strings.Contains(string(out), w) {
			t.Errorf("a GitLab job in the image printed %q, want it to contain %q", out, w)
		}
	}
}
