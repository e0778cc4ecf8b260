package monitoring

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/monitoring/apiv3/v2/monitoringpb"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"runwayjobs.dev/shared/emulator/clock"
	"runwayjobs.dev/shared/gcp"
)

// day is the date every test time falls on; at("10:02:10") is a time of that day in UTC.
var day = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)

func at(hms string) time.Time {
	t, err := time.Parse("15:04:05", hms)
	if err != nil {
		t, err = time.Parse("15:04", hms)
	}
	if err != nil {
		panic(err)
	}
	return day.Add(time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute + time.Duration(t.Second())*time.Second)
}

// env is a Service on a real gRPC server, read through the official client.
type env struct {
	clock  *clock.ManualClock
	store  *Store
	svc    *Service
	client metricClient
}

func newEnv(tb testing.TB, delay time.Duration) *env {
	tb.Helper()
	c := clock.NewManual(at("10:00"))
	store := NewStore(c)
	svc := New(Options{Clock: c, Store: store, IngestDelay: delay})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	g := grpc.NewServer()
	svc.Register(g)
	go g.Serve(lis)
	tb.Cleanup(g.Stop)
	client := newClient(tb, lis.Addr().String())
	tb.Cleanup(func() { client.Close() })
	return &env{clock: c, store: store, svc: svc, client: client}
}

// gcpOptions are the gRPC client options for the server at addr, as production builds them.
func gcpOptions(addr string) []option.ClientOption {
	return gcp.Config{EmulatorHost: addr}.Options()
}

// list reads every page of req.
func (e *env) list(ctx context.Context, req *monitoringpb.ListTimeSeriesRequest) ([]*monitoringpb.TimeSeries, error) {
	var out []*monitoringpb.TimeSeries
	it := e.client.ListTimeSeries(ctx, req)
	for {
		ts, err := it.Next()
		if errors.Is(err, iterator.Done) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		out = append(out, ts)
	}
}

// record feeds executions into the store as the Cloud Run emulator does.
type execution struct {
	project, location, job string
	start, end             string // times of day; end "" means still running
	result                 string
}

func (e *env) record(execs ...execution) {
	for _, x := range execs {
		if x.project == "" {
			x.project = "proj"
		}
		e.store.ExecutionStarted(x.project, x.location, x.job, at(x.start))
		if x.end != "" {
			e.store.ExecutionCompleted(x.project, x.location, x.job, x.result, at(x.end))
		}
	}
}

// fixture is the data most tests read: project proj, with one job of the same name in two
// locations, a job that only ran once, a job still running and a job of another project.
var fixture = []execution{
	{location: "europe-west1", job: "backup", start: "10:00:05", end: "10:02:10", result: "succeeded"},
	{location: "europe-west1", job: "backup", start: "10:30:00", end: "10:31:30", result: "failed"},
	{location: "europe-west1", job: "backup", start: "10:45:00", end: "10:46:20", result: "succeeded"},
	{location: "europe-west1", job: "report", start: "10:10:00", end: "10:10:40", result: "succeeded"},
	{location: "europe-west1", job: "idle", start: "10:50:00"},
	{location: "us-central1", job: "backup", start: "10:20:00", end: "10:21:00", result: "succeeded"},
	{project: "other", location: "europe-west1", job: "backup", start: "10:04:00", end: "10:05:00", result: "succeeded"},
}

// got is a TimeSeries in a form that diffs well.
type got struct {
	Resource map[string]string
	Metric   map[string]string
	Kind     string
	Points   []string // "10:00-10:01 3", or "10:04 0" for an instant
}

func summarize(all []*monitoringpb.TimeSeries) []got {
	var out []got
	for _, ts := range all {
		g := got{
			Resource: ts.GetResource().GetLabels(),
			Metric:   ts.GetMetric().GetLabels(),
			Kind:     ts.GetMetricKind().String() + " " + ts.GetValueType().String(),
		}
		for _, p := range ts.GetPoints() {
			g.Points = append(g.Points, fmtPoint(p))
		}
		out = append(out, g)
	}
	return out
}

func fmtPoint(p *monitoringpb.Point) string {
	clk := func(t *timestamppb.Timestamp) string {
		if t.AsTime().Second() != 0 {
			return t.AsTime().Format("15:04:05")
		}
		return t.AsTime().Format("15:04")
	}
	var v string
	switch x := p.GetValue().GetValue().(type) {
	case *monitoringpb.TypedValue_Int64Value:
		v = fmt.Sprint(x.Int64Value)
	case *monitoringpb.TypedValue_DoubleValue:
		v = fmt.Sprintf("%.2f", x.DoubleValue)
	}
	iv := p.GetInterval()
	if iv.GetStartTime() == nil || iv.GetStartTime().AsTime().Equal(iv.GetEndTime().AsTime()) {
		return clk(iv.GetEndTime()) + " " + v
	}
	return clk(iv.GetStartTime()) + "-" + clk(iv.GetEndTime()) + " " + v
}

func int64Value(v int64) *monitoringpb.TypedValue {
	return &monitoringpb.TypedValue{Value: &monitoringpb.TypedValue_Int64Value{Int64Value: v}}
}

// res and lbl build label maps: res("europe-west1", "backup") is the resource labels of a job of
// proj.
func res(location, job string) map[string]string {
	return map[string]string{"project_id": "proj", "location": location, "job_name": job}
}

func lbl(kv ...string) map[string]string {
	if len(kv) == 0 {
		return nil
	}
	m := map[string]string{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// interval returns (from, to] as times of day.
func interval(from, to string) *monitoringpb.TimeInterval {
	return &monitoringpb.TimeInterval{StartTime: timestamppb.New(at(from)), EndTime: timestamppb.New(at(to))}
}

func metricFilter(typ string, more ...string) string {
	return strings.Join(slices.Insert(more, 0, fmt.Sprintf("metric.type = %q", typ)), " AND ")
}

// monitorAggregation is what the monitor asks for: one sum per job, location and result over
// the window.
func monitorAggregation(window time.Duration) *monitoringpb.Aggregation {
	return &monitoringpb.Aggregation{
		AlignmentPeriod:    durationpb.New(window),
		PerSeriesAligner:   monitoringpb.Aggregation_ALIGN_SUM,
		CrossSeriesReducer: monitoringpb.Aggregation_REDUCE_SUM,
		GroupByFields:      []string{"resource.label.job_name", "resource.label.location", "metric.label.result"},
	}
}
