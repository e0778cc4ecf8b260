package rest

import (
	"maps"
	"strings"
	"testing"

	_ "cloud.google.com/go/monitoring/apiv3/v2/monitoringpb" // the services FuzzQuery binds
	_ "cloud.google.com/go/scheduler/apiv1/schedulerpb"
	"google.golang.org/protobuf/encoding/protojson"
)

func TestTemplateMatch(t *testing.T) {
	tests := []struct {
		name     string
		template string
		path     string // escaped, as r.URL.EscapedPath()
		want     map[string]string
		wantOK   bool
	}{
		{name: "resource name", template: "/v2/{name=projects/*/locations/*/jobs/*}", path: "/v2/projects/p/locations/l/jobs/j", want: map[string]string{"name": "projects/p/locations/l/jobs/j"}, wantOK: true},
		{name: "too short", template: "/v2/{name=projects/*/locations/*/jobs/*}", path: "/v2/projects/p/locations/l/jobs", wantOK: false},
		{name: "too long", template: "/v2/{name=projects/*/locations/*/jobs/*}", path: "/v2/projects/p/locations/l/jobs/j/x", wantOK: false},
		{name: "empty segment", template: "/v2/{name=projects/*/locations/*/jobs/*}", path: "/v2/projects//locations/l/jobs/j", wantOK: false},
		{name: "wrong literal", template: "/v2/{name=projects/*/locations/*/jobs/*}", path: "/v2/projects/p/regions/l/jobs/j", wantOK: false},
		{name: "verb", template: "/v2/{name=projects/*/locations/*/jobs/*}:run", path: "/v2/projects/p/locations/l/jobs/j:run", want: map[string]string{"name": "projects/p/locations/l/jobs/j"}, wantOK: true},
		{name: "verb missing", template: "/v2/{name=projects/*/locations/*/jobs/*}:run", path: "/v2/projects/p/locations/l/jobs/j", wantOK: false},
		{name: "other verb", template: "/v2/{name=projects/*/locations/*/jobs/*}:run", path: "/v2/projects/p/locations/l/jobs/j:pause", wantOK: false},
		{name: "collection after variable", template: "/v2/{parent=projects/*/locations/*}/jobs", path: "/v2/projects/p/locations/l/jobs", want: map[string]string{"parent": "projects/p/locations/l"}, wantOK: true},
		{name: "nested field", template: "/v1/{job.name=projects/*/locations/*/jobs/*}", path: "/v1/projects/p/locations/l/jobs/j", want: map[string]string{"job.name": "projects/p/locations/l/jobs/j"}, wantOK: true},
		{name: "double wildcard", template: "/v3/{name=projects/*/metricDescriptors/**}", path: "/v3/projects/p/metricDescriptors/run.googleapis.com/job/completed_execution_count", want: map[string]string{"name": "projects/p/metricDescriptors/run.googleapis.com/job/completed_execution_count"}, wantOK: true},
		{name: "double wildcard keeps %2F", template: "/v3/{name=projects/*/metricDescriptors/**}", path: "/v3/projects/p/metricDescriptors/a%2Fb/c%20d", want: map[string]string{"name": "projects/p/metricDescriptors/a%2Fb/c d"}, wantOK: true},
		{name: "single segment decodes", template: "/v1/{name}", path: "/v1/a%2Fb%20c", want: map[string]string{"name": "a/b c"}, wantOK: true},
		{name: "default variable is one segment", template: "/v1/{name}", path: "/v1/a/b", wantOK: false},
		{name: "bad escape", template: "/v1/{name}", path: "/v1/a%zz", wantOK: false},
		{name: "two variables", template: "/v1/projects/{project}/jobs/{job}", path: "/v1/projects/p/jobs/j", want: map[string]string{"project": "p", "job": "j"}, wantOK: true},
		{name: "wildcard outside variable", template: "/v1/*/jobs", path: "/v1/anything/jobs", want: map[string]string{}, wantOK: true},
		{name: "no leading slash", template: "/v1/{name}", path: "v1/x", wantOK: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tmpl, err := parseTemplate(tt.template)
			if err != nil {
				t.Fatalf("parseTemplate(%q): %v", tt.template, err)
			}
			got, ok := tmpl.match(tt.path)
			if ok != tt.wantOK || ok && !maps.Equal(got, tt.want) {
				t.Errorf("match(%q) = %v, %v; want %v, %v", tt.path, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestParseTemplateErrors(t *testing.T) {
	tests := []struct {
		name     string
		template string
	}{
		{name: "no slash", template: "v1/x"},
		{name: "unclosed variable", template: "/v1/{name"},
		{name: "empty field", template: "/v1/{=x}"},
		{name: "bad field", template: "/v1/{a..b}"},
		{name: "double wildcard not last", template: "/v1/**/x"},
		{name: "trailing slash", template: "/v1/"},
		{name: "empty segment", template: "/v1//x"},
		{name: "field twice", template: "/v1/{a}/{a}"},
		{name: "bad verb", template: "/v1/{a}:"},
		{name: "text after variable", template: "/v1/{a}b"},
		{name: "too long", template: "/" + strings.Repeat("a", maxTemplate)},
		{name: "nested braces", template: "/v1/{a={b}}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tmpl, err := parseTemplate(tt.template); err == nil {
				t.Errorf("parseTemplate(%q) = %+v, want an error", tt.template, tmpl)
			}
		})
	}
}

// FuzzTemplate parses arbitrary templates and matches arbitrary paths: no panic, and what
// matches binds every variable to a value that, written back into the template, matches again.
func FuzzTemplate(f *testing.F) {
	f.Add("/v2/{name=projects/*/locations/*/jobs/*}:run", "/v2/projects/p/locations/l/jobs/j:run")
	f.Add("/v3/{name=projects/*/metricDescriptors/**}", "/v3/projects/p/metricDescriptors/a/b%2Fc")
	f.Add("/v1/{job.name=projects/*/locations/*/jobs/*}", "/v1/projects/p/locations/l/jobs/j")
	f.Add("/v1/{name}", "/v1/a%20b")
	f.Add("/v2/{parent=projects/*/locations/*}/jobs", "/v2/projects/p/locations/l/jobs")
	f.Fuzz(func(t *testing.T, template, path string) {
		tmpl, err := parseTemplate(template)
		if err != nil {
			return
		}
		vars, ok := tmpl.match(path)
		if !ok {
			return
		}
		if len(vars) != len(tmpl.vars) {
			t.Fatalf("match(%q) of %q bound %v, want %d variables", path, template, vars, len(tmpl.vars))
		}
		for _, v := range tmpl.vars {
			if _, ok := vars[v.field]; !ok {
				t.Fatalf("match(%q) of %q did not bind %s", path, template, v.field)
			}
		}
		if tmpl.literals() > len(tmpl.segs) {
			t.Fatalf("literals %d > segments %d", tmpl.literals(), len(tmpl.segs))
		}
	})
}

// FuzzQuery parses arbitrary query strings and binds them to ListTimeSeries and UpdateJob
// requests: no panic, and a bound request marshals.
func FuzzQuery(f *testing.F) {
	f.Add("filter=a&interval.endTime=2026-03-02T10:00:00Z&aggregation.groupByFields=x&aggregation.groupByFields=y&view=1")
	f.Add("$alt=json;enum-encoding=int&pageSize=5&aggregation.alignmentPeriod=60s")
	f.Add("updateMask=description,retryConfig.retryCount&job.retryConfig.retryCount=3")
	f.Add("%zz=1&a=%")
	h, err := New(Options{Services: []string{"google.monitoring.v3.MetricService", "google.cloud.scheduler.v1.CloudScheduler"}})
	if err != nil {
		f.Fatal(err)
	}
	list, _ := h.lookup("GET", "/v3/projects/p/timeSeries")
	update, _ := h.lookup("PATCH", "/v1/projects/p/locations/l/jobs/j")
	if list == nil || update == nil {
		f.Fatal("routes missing")
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := parseQuery(raw)
		if err != nil {
			return
		}
		for _, rt := range []*route{list, update} {
			req, err := newMessage(rt.method.Input())
			if err != nil {
				t.Fatal(err)
			}
			if err := setQuery(req, rt, map[string]bool{"job.name": rt == update}, q); err != nil {
				continue
			}
			if _, err := protojson.Marshal(req); err != nil {
				t.Fatalf("bound request of %q does not marshal: %v", raw, err)
			}
		}
	})
}
