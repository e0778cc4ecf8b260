// Command image builds the runwayctl image (runwayjobs.dev/release/image) into an OCI image
// layout tarball and, with -push, pushes it to a registry tagged with its version:
//
//	go run ./cmd/image -repo .. -o ../bin/runwayctl.oci.tar
//	go run ./cmd/image -repo .. -push us-docker.pkg.dev/P/runway/runwayctl -digest-file digest.txt
//	go run ./cmd/image -repo .. -platform linux/amd64 -o ../bin/runwayctl-linux-amd64.oci.tar
//
// -platform builds some of the image's platforms only (make test builds linux/amd64 first, so
// that the tests needing a static runwayctl start while arm64 compiles); -push refuses it, so a
// pushed image always has every platform.
// The version, commit and time come from the flags, else RUNWAY_VERSION, RUNWAY_COMMIT and
// SOURCE_DATE_EPOCH, else git (image.Describe).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"runwayjobs.dev/release/image"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fl := flag.NewFlagSet("image", flag.ContinueOnError)
	fl.SetOutput(stderr)
	repo := fl.String("repo", "..", "repository root (holds runwayctl/)")
	out := fl.String("o", "", "write the OCI image layout tarball here")
	push := fl.String("push", "", "push the image to this repository (HOST/PROJECT/REPO/runwayctl), tagged -tag")
	tag := fl.String("tag", "", "tag of the pushed image (default the version)")
	digestFile := fl.String("digest-file", "", "with -push: write REPO@sha256:… here")
	version := fl.String("version", "", "version (default RUNWAY_VERSION, else git describe)")
	commit := fl.String("commit", "", "commit (default RUNWAY_COMMIT, else git rev-parse HEAD)")
	source := fl.String("source", "", "org.opencontainers.image.source (default RUNWAY_SOURCE, else "+image.DefaultSource+")")
	created := fl.Int64("created", -1, "Unix time of the files and config (default SOURCE_DATE_EPOCH, else the commit's time)")
	only := fl.String("platform", "", "build only these platforms, comma-separated (default all: "+platformList(image.Platforms)+"); not with -push")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if *out == "" && *push == "" {
		return fmt.Errorf("nothing to do: give -o FILE or -push REPO")
	}
	platforms, err := parsePlatforms(*only)
	if err != nil {
		return err
	}
	if platforms != nil && *push != "" {
		return fmt.Errorf("-platform %s with -push: a pushed image has every platform (%s)", *only, platformList(image.Platforms))
	}
	root, err := filepath.Abs(*repo)
	if err != nil {
		return err
	}
	env := func(k string) string {
		switch {
		case k == "RUNWAY_VERSION" && *version != "":
			return *version
		case k == "RUNWAY_COMMIT" && *commit != "":
			return *commit
		case k == "RUNWAY_SOURCE" && *source != "":
			return *source
		case k == "SOURCE_DATE_EPOCH" && *created >= 0:
			return strconv.FormatInt(*created, 10)
		}
		return getenv(k)
	}
	meta, err := image.Describe(ctx, root, env)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "runwayctl %s (%s), created %s\n", meta.Version, meta.Commit, meta.Created.Format(time.RFC3339))
	idx, err := image.Build(ctx, image.Options{Repo: root, Meta: meta, Log: stderr, Platforms: platforms})
	if err != nil {
		return err
	}
	h, err := idx.Digest()
	if err != nil {
		return err
	}
	if *out != "" {
		if err := image.WriteLayoutTar(*out, idx, meta.Version, meta.Created); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "wrote %s: index %s\n", *out, h)
	}
	if *push != "" {
		t := *tag
		if t == "" {
			t = meta.Version
		}
		ref, err := image.Push(ctx, idx, *push, []string{t})
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "pushed %s:%s\n", *push, t)
		fmt.Fprintln(stdout, ref.String())
		if *digestFile != "" {
			if err := os.WriteFile(*digestFile, []byte(ref.String()+"\n"), 0o644); err != nil {
				return err
			}
		}
	}
	return nil
}

// parsePlatforms returns the platforms of the image a -platform value names, in the image's
// order; nil for an empty value (all of them).
func parsePlatforms(v string) ([]image.Platform, error) {
	if v == "" {
		return nil, nil
	}
	want := map[string]bool{}
	for _, name := range strings.Split(v, ",") {
		known := false
		for _, p := range image.Platforms {
			known = known || p.String() == name
		}
		if !known {
			return nil, fmt.Errorf("-platform %q: not a platform of the image (%s)", name, platformList(image.Platforms))
		}
		want[name] = true
	}
	var ps []image.Platform
	for _, p := range image.Platforms {
		if want[p.String()] {
			ps = append(ps, p)
		}
	}
	return ps, nil
}

// platformList is ps as os/arch[/variant], comma-separated.
func platformList(ps []image.Platform) string {
	names := make([]string, len(ps))
	for i, p := range ps {
		names[i] = p.String()
	}
	return strings.Join(names, ",")
}
