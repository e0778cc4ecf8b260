package inventory

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/api/googleapi"
	storagev1 "google.golang.org/api/storage/v1"

	"runwayjobs.dev/shared/document"
	"runwayjobs.dev/shared/emulator"
	"runwayjobs.dev/shared/emulator/emulatortest"
	"runwayjobs.dev/shared/gcp"
)

// TestOpen reads inventories from a local file and from the emulator's Cloud Storage, written
// there with the official client.
func TestOpen(t *testing.T) {
	ctx := context.Background()
	e := emulatortest.Start(t, emulator.Options{})
	cfg := emulatortest.Config(e, "runway-test")
	client, err := gcp.NewStorageAPI(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	put := func(object, content string) {
		t.Helper()
		if _, err := client.Objects.Insert("runway-config", &storagev1.Object{Name: object}).
			Media(strings.NewReader(content), googleapi.ChunkSize(0)).Context(ctx).Do(); err != nil {
			t.Fatal(err)
		}
	}
	put("inventory.yml", sample)
	put("big.yml", "inventory: []\n"+strings.Repeat("#", document.MaxSize))
	put("broken.yml", strings.Replace(sample, "type: job", "type: cron", 1))
	local := filepath.Join(t.TempDir(), "inventory.yml")
	if err := os.WriteFile(local, []byte(sample), 0o644); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name     string
		location string
		wantErr  string // substring; "" for success
		problems bool   // the error is document.Problems
	}{
		{name: "local file", location: local},
		{name: "object", location: "gs://runway-config/inventory.yml"},
		{name: "missing object", location: "gs://runway-config/nope.yml", wantErr: "inventory.Open gs://runway-config/nope.yml: storage: object doesn't exist"},
		{name: "object over 1 MiB", location: "gs://runway-config/big.yml", wantErr: "object is 1048590 bytes; the limit is 1048576 (1 MiB)"},
		{name: "invalid object", location: "gs://runway-config/broken.yml", wantErr: "gs://runway-config/broken.yml:", problems: true},
		{name: "no object", location: "gs://runway-config/", wantErr: "want gs://bucket/object"},
		{name: "no bucket", location: "gs:///inventory.yml", wantErr: "want gs://bucket/object"},
		{name: "missing local file", location: filepath.Join(t.TempDir(), "nope.yml"), wantErr: "cannot read", problems: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inv, err := Open(ctx, tt.location, cfg)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				if w, err := inv.Job("nightly-compaction"); err != nil || w.GCPProject != "runway-jobs-prod" || inv.File != tt.location {
					t.Errorf("Open = %+v (file %s), %v; want the sample's job, from %s", w, inv.File, err, tt.location)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Open error = %v, want one containing %q", err, tt.wantErr)
			}
			var ps document.Problems
			if errors.As(err, &ps) != tt.problems {
				t.Errorf("error %v: is document.Problems = %v, want %v", err, !tt.problems, tt.problems)
			}
		})
	}
}

func TestJob(t *testing.T) {
	inv, err := Parse("inventory.yml", []byte(sample))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, workload, wantErr string
	}{
		{name: "a job", workload: "nightly-compaction"},
		{name: "a service", workload: "web", wantErr: `workload "web" is a service, not a job`},
		{name: "unknown", workload: "ghost", wantErr: `workload "ghost" is not in the inventory`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := inv.Job(tt.workload)
			if tt.wantErr == "" {
				if err != nil || w.Name != tt.workload {
					t.Errorf("Job(%s) = %+v, %v", tt.workload, w, err)
				}
				return
			}
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("Job(%s) error = %v, want %q", tt.workload, err, tt.wantErr)
			}
		})
	}
}

func FuzzSplitGCS(f *testing.F) {
	for _, s := range []string{"gs://b/o", "gs://b/", "gs:///o", "gs://b/dir/o.yml", "gs://", "b/o"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, location string) {
		bucket, object, err := splitGCS(location)
		if err != nil {
			return
		}
		if bucket == "" || object == "" || strings.Contains(bucket, "/") || "gs://"+bucket+"/"+object != location {
			t.Fatalf("splitGCS(%q) = %q, %q", location, bucket, object)
		}
	})
}
