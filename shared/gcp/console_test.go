package gcp

import (
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSchedulerJobLinks(t *testing.T) {
	name := "projects/gitlab-runway/locations/us-east1/jobs/nightly-compaction"
	tests := []struct {
		name string
		cfg  Config
		job  string
		want []Link
	}{
		{name: "Google Cloud", job: name, want: []Link{
			{Text: "Scheduler job", URL: "https://console.cloud.google.com/cloudscheduler/jobs/edit/us-east1/nightly-compaction?project=gitlab-runway"},
			{Text: "Scheduler logs", URL: "https://console.cloud.google.com/logs/query;query=resource.type%3D%22cloud_scheduler_job%22%0Aresource.labels.location%3D%22us-east1%22%0Aresource.labels.job_id%3D%22nightly-compaction%22?project=gitlab-runway"},
		}},
		{name: "emulator", cfg: Config{EmulatorHost: "127.0.0.1:8085"}, job: name, want: []Link{
			{Text: "Scheduler job", URL: "http://127.0.0.1:8085/emulator/v1/scheduler/" + name},
		}},
		{name: "not a job name", job: "projects/p/jobs/x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.cfg.SchedulerJobLinks(tt.job)
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("links (-want +got):\n%s", d)
			}
		})
	}
	// The Logging query decodes back to the filter.
	u := Config{}.SchedulerJobLinks(name)[1].URL
	q, _ := strings.CutPrefix(u[:strings.Index(u, "?")], "https://console.cloud.google.com/logs/query;query=")
	filter, err := url.PathUnescape(q)
	if want := "resource.type=\"cloud_scheduler_job\"\nresource.labels.location=\"us-east1\"\nresource.labels.job_id=\"nightly-compaction\""; err != nil || filter != want {
		t.Errorf("query decodes to %q, %v; want %q", filter, err, want)
	}
}

func TestMetricsLinks(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []Link
	}{
		{name: "Google Cloud", want: []Link{
			{Text: "Metrics Explorer", URL: "https://console.cloud.google.com/monitoring/metrics-explorer?project=gitlab-runway"},
			{Text: "Monitoring API", URL: "https://console.cloud.google.com/apis/api/monitoring.googleapis.com/metrics?project=gitlab-runway"},
		}},
		{name: "emulator", cfg: Config{EmulatorHost: "127.0.0.1:8085"}, want: []Link{{Text: "Emulator faults", URL: "http://127.0.0.1:8085/emulator/v1/faults"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if d := cmp.Diff(tt.want, tt.cfg.MetricsLinks("gitlab-runway")); d != "" {
				t.Errorf("links (-want +got):\n%s", d)
			}
		})
	}
}

// FuzzSchedulerJobLinks: any name gives no links or links that are URLs of the right host,
// whose query part names the job.
func FuzzSchedulerJobLinks(f *testing.F) {
	f.Add("projects/p/locations/us-east1/jobs/nightly", "")
	f.Add("projects/p?x=1/locations/a;b/jobs/\"q\"\n", "127.0.0.1:1")
	f.Add("projects//locations//jobs/", "")
	f.Fuzz(func(t *testing.T, name, host string) {
		for _, l := range (Config{EmulatorHost: host}).SchedulerJobLinks(name) {
			u, err := url.Parse(l.URL)
			if host == "" && (err != nil || u.Host != "console.cloud.google.com" || u.Query().Get("project") != strings.Split(name, "/")[1]) {
				t.Errorf("link %q of %q: %v", l.URL, name, err)
			}
			if host != "" && !strings.HasSuffix(l.URL, EmulatorSchedulerPath+name) {
				t.Errorf("emulator link %q of %q", l.URL, name)
			}
		}
	})
}
