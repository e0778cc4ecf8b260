package image

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/google"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// WriteLayoutTar writes idx as an OCI image layout (oci-layout, index.json, blobs/sha256/…)
// tarred into path: entries sorted, mtime mtime, owner 0, so the tarball is as reproducible as
// the index. index.json names the index refName (org.opencontainers.image.ref.name).
func WriteLayoutTar(path string, idx v1.ImageIndex, refName string, mtime time.Time) error {
	dir, err := os.MkdirTemp("", "runwayctl-layout-")
	if err != nil {
		return fmt.Errorf("write layout %s: %w", path, err)
	}
	defer os.RemoveAll(dir)
	top := mutate.AppendManifests(empty.Index, mutate.IndexAddendum{Add: idx, Descriptor: v1.Descriptor{
		Annotations: map[string]string{RefName: refName},
	}})
	if _, err := layout.Write(dir, top); err != nil {
		return fmt.Errorf("write layout %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("write layout %s: %w", path, err)
	}
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("write layout %s: %w", path, err)
	}
	defer os.Remove(tmp)
	if err := tarDir(f, dir, mtime); err != nil {
		f.Close()
		return fmt.Errorf("write layout %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write layout %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write layout %s: %w", path, err)
	}
	return nil
}

// tarDir tars the regular files and directories under dir, sorted by name.
func tarDir(w io.Writer, dir string, mtime time.Time) error {
	var names []string
	if err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		if d.IsDir() {
			rel += "/"
		}
		names = append(names, filepath.ToSlash(rel))
		return nil
	}); err != nil {
		return err
	}
	slices.Sort(names)
	tw := tar.NewWriter(w)
	for _, n := range names {
		h := &tar.Header{Name: n, ModTime: mtime.UTC().Truncate(time.Second), Format: tar.FormatPAX, Typeflag: tar.TypeDir, Mode: 0o755}
		var body *os.File
		if n[len(n)-1] != '/' {
			f, err := os.Open(filepath.Join(dir, filepath.FromSlash(n)))
			if err != nil {
				return err
			}
			fi, err := f.Stat()
			if err != nil {
				f.Close()
				return err
			}
			h.Typeflag, h.Mode, h.Size, body = tar.TypeReg, 0o644, fi.Size(), f
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if body != nil {
			_, err := io.Copy(tw, body)
			body.Close()
			if err != nil {
				return err
			}
		}
	}
	return tw.Close()
}

// Keychain finds registry credentials: Google's (Application Default Credentials or gcloud)
// for Artifact Registry and gcr.io, then the Docker config.
var Keychain = authn.NewMultiKeychain(google.Keychain, authn.DefaultKeychain)

// Push writes idx to repo tagged with each of tags (the first one pushes the blobs) and
// returns repo@digest, the reference that names exactly this image.
func Push(ctx context.Context, idx v1.ImageIndex, repo string, tags []string, opts ...remote.Option) (name.Digest, error) {
	if len(tags) == 0 {
		return name.Digest{}, fmt.Errorf("push %s: no tag", repo)
	}
	r, err := name.NewRepository(repo)
	if err != nil {
		return name.Digest{}, fmt.Errorf("push %s: %w", repo, err)
	}
	h, err := idx.Digest()
	if err != nil {
		return name.Digest{}, fmt.Errorf("push %s: %w", repo, err)
	}
	opts = append([]remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(Keychain)}, opts...)
	for i, t := range tags {
		tag, err := name.NewTag(r.Name()+":"+t, name.StrictValidation)
		if err != nil {
			return name.Digest{}, fmt.Errorf("push %s: tag %q: %w", repo, t, err)
		}
		if i == 0 {
			err = remote.WriteIndex(tag, idx, opts...)
		} else {
			err = remote.Tag(tag, idx, opts...)
		}
		if err != nil {
			return name.Digest{}, fmt.Errorf("push %s: %w", tag, err)
		}
	}
	return r.Digest(h.String()), nil
}
