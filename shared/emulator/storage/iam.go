package storage

import (
	"net/http"
	"strings"
)

// permissions are the IAM permission each route needs.
var permissions = map[string]string{
	"buckets.insert": "storage.buckets.create",
	"buckets.list":   "storage.buckets.list",
	"buckets.get":    "storage.buckets.get",
	"buckets.delete": "storage.buckets.delete",
	"objects.insert": "storage.objects.create",
	"objects.list":   "storage.objects.list",
	"objects.get":    "storage.objects.get",
	"objects.delete": "storage.objects.delete",
}

// resourceOf is the IAM resource a request of method acts on: the project for buckets.insert
// and buckets.list, the bucket, or the object (an upload names it in ?name=, or else in its
// multipart body, where the bucket stands for it).
func resourceOf(method string, r *http.Request) string {
	switch method {
	case "buckets.insert", "buckets.list":
		return "projects/" + r.URL.Query().Get("project")
	}
	res := bucketResourceName(r.PathValue("bucket"))
	switch method {
	case "objects.get", "objects.delete":
		res += "/objects/" + r.PathValue("object")
	case "objects.insert":
		if n := r.URL.Query().Get("name"); n != "" {
			res += "/objects/" + n
		}
	}
	return res
}

func bucketResourceName(bucket string) string { return "projects/_/buckets/" + bucket }

// checkIAM answers Google's 403 when a deny rule takes method's permission away.
func (s *Service) checkIAM(method string, r *http.Request) error {
	perm, ok := permissions[method]
	if !ok || s.opts.IAM.Allowed(perm, resourceOf(method, r)) {
		return nil
	}
	what := "bucket"
	if strings.HasPrefix(method, "objects.") {
		what = "object"
	}
	return errorf(http.StatusForbidden, "forbidden",
		"The caller does not have %s access to the Google Cloud Storage %s. Permission '%s' denied on resource (or it may not exist).", perm, what, perm)
}

// testPermissions answers GET /storage/v1/b/{bucket}/iam/testPermissions?permissions=…: the
// storage.buckets.* and storage.objects.* permissions of the list granted on the bucket.
func (s *Service) testPermissions(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("bucket")
	perms := r.URL.Query()["permissions"]
	if len(perms) == 0 {
		return errorf(http.StatusBadRequest, "required", "Required parameter: permissions")
	}
	for _, p := range perms {
		if !strings.HasPrefix(p, "storage.buckets.") && !strings.HasPrefix(p, "storage.objects.") {
			return errorf(http.StatusBadRequest, "invalid", "Permission '%s' is not valid for a bucket.", p)
		}
	}
	s.mu.Lock()
	_, ok := s.buckets[name]
	s.mu.Unlock()
	if !ok {
		return errBucketNotFound()
	}
	granted := s.opts.IAM.Granted(bucketResourceName(name), perms)
	writeJSON(w, http.StatusOK, map[string]any{"kind": "storage#testIamPermissionsResponse", "permissions": granted})
	return nil
}
