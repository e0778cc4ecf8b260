package storage_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	storagev1 "google.golang.org/api/storage/v1"

	"runwayjobs.dev/shared/emulator/iam"
)

// TestIAM: each route needs its permission on the bucket or object, testPermissions answers
// from the same rules, and its errors are Google's.
func TestIAM(t *testing.T) {
	e, s := start(t)
	ctx := context.Background()
	if _, err := s.Buckets.Insert("p", &storagev1.Bucket{Name: "iam-b"}).Context(ctx).Do(); err != nil {
		t.Fatal(err)
	}
	k := object{"iam-b", "dir/k"}
	if _, err := put(ctx, s, k, []byte("v"), nil); err != nil {
		t.Fatal(err)
	}
	if err := e.IAM().Deny(iam.Rule{Permissions: []string{"storage.objects.get"}, Resource: "projects/_/buckets/iam-b/objects/dir/k"}); err != nil {
		t.Fatal(err)
	}
	if err := e.IAM().Deny(iam.Rule{Permissions: []string{"storage.objects.create"}, Resource: "projects/_/buckets/iam-b"}); err != nil {
		t.Fatal(err)
	}
	_, _, err := read(ctx, s, k, nil, 0)
	if ae := apiError(t, err); ae.Code != http.StatusForbidden || !strings.Contains(ae.Error(), "Permission 'storage.objects.get' denied") {
		t.Errorf("read of the denied object: %v", err)
	}
	if _, err := get(ctx, s, k, nil, 0).Do(); apiError(t, err).Code != http.StatusForbidden {
		t.Errorf("metadata of the denied object: %v", err)
	}
	if _, err := put(ctx, s, object{"iam-b", "other"}, []byte("v"), nil); apiError(t, err).Code != http.StatusForbidden {
		t.Errorf("write with storage.objects.create denied on the bucket: %v", err)
	}
	if err := del(ctx, s, k, nil); err != nil {
		t.Errorf("delete with only get denied: %v", err)
	}

	tests := []struct {
		name     string
		bucket   string
		perms    []string
		want     []string
		wantCode int
	}{
		{name: "granted subset", bucket: "iam-b", perms: []string{"storage.objects.create", "storage.objects.list", "storage.buckets.get"}, want: []string{"storage.objects.list", "storage.buckets.get"}},
		{name: "object rules do not deny on the bucket", bucket: "iam-b", perms: []string{"storage.objects.get"}, want: []string{"storage.objects.get"}},
		{name: "no such bucket", bucket: "nope-b", perms: []string{"storage.objects.get"}, wantCode: http.StatusNotFound},
		{name: "not a storage permission", bucket: "iam-b", perms: []string{"run.jobs.get"}, wantCode: http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := s.Buckets.TestIamPermissions(tt.bucket, tt.perms).Context(ctx).Do()
			var got []string
			if r != nil {
				got = r.Permissions
			}
			if tt.wantCode != 0 {
				if apiError(t, err).Code != tt.wantCode {
					t.Fatalf("TestPermissions = %v, want %d", err, tt.wantCode)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.want) {
				t.Errorf("TestPermissions = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}
