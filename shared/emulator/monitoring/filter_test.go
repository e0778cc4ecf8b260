package monitoring

import (
	"testing"
)

// TestMatcher checks what the parsed comparisons accept; errors are covered by TestBadFilters.
func TestMatcher(t *testing.T) {
	tests := []struct {
		name   string
		filter string
		value  string
		want   bool
	}{
		{name: "double quotes", filter: `resource.label.job_name = "backup"`, value: "backup", want: true},
		{name: "single quotes", filter: `resource.label.job_name = 'backup'`, value: "backup", want: true},
		{name: "escaped quote", filter: `resource.label.job_name = "a\"b"`, value: `a"b`, want: true},
		{name: "not equal", filter: `resource.label.job_name != "backup"`, value: "backup", want: false},
		{name: "unquoted number", filter: `metric.label.attempt = 2`, value: "2", want: true},
		{name: "starts_with", filter: `resource.label.job_name = starts_with("back")`, value: "backup", want: true},
		{name: "ends_with", filter: `resource.label.job_name = ends_with("up")`, value: "backup", want: true},
		{name: "has_substring", filter: `resource.label.job_name = has_substring("cku")`, value: "backup", want: true},
		{name: "one_of miss", filter: `resource.label.job_name = one_of("a", "b")`, value: "backup", want: false},
		{name: "one_of hit", filter: `resource.label.job_name = one_of("a", "backup")`, value: "backup", want: true},
		{name: "not one_of", filter: `resource.label.job_name != one_of("a", "backup")`, value: "backup", want: false},
		{name: "regex is anchored", filter: `resource.label.job_name = monitoring.regex.full_match("back")`, value: "backup", want: false},
		{name: "regex", filter: `resource.label.job_name = monitoring.regex.full_match("back.*")`, value: "backup", want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ms, err := parseFilter(tt.filter)
			if err != nil {
				t.Fatal(err)
			}
			if len(ms) != 1 {
				t.Fatalf("%d matchers, want 1", len(ms))
			}
			if got := ms[0].match(tt.value); got != tt.want {
				t.Errorf("match(%q) = %v, want %v", tt.value, got, tt.want)
			}
		})
	}
}
