package cloudrun

import (
	"encoding/base64"
	"regexp"
	"strconv"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// jobIDPattern is Cloud Run's rule for job ids: a DNS label of lowercase letters, digits and
// hyphens, starting with a letter and not ending with a hyphen, at most 63 characters.
var jobIDPattern = regexp.MustCompile(`^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$`)

func validJobID(id string) error {
	if !jobIDPattern.MatchString(id) {
		return status.Errorf(codes.InvalidArgument,
			"job_id %q is invalid: it must use only lowercase letters, digits and hyphens, start with a letter, not end with a hyphen, and be at most 63 characters", id)
	}
	return nil
}

// splitName matches name against a pattern of alternating literal and variable segments such
// as "projects/*/locations/*/jobs/*" and returns the variables. wildcard allows "-" values.
func splitName(name, pattern string) ([]string, bool) {
	got, want := strings.Split(name, "/"), strings.Split(pattern, "/")
	if len(got) != len(want) {
		return nil, false
	}
	var vars []string
	for i, w := range want {
		switch {
		case w == "*":
			if got[i] == "" {
				return nil, false
			}
			vars = append(vars, got[i])
		case got[i] != w:
			return nil, false
		}
	}
	return vars, true
}

type jobKey struct{ project, location, job string }

func (k jobKey) parent() string { return "projects/" + k.project + "/locations/" + k.location }
func (k jobKey) name() string   { return k.parent() + "/jobs/" + k.job }

func parseParent(name string) (project, location string, err error) {
	v, ok := splitName(name, "projects/*/locations/*")
	if !ok {
		return "", "", status.Errorf(codes.InvalidArgument, "parent %q is not of the form projects/{project}/locations/{location}", name)
	}
	return v[0], v[1], nil
}

func parseJobName(name string) (jobKey, error) {
	v, ok := splitName(name, "projects/*/locations/*/jobs/*")
	if !ok {
		return jobKey{}, status.Errorf(codes.InvalidArgument, "name %q is not of the form projects/{project}/locations/{location}/jobs/{job}", name)
	}
	return jobKey{v[0], v[1], v[2]}, nil
}

func parseExecutionName(name string) (jobKey, string, error) {
	v, ok := splitName(name, "projects/*/locations/*/jobs/*/executions/*")
	if !ok {
		return jobKey{}, "", status.Errorf(codes.InvalidArgument, "name %q is not of the form projects/{project}/locations/{location}/jobs/{job}/executions/{execution}", name)
	}
	return jobKey{v[0], v[1], v[2]}, v[3], nil
}

func parseTaskName(name string) (execName string, err error) {
	v, ok := splitName(name, "projects/*/locations/*/jobs/*/executions/*/tasks/*")
	if !ok {
		return "", status.Errorf(codes.InvalidArgument, "name %q is not of the form projects/{project}/locations/{location}/jobs/{job}/executions/{execution}/tasks/{task}", name)
	}
	return jobKey{v[0], v[1], v[2]}.name() + "/executions/" + v[3], nil
}

// matches reports whether value matches want, where want "-" matches anything.
func matches(want, value string) bool { return want == "-" || want == value }

const (
	defaultPageSize = 100
	maxPageSize     = 1000
)

// page returns the page of items that pageSize and token select, and the next token. Tokens
// are opaque offsets into the (stable, sorted) list.
func page[T any](items []T, pageSize int32, token string) ([]T, string, error) {
	if pageSize < 0 {
		return nil, "", status.Errorf(codes.InvalidArgument, "page_size %d is negative", pageSize)
	}
	size := int(pageSize)
	if size == 0 {
		size = defaultPageSize
	}
	size = min(size, maxPageSize)
	start := 0
	if token != "" {
		b, err := base64.RawURLEncoding.DecodeString(token)
		n, err2 := strconv.Atoi(strings.TrimPrefix(string(b), "o"))
		if err != nil || err2 != nil || !strings.HasPrefix(string(b), "o") || n < 0 {
			return nil, "", status.Errorf(codes.InvalidArgument, "page_token %q is invalid", token)
		}
		start = n
	}
	if start >= len(items) {
		return nil, "", nil
	}
	end := min(start+size, len(items))
	next := ""
	if end < len(items) {
		next = base64.RawURLEncoding.EncodeToString([]byte("o" + strconv.Itoa(end)))
	}
	return items[start:end], next, nil
}
