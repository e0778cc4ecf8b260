package rest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	_ "cloud.google.com/go/longrunning/autogen/longrunningpb" // the rules' selectors
	"cloud.google.com/go/monitoring/apiv3/v2/monitoringpb"
	"cloud.google.com/go/scheduler/apiv1/schedulerpb"
	"google.golang.org/api/googleapi"
	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"runwayjobs.dev/shared/emulator/clock"
	"runwayjobs.dev/shared/emulator/monitoring"
	"runwayjobs.dev/shared/emulator/scheduler"
)

// seen is what the gRPC server's interceptor saw of the last call.
type seen struct {
	mu       sync.Mutex
	method   string
	req      proto.Message
	md       metadata.MD
	deadline time.Duration // left when the call arrived; 0 without a deadline
}

// server is the real Cloud Scheduler and Monitoring emulators on a gRPC server, behind the
// transcoder on an HTTP server. A call carrying the header x-goog-test-fail fails in the
// interceptor with an ErrorInfo detail.
func server(t *testing.T, opts Options) (string, *seen) {
	t.Helper()
	s := &seen{}
	g := grpc.NewServer(grpc.UnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		md, _ := metadata.FromIncomingContext(ctx)
		s.mu.Lock()
		s.method, s.req, s.md, s.deadline = info.FullMethod, proto.Clone(req.(proto.Message)), md, 0
		if d, ok := ctx.Deadline(); ok {
			s.deadline = time.Until(d)
		}
		s.mu.Unlock()
		if len(md.Get("x-goog-test-fail")) > 0 {
			st, _ := status.New(codes.FailedPrecondition, "refused on purpose").WithDetails(&errdetails.ErrorInfo{Reason: "TEST", Domain: "example.com"})
			return nil, st.Err()
		}
		return handler(ctx, req)
	}))
	c := clock.NewManual(time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC))
	sched := scheduler.New(scheduler.Options{Clock: c})
	sched.Register(g)
	monitoring.New(monitoring.Options{Clock: c, Store: monitoring.NewStore(c)}).Register(g)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = g.Serve(lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	opts.Conn = conn
	opts.Services = append(opts.Services, schedulerpb.CloudScheduler_ServiceDesc.ServiceName, monitoringpb.MetricService_ServiceDesc.ServiceName)
	h, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(h)
	t.Cleanup(func() {
		hs.Close()
		conn.Close()
		g.Stop()
		_ = sched.Close()
	})
	return hs.URL, s
}

func (s *seen) last() (string, proto.Message, metadata.MD, time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.method, s.req, s.md, s.deadline
}

type call struct {
	method, path, body string
	header             map[string]string
}

func do(t *testing.T, base string, c call) (int, string) {
	t.Helper()
	req, err := http.NewRequest(c.method, base+c.path, strings.NewReader(c.body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range c.header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var compact bytes.Buffer
	if json.Compact(&compact, b) == nil {
		b = compact.Bytes()
	}
	return resp.StatusCode, string(b)
}

const parent = "projects/p/locations/europe-west1"

// TestBinding checks how paths, bodies and query parameters become the request the service
// receives.
func TestBinding(t *testing.T) {
	// GetJob as a service config may rebind it: its own binding, and one more answering only
	// the job's http_target.
	base, s := server(t, Options{MaxBody: 4096, Rules: []*annotations.HttpRule{{
		Selector: "google.cloud.scheduler.v1.CloudScheduler.GetJob",
		Pattern:  &annotations.HttpRule_Get{Get: "/v1/{name=projects/*/locations/*/jobs/*}"},
		AdditionalBindings: []*annotations.HttpRule{{
			Pattern: &annotations.HttpRule_Get{Get: "/test/{name=projects/*/locations/*/jobs/*}/target"}, ResponseBody: "http_target",
		}},
	}}})
	job := `{"name":"` + parent + `/jobs/a","schedule":"0 * * * *","timeZone":"UTC","httpTarget":{"uri":"http://example.invalid/","httpMethod":"POST"}}`
	if code, body := do(t, base, call{method: "POST", path: "/v1/" + parent + "/jobs", body: job}); code != 200 {
		t.Fatalf("CreateJob = %d %s", code, body)
	}
	tests := []struct {
		name       string
		call       call
		wantCode   int
		wantMethod string
		wantReq    proto.Message // what the service received, when the call reached it
		wantBody   string        // in the answer
	}{
		{
			name:       "path variable",
			call:       call{method: "GET", path: "/v1/" + parent + "/jobs/a"},
			wantCode:   200,
			wantMethod: "/google.cloud.scheduler.v1.CloudScheduler/GetJob",
			wantReq:    &schedulerpb.GetJobRequest{Name: parent + "/jobs/a"},
			wantBody:   `"timeZone":"UTC"`,
		},
		{
			name:       "additional binding with a response body",
			call:       call{method: "GET", path: "/test/" + parent + "/jobs/a/target"},
			wantCode:   200,
			wantMethod: "/google.cloud.scheduler.v1.CloudScheduler/GetJob",
			wantReq:    &schedulerpb.GetJobRequest{Name: parent + "/jobs/a"},
			wantBody:   `{"uri":"http://example.invalid/","httpMethod":"POST"}`,
		},
		{
			name:     "enums as numbers on request",
			call:     call{method: "GET", path: "/v1/" + parent + "/jobs/a?$alt=json;enum-encoding=int"},
			wantCode: 200,
			wantBody: `"httpMethod":1`,
		},
		{
			name:     "enums as names by default",
			call:     call{method: "GET", path: "/v1/" + parent + "/jobs/a?alt=json&prettyPrint=false"},
			wantCode: 200,
			wantBody: `"httpMethod":"POST"`,
		},
		{
			name:       "query scalars",
			call:       call{method: "GET", path: "/v1/" + parent + "/jobs?pageSize=5&page_token="},
			wantCode:   200,
			wantMethod: "/google.cloud.scheduler.v1.CloudScheduler/ListJobs",
			wantReq:    &schedulerpb.ListJobsRequest{Parent: parent, PageSize: 5},
		},
		{
			name: "body field, nested path variable and query mask",
			call: call{method: "PATCH", path: "/v1/" + parent + "/jobs/a?updateMask=description,retryConfig.retryCount",
				body: `{"description":"d","retryConfig":{"retryCount":2}}`},
			wantCode:   200,
			wantMethod: "/google.cloud.scheduler.v1.CloudScheduler/UpdateJob",
			wantBody:   `"description":"d"`,
		},
		{
			name: "nested, repeated, enum, timestamp and duration query values",
			call: call{method: "GET", path: "/v3/projects/p/timeSeries?filter=metric.type%3D%22run.googleapis.com%2Fjob%2Fcompleted_execution_count%22" +
				"&interval.startTime=2026-03-02T09:00:00Z&interval.endTime=2026-03-02T10:00:00Z&aggregation.alignmentPeriod=3600s" +
				"&aggregation.perSeriesAligner=ALIGN_SUM&aggregation.crossSeriesReducer=4&aggregation.groupByFields=resource.label.job_name&aggregation.groupByFields=metric.label.result&view=HEADERS"},
			wantCode:   200,
			wantMethod: "/google.monitoring.v3.MetricService/ListTimeSeries",
			wantReq: &monitoringpb.ListTimeSeriesRequest{
				Name:     "projects/p",
				Filter:   `metric.type="run.googleapis.com/job/completed_execution_count"`,
				Interval: &monitoringpb.TimeInterval{StartTime: ts(t, "2026-03-02T09:00:00Z"), EndTime: ts(t, "2026-03-02T10:00:00Z")},
				Aggregation: &monitoringpb.Aggregation{AlignmentPeriod: dur(3600), PerSeriesAligner: monitoringpb.Aggregation_ALIGN_SUM,
					CrossSeriesReducer: monitoringpb.Aggregation_REDUCE_SUM, GroupByFields: []string{"resource.label.job_name", "metric.label.result"}},
				View: monitoringpb.ListTimeSeriesRequest_HEADERS,
			},
		},
		{name: "name in the body differs from the path", call: call{method: "PATCH", path: "/v1/" + parent + "/jobs/a", body: `{"name":"` + parent + `/jobs/b"}`}, wantCode: 400, wantBody: `"status":"INVALID_ARGUMENT"`},
		{name: "unknown body field", call: call{method: "POST", path: "/v1/" + parent + "/jobs/a:pause", body: `{"nope":1}`}, wantCode: 400, wantBody: `"status":"INVALID_ARGUMENT"`},
		{name: "a bad value is not echoed", call: call{method: "PATCH", path: "/v1/" + parent + "/jobs/a", body: `{"description":"s3cret" "x"}`}, wantCode: 400, wantBody: "unexpected token (not shown)"},
		{name: "a bad typed value is not echoed", call: call{method: "PATCH", path: "/v1/" + parent + "/jobs/a", body: `{"retryConfig":{"retryCount":"s3cret"}}`}, wantCode: 400, wantBody: "retryCount (value not shown)"},
		{name: "malformed body", call: call{method: "POST", path: "/v1/" + parent + "/jobs/a:pause", body: `{`}, wantCode: 400, wantBody: "Invalid JSON payload"},
		{name: "body too large", call: call{method: "POST", path: "/v1/" + parent + "/jobs", body: `{"description":"` + strings.Repeat("x", 5000) + `"}`}, wantCode: 400, wantBody: "larger than 4096 bytes"},
		{name: "unknown query parameter", call: call{method: "GET", path: "/v1/" + parent + "/jobs?nope=1"}, wantCode: 400, wantBody: "Cannot bind query parameter 'nope'"},
		{name: "query on a body-star method", call: call{method: "POST", path: "/v1/" + parent + "/jobs/a:pause?name=x"}, wantCode: 400, wantBody: "Cannot bind query parameter 'name'"},
		{name: "query sets a path field", call: call{method: "GET", path: "/v1/" + parent + "/jobs/a?name=x"}, wantCode: 400, wantBody: "bound by the path"},
		{name: "bad query integer", call: call{method: "GET", path: "/v1/" + parent + "/jobs?pageSize=many"}, wantCode: 400, wantBody: "Invalid value at 'pageSize'"},
		{name: "bad query enum", call: call{method: "GET", path: "/v3/projects/p/timeSeries?view=ALL"}, wantCode: 400, wantBody: "Invalid value at 'view'"},
		{name: "singular field twice", call: call{method: "GET", path: "/v1/" + parent + "/jobs?pageSize=1&pageSize=2"}, wantCode: 400, wantBody: "2 values for a singular field"},
		{name: "map in the query", call: call{method: "PATCH", path: "/v1/" + parent + "/jobs/a?job.labels=x", body: `{}`}, wantCode: 400, wantBody: "Cannot bind query parameter"},
		{name: "a collection wins over ** matching nothing", call: call{method: "GET", path: "/v3/projects/p/metricDescriptors"}, wantCode: 200, wantMethod: "/google.monitoring.v3.MetricService/ListMetricDescriptors"},
		{name: "no route", call: call{method: "GET", path: "/v1/jobs/a"}, wantCode: 404, wantBody: `"status":"NOT_FOUND"`},
		{name: "no route for the method", call: call{method: "PUT", path: "/v1/" + parent + "/jobs/a"}, wantCode: 404, wantBody: `"code":404`},
		{name: "service error", call: call{method: "GET", path: "/v1/" + parent + "/jobs/absent"}, wantCode: 404, wantBody: `"status":"NOT_FOUND"`},
		{name: "Empty answers {}", call: call{method: "DELETE", path: "/v3/projects/p/metricDescriptors/custom.googleapis.com/absent"}, wantCode: 404, wantBody: `"status":"NOT_FOUND"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := do(t, base, tt.call)
			if code != tt.wantCode || !strings.Contains(body, tt.wantBody) {
				t.Fatalf("%s %s = %d %s; want %d with %s", tt.call.method, tt.call.path, code, body, tt.wantCode, tt.wantBody)
			}
			if strings.Contains(body, "s3cret") {
				t.Errorf("the answer echoes the body's value: %s", body)
			}
			method, req, _, _ := s.last()
			if tt.wantMethod != "" && method != tt.wantMethod {
				t.Errorf("method %s, want %s", method, tt.wantMethod)
			}
			if tt.wantReq != nil && !proto.Equal(req, tt.wantReq) {
				t.Errorf("request\n%v\nwant\n%v", req, tt.wantReq)
			}
		})
	}
	// The PATCH reached the service with its mask, the name bound inside the body field.
	if code, body := do(t, base, call{method: "PATCH", path: "/v1/" + parent + "/jobs/a?updateMask=description", body: `{"description":"e"}`}); code != 200 {
		t.Fatalf("UpdateJob = %d %s", code, body)
	}
	_, req, _, _ := s.last()
	u := req.(*schedulerpb.UpdateJobRequest)
	if u.GetJob().GetName() != parent+"/jobs/a" || u.GetJob().GetDescription() != "e" || strings.Join(u.GetUpdateMask().GetPaths(), ",") != "description" {
		t.Errorf("UpdateJob request %v", u)
	}
}

func ts(t *testing.T, s string) *timestamppb.Timestamp {
	t.Helper()
	at, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return timestamppb.New(at)
}

func dur(secs int64) *durationpb.Duration { return &durationpb.Duration{Seconds: secs} }

func TestErrorShapeAndHeaders(t *testing.T) {
	base, s := server(t, Options{})
	code, body := do(t, base, call{method: "GET", path: "/v1/" + parent + "/jobs", header: map[string]string{
		"x-goog-test-fail": "1", "X-Goog-Request-Params": "parent=" + parent, "X-Server-Timeout": "2.5", "Authorization": "Bearer secret",
	}})
	if code != 400 {
		t.Fatalf("code %d %s, want 400", code, body)
	}
	var got struct {
		Error struct {
			Code    int              `json:"code"`
			Message string           `json:"message"`
			Status  string           `json:"status"`
			Details []map[string]any `json:"details"`
		} `json:"error"`
	}
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatalf("error body %s: %v", body, err)
	}
	if got.Error.Code != 400 || got.Error.Status != "FAILED_PRECONDITION" || got.Error.Message != "refused on purpose" ||
		len(got.Error.Details) != 1 || got.Error.Details[0]["@type"] != "type.googleapis.com/google.rpc.ErrorInfo" || got.Error.Details[0]["reason"] != "TEST" {
		t.Errorf("error body %s", body)
	}
	_, _, md, deadline := s.last()
	if p := md.Get("x-goog-request-params"); len(p) != 1 || p[0] != "parent="+parent {
		t.Errorf("x-goog-request-params %v", p)
	}
	if a := md.Get("authorization"); len(a) != 0 {
		t.Errorf("authorization forwarded: %v", a)
	}
	if deadline <= 2*time.Second || deadline > 2500*time.Millisecond {
		t.Errorf("deadline %v, want about 2.5s from X-Server-Timeout", deadline)
	}
	for _, bad := range []string{"0", "-1", "soon", "86400"} {
		if code, body := do(t, base, call{method: "GET", path: "/v1/" + parent + "/jobs", header: map[string]string{"X-Server-Timeout": bad}}); code != 400 {
			t.Errorf("X-Server-Timeout %s: %d %s, want 400", bad, code, body)
		}
	}
}

func TestStatusOfAndHTTPStatus(t *testing.T) {
	for c := codes.OK; c <= codes.Unauthenticated; c++ {
		rec := httptest.NewRecorder()
		WriteError(rec, status.Error(c, "m"))
		if rec.Code != HTTPStatus(c) {
			t.Errorf("%v: HTTP %d, want %d", c, rec.Code, HTTPStatus(c))
		}
	}
	for c, want := range map[codes.Code]int{codes.NotFound: 404, codes.FailedPrecondition: 400, codes.AlreadyExists: 409, codes.Canceled: 499, codes.DataLoss: 500, codes.Unavailable: 503, codes.DeadlineExceeded: 504} {
		if got := HTTPStatus(c); got != want {
			t.Errorf("HTTPStatus(%v) = %d, want %d", c, got, want)
		}
	}
}

func TestNewRefusesBadRules(t *testing.T) {
	tests := []struct {
		name string
		rule *annotations.HttpRule
	}{
		{name: "unknown method", rule: &annotations.HttpRule{Selector: "google.longrunning.Operations.Nope", Pattern: &annotations.HttpRule_Get{Get: "/v1/{name=x/*}"}}},
		{name: "unknown field", rule: &annotations.HttpRule{Selector: "google.longrunning.Operations.GetOperation", Pattern: &annotations.HttpRule_Get{Get: "/v1/{nope=x/*}"}}},
		{name: "bad template", rule: &annotations.HttpRule{Selector: "google.longrunning.Operations.GetOperation", Pattern: &annotations.HttpRule_Get{Get: "v1/{name}"}}},
		{name: "unknown body", rule: &annotations.HttpRule{Selector: "google.longrunning.Operations.GetOperation", Pattern: &annotations.HttpRule_Post{Post: "/v1/{name}"}, Body: "nope"}},
		{name: "no pattern", rule: &annotations.HttpRule{Selector: "google.longrunning.Operations.GetOperation"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(Options{Rules: []*annotations.HttpRule{tt.rule}}); err == nil {
				t.Errorf("New accepted %v", tt.rule)
			}
		})
	}
	if _, err := New(Options{Services: []string{"google.cloud.run.v2.Nope"}}); err == nil {
		t.Error("New accepted an unknown service")
	}
}

// TestStatusOfReadsTheBody checks that StatusOf gives back, from what WriteError wrote, the
// exact code, the message and the details.
func TestStatusOfReadsTheBody(t *testing.T) {
	st, err := status.New(codes.FailedPrecondition, "no").WithDetails(&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: "f", Description: "d"}}})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	WriteError(rec, st.Err())
	got := StatusOf(fmt.Errorf("call: %w", &googleapi.Error{Code: rec.Code, Body: rec.Body.String()}))
	if got.Code() != codes.FailedPrecondition || got.Message() != "no" || len(got.Details()) != 1 {
		t.Fatalf("StatusOf = %v %q %v", got.Code(), got.Message(), got.Details())
	}
	if br, ok := got.Details()[0].(*errdetails.BadRequest); !ok || br.GetFieldViolations()[0].GetField() != "f" {
		t.Errorf("detail %v", got.Details()[0])
	}
	if c := StatusOf(&googleapi.Error{Code: 400, Body: "not json"}).Code(); c != codes.Unknown {
		t.Errorf("StatusOf a body that is not Google's shape = %v, want Unknown (status.Convert)", c)
	}
	if c := StatusOf(status.Error(codes.NotFound, "x")).Code(); c != codes.NotFound {
		t.Errorf("StatusOf a gRPC error = %v", c)
	}
}
