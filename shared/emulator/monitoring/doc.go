// Package monitoring emulates the part of Cloud Monitoring v3 (google.monitoring.v3.MetricService)
// that Runway Jobs reads: the Cloud Run job metrics of the monitored resource cloud_run_job
// (labels project_id, location, job_name):
//
//   - run.googleapis.com/job/completed_execution_count: DELTA INT64, label result;
//   - run.googleapis.com/job/completed_task_attempt_count: DELTA INT64, labels result, attempt;
//   - run.googleapis.com/job/running_executions: GAUGE INT64.
//
// The emulator (package emulator, behind `runwayctl emulator`) registers a Service on its gRPC
// server and hands the Service's Store to the Cloud Run emulator, which records every execution
// start and completion and every task attempt into it. The monitor function then reads the
// metrics through the official client (cloud.google.com/go/monitoring/apiv3/v2), exactly as it
// reads Cloud Monitoring in production. Tests and benchmarks may also load points with
// CreateTimeSeries or by calling the Store directly.
//
// Served: ListTimeSeries, CreateTimeSeries, ListMetricDescriptors, GetMetricDescriptor,
// CreateMetricDescriptor, DeleteMetricDescriptor, ListMonitoredResourceDescriptors,
// GetMonitoredResourceDescriptor. CreateServiceTimeSeries is Unimplemented.
//
// Where the emulator differs from Cloud Monitoring (its fidelity limits):
//
//   - Only cloud_run_job and the three metrics above exist. running_task_attempts and every other
//     metric are absent; user-defined descriptors can be created, listed and deleted but hold no
//     points. ListTimeSeries on an unknown metric type returns NotFound (the real code for this
//     is unverified).
//   - Counts are kept in one-minute buckets: a DELTA point covers [minute, minute+1m) and holds
//     the completions in it. running_executions is derived from the recorded starts and
//     completions: a point at the end of each minute holding the most executions running during
//     that minute, emitted while any run and once more (zero) after the last one ends. How often
//     and when the real gauge is sampled is unverified.
//   - A point becomes visible when clock.Now() >= its end + Options.IngestDelay: one fixed lag.
//     Real ingestion lag varies and is usually a few minutes (about three for Cloud Run).
//   - CreateTimeSeries accepts points for the three metrics, which the real service refuses
//     (only Cloud Run writes run.googleapis.com metrics). A DELTA point is added into the minute
//     bucket holding its end (end exclusive), losing its own interval; repeated writes add up.
//     The real rules that points be newer than the last one, no more than 25 hours old and no
//     more than 5 minutes ahead are not enforced. A request is validated as a whole and written
//     all or nothing (the real service may write part of it).
//   - Filters: comparisons (= or !=) joined by AND, on metric.type, resource.type, project,
//     resource.label(s).NAME and metric.label(s).NAME, against a quoted string or starts_with,
//     ends_with, has_substring, one_of or monitoring.regex.full_match. OR, NOT, parentheses and
//     the ":" operator are refused with InvalidArgument naming the position (1-based byte
//     offset). A label the metric or resource does not have is refused too, where the real
//     service might return nothing.
//   - Aligners: ALIGN_NONE, ALIGN_SUM, ALIGN_DELTA, ALIGN_MIN, ALIGN_MAX, ALIGN_MEAN, ALIGN_COUNT;
//     reducers: REDUCE_NONE, REDUCE_SUM, REDUCE_MIN, REDUCE_MAX, REDUCE_MEAN, REDUCE_COUNT. Others,
//     and secondary_aggregation, are Unimplemented. ALIGN_DELTA is computed as ALIGN_SUM: the real
//     one interpolates periods with no data, the emulator returns no point for them (monitors
//     should use ALIGN_SUM anyway).
//   - Alignment periods end at interval.end_time, end_time-period, ... while they end after
//     start_time; each one sums the points whose end is in (period end - period, period end],
//     even before start_time. Periods without points yield no point and series without points
//     are omitted, so a job with no completions has no series at all. Which part of a period
//     longer than the interval the real service reads is unverified.
//   - Raw points are selected by their end time in (start_time, end_time] (the instant end_time
//     when both are equal) and returned newest first, as the real service does.
//   - Series are returned sorted by their labels (the real order is unspecified). Reduced series
//     carry only the labels named in group_by_fields, as the API reference says ("fields not
//     specified in groupByFields are aggregated away"); whether the real service keeps project_id
//     anyway is unverified, so code should not rely on it.
//   - Paging: page_size counts points (view FULL; a series may be split across pages) or series
//     (view HEADERS), at most 100,000. The first page computes the whole result and later pages
//     read that snapshot, so pages are consistent; a token outlives at most 32 newer listings
//     with pages left and dies when its listing is read to the end. Reusing a token with a
//     different request is InvalidArgument.
//   - ListTimeSeries writes its series already encoded, as unknown fields of the response (see
//     encode.go): the response is complete on the wire, so call the Service through gRPC, as
//     the official client does, rather than in process.
//   - No data retention limit (the real one is six weeks), quotas, metrics scopes, organizations
//     or folders; order_by must be empty, as in the real service.
//   - ListMetricDescriptors active_only counts a metric as active if it has a point that ended in
//     the last 25 hours. Descriptor metadata reports the configured IngestDelay.
package monitoring
