package storage

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// bucketResource is the JSON bucket resource (int64 fields are strings, as Google sends them).
type bucketResource struct {
	Kind           string            `json:"kind,omitempty"`
	ID             string            `json:"id,omitempty"`
	SelfLink       string            `json:"selfLink,omitempty"`
	Name           string            `json:"name"`
	ProjectNumber  string            `json:"projectNumber,omitempty"`
	Metageneration string            `json:"metageneration,omitempty"`
	Location       string            `json:"location,omitempty"`
	LocationType   string            `json:"locationType,omitempty"`
	StorageClass   string            `json:"storageClass,omitempty"`
	Etag           string            `json:"etag,omitempty"`
	TimeCreated    string            `json:"timeCreated,omitempty"`
	Updated        string            `json:"updated,omitempty"`
	Labels         map[string]string `json:"labels,omitempty"`
	Versioning     json.RawMessage   `json:"versioning,omitempty"`
	Lifecycle      json.RawMessage   `json:"lifecycle,omitempty"`
}

// objectResource is the JSON object resource.
type objectResource struct {
	Kind                    string            `json:"kind,omitempty"`
	ID                      string            `json:"id,omitempty"`
	SelfLink                string            `json:"selfLink,omitempty"`
	MediaLink               string            `json:"mediaLink,omitempty"`
	Name                    string            `json:"name,omitempty"`
	Bucket                  string            `json:"bucket,omitempty"`
	Generation              string            `json:"generation,omitempty"`
	Metageneration          string            `json:"metageneration,omitempty"`
	ContentType             string            `json:"contentType,omitempty"`
	StorageClass            string            `json:"storageClass,omitempty"`
	Size                    string            `json:"size,omitempty"`
	MD5Hash                 string            `json:"md5Hash,omitempty"`
	CRC32C                  string            `json:"crc32c,omitempty"`
	Etag                    string            `json:"etag,omitempty"`
	TimeCreated             string            `json:"timeCreated,omitempty"`
	Updated                 string            `json:"updated,omitempty"`
	TimeStorageClassUpdated string            `json:"timeStorageClassUpdated,omitempty"`
	TimeFinalized           string            `json:"timeFinalized,omitempty"`
	Metadata                map[string]string `json:"metadata,omitempty"`
}

// apiError is an error answered with Google's JSON error body.
type apiError struct {
	code    int
	reason  string
	message string
}

func (e *apiError) Error() string { return fmt.Sprintf("%d %s: %s", e.code, e.reason, e.message) }

func errorf(code int, reason, format string, args ...any) error {
	return &apiError{code: code, reason: reason, message: fmt.Sprintf(format, args...)}
}

func errBucketNotFound() error {
	return errorf(http.StatusNotFound, "notFound", "The specified bucket does not exist.")
}

func errObjectNotFound(bucket, name string) error {
	return errorf(http.StatusNotFound, "notFound", "No such object: %s/%s", bucket, name)
}

var errNotModified = &apiError{code: http.StatusNotModified}

func errConditionNotMet() error {
	return errorf(http.StatusPreconditionFailed, "conditionNotMet", "At least one of the pre-conditions you specified did not hold.")
}

// faultError turns an injected gRPC status into the HTTP error Google's front ends answer.
func faultError(err error) error {
	st := status.Convert(err)
	code, reason := http.StatusInternalServerError, "backendError"
	switch st.Code() {
	case codes.InvalidArgument, codes.OutOfRange:
		code, reason = http.StatusBadRequest, "invalid"
	case codes.FailedPrecondition:
		code, reason = http.StatusPreconditionFailed, "conditionNotMet"
	case codes.Unauthenticated:
		code, reason = http.StatusUnauthorized, "authError"
	case codes.PermissionDenied:
		code, reason = http.StatusForbidden, "forbidden"
	case codes.NotFound:
		code, reason = http.StatusNotFound, "notFound"
	case codes.AlreadyExists, codes.Aborted:
		code, reason = http.StatusConflict, "conflict"
	case codes.ResourceExhausted:
		code, reason = http.StatusTooManyRequests, "rateLimitExceeded"
	case codes.Unimplemented:
		code, reason = http.StatusNotImplemented, "notImplemented"
	case codes.Unavailable:
		code, reason = http.StatusServiceUnavailable, "backendError"
	case codes.DeadlineExceeded, codes.Canceled:
		code, reason = http.StatusGatewayTimeout, "deadlineExceeded"
	}
	return errorf(code, reason, "%s", st.Message())
}

func writeError(w http.ResponseWriter, err error) {
	var e *apiError
	if !errors.As(err, &e) {
		e = &apiError{code: http.StatusInternalServerError, reason: "backendError", message: err.Error()}
	}
	if e.code == http.StatusNotModified {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	writeJSON(w, e.code, map[string]any{"error": map[string]any{
		"code":    e.code,
		"message": e.message,
		"errors":  []map[string]string{{"message": e.message, "domain": "global", "reason": e.reason}},
	}})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// conditions are the generation preconditions of a request; nil fields are absent.
type conditions struct {
	genMatch, genNotMatch, metaMatch, metaNotMatch, generation *int64
}

func parseConditions(q url.Values) (conditions, error) {
	var c conditions
	for _, p := range []struct {
		name string
		dst  **int64
	}{
		{name: "ifGenerationMatch", dst: &c.genMatch},
		{name: "ifGenerationNotMatch", dst: &c.genNotMatch},
		{name: "ifMetagenerationMatch", dst: &c.metaMatch},
		{name: "ifMetagenerationNotMatch", dst: &c.metaNotMatch},
		{name: "generation", dst: &c.generation},
	} {
		v := q.Get(p.name)
		if v == "" {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return c, errorf(http.StatusBadRequest, "invalid", "Invalid argument for %s: %q", p.name, v)
		}
		*p.dst = &n
	}
	return c, nil
}

// check tests the conditions against the live object cur (nil: none). A read answers 404 for
// a missing object or generation and 304 when a NotMatch condition fails; a write answers 412.
func (c conditions) check(cur *object, read bool) error {
	if read && cur == nil {
		return errorf(http.StatusNotFound, "notFound", "No such object")
	}
	if c.generation != nil && (cur == nil || cur.generation != *c.generation) {
		return errorf(http.StatusNotFound, "notFound", "No such object (generation %d)", *c.generation)
	}
	var gen int64 // 0 stands for "no live object", as in ifGenerationMatch=0
	if cur != nil {
		gen = cur.generation
	}
	if c.genMatch != nil && gen != *c.genMatch {
		return errConditionNotMet()
	}
	if c.genNotMatch != nil && gen == *c.genNotMatch {
		if read {
			return errNotModified
		}
		return errConditionNotMet()
	}
	if c.metaMatch != nil && (cur == nil || *c.metaMatch != 1) {
		return errConditionNotMet()
	}
	if c.metaNotMatch != nil && (cur == nil || *c.metaNotMatch == 1) {
		if read && cur != nil {
			return errNotModified
		}
		return errConditionNotMet()
	}
	return nil
}

// validObjectName applies Google's naming rules: 1–1024 bytes of UTF-8, no CR or LF, not "."
// or "..", not starting with ".well-known/acme-challenge/".
func validObjectName(name string) error {
	switch {
	case name == "":
		return errorf(http.StatusBadRequest, "required", "Required: object name")
	case len(name) > 1024 || !utf8.ValidString(name) || strings.ContainsAny(name, "\r\n") ||
		name == "." || name == ".." || strings.HasPrefix(name, ".well-known/acme-challenge/"):
		return errorf(http.StatusBadRequest, "invalid", "The specified object name is not valid.")
	}
	return nil
}

// escape path-escapes an object name as the client does ("/" becomes %2F).
func escape(name string) string { return url.PathEscape(name) }
