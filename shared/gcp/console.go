package gcp

import (
	"fmt"
	"net/url"
	"strings"
)

// EmulatorSchedulerPath is where the emulator serves a Cloud Scheduler job as JSON, with its
// recent attempts: this path followed by the job's full name.
const EmulatorSchedulerPath = "/emulator/v1/scheduler/"

// Link is a labelled URL of a page about a resource.
type Link struct {
	Text string
	URL  string
}

// SchedulerJobLinks returns where a person looks at the Cloud Scheduler job name
// (projects/P/locations/L/jobs/J): on Google Cloud its Cloud Console page and a Cloud Logging
// query of its attempts (resource type cloud_scheduler_job); on the emulator, which has no
// Logging, its page there, which lists the recent attempts. A name of another shape has none.
func (c Config) SchedulerJobLinks(name string) []Link {
	parts := strings.Split(name, "/")
	if len(parts) != 6 || parts[0] != "projects" || parts[2] != "locations" || parts[4] != "jobs" {
		return nil
	}
	project, location, job := parts[1], parts[3], parts[5]
	if c.EmulatorHost != "" {
		return []Link{{Text: "Scheduler job", URL: "http://" + c.EmulatorHost + EmulatorSchedulerPath + name}}
	}
	query := fmt.Sprintf("resource.type=\"cloud_scheduler_job\"\nresource.labels.location=%q\nresource.labels.job_id=%q", location, job)
	p := "?project=" + url.QueryEscape(project)
	return []Link{
		{Text: "Scheduler job", URL: "https://console.cloud.google.com/cloudscheduler/jobs/edit/" + url.PathEscape(location) + "/" + url.PathEscape(job) + p},
		// The console reads ;query= as a matrix parameter: "=" and ";" inside it are escaped.
		{Text: "Scheduler logs", URL: "https://console.cloud.google.com/logs/query;query=" + strings.ReplaceAll(url.PathEscape(query), "=", "%3D") + p},
	}
}

// MetricsLinks returns where a person looks when the monitor cannot read project's Cloud Run
// job metrics: on Google Cloud, Metrics Explorer and the Cloud Monitoring API's quota and error
// page; on the emulator, its injected faults (the usual cause there).
func (c Config) MetricsLinks(project string) []Link {
	if c.EmulatorHost != "" {
		return []Link{{Text: "Emulator faults", URL: "http://" + c.EmulatorHost + "/emulator/v1/faults"}}
	}
	p := "?project=" + url.QueryEscape(project)
	return []Link{
		{Text: "Metrics Explorer", URL: "https://console.cloud.google.com/monitoring/metrics-explorer" + p},
		{Text: "Monitoring API", URL: "https://console.cloud.google.com/apis/api/monitoring.googleapis.com/metrics" + p},
	}
}
