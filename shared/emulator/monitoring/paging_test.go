package monitoring

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"cloud.google.com/go/monitoring/apiv3/v2/monitoringpb"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/api/iterator"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// TestPaging reads results page by page with the official client and checks they add up
// to the unpaged result, even when more is recorded between pages.
func TestPaging(t *testing.T) {
	ctx := context.Background()
	raw := &monitoringpb.ListTimeSeriesRequest{Name: "projects/proj", Filter: metricFilter(CompletedExecutionCount), Interval: interval("10:00", "11:00")}
	monitor := proto.CloneOf(raw)
	monitor.Aggregation = monitorAggregation(time.Hour)
	headers := proto.CloneOf(raw)
	headers.View = monitoringpb.ListTimeSeriesRequest_HEADERS

	tests := []struct {
		name      string
		req       *monitoringpb.ListTimeSeriesRequest
		pageSize  int
		wantPages int
	}{
		{name: "aggregated, 7 per page", req: monitor, pageSize: 7, wantPages: 8},        // 50 series of 1 point
		{name: "raw points split across pages", req: raw, pageSize: 4, wantPages: 25},    // 99 points
		{name: "raw, one point per page", req: raw, pageSize: 1, wantPages: 99},          //
		{name: "headers count series", req: headers, pageSize: 10, wantPages: 5},         // 50 series
		{name: "default page size is one page", req: monitor, pageSize: 0, wantPages: 1}, //
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, 0)
			for i := range 50 {
				job := fmt.Sprintf("job-%02d", i)
				for j := range i%3 + 1 { // one to three completions, in different minutes: 99 points
					e.store.ExecutionCompleted("proj", "europe-west1", job, "succeeded", at("10:00").Add(time.Duration(j*10+i%7)*time.Minute))
				}
			}
			e.clock.Set(at("11:00"))
			want, err := e.list(ctx, tt.req)
			if err != nil {
				t.Fatal(err)
			}
			// Every RPC the iterator makes replaces it.Response: count them and check their size.
			it := e.client.ListTimeSeries(ctx, tt.req)
			it.PageInfo().MaxSize = tt.pageSize
			var all []*monitoringpb.TimeSeries
			var last any
			pages := 0
			for {
				ts, err := it.Next()
				if errors.Is(err, iterator.Done) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				all = append(all, ts)
				if it.Response == last {
					continue
				}
				last = it.Response
				pages++
				n := 0
				for _, ts := range it.Response.(*monitoringpb.ListTimeSeriesResponse).GetTimeSeries() {
					n += max(len(ts.GetPoints()), 1)
				}
				if tt.pageSize > 0 && n > tt.pageSize {
					t.Errorf("page %d holds %d points or series, more than %d", pages, n, tt.pageSize)
				}
				if pages == 1 {
					// Not seen by the pages that follow: they read the first page's snapshot.
					e.store.ExecutionCompleted("proj", "europe-west1", "job-00", "failed", at("10:30"))
					e.store.ExecutionCompleted("proj", "europe-west1", "aaa", "failed", at("10:30"))
				}
			}
			if pages != tt.wantPages {
				t.Errorf("read %d pages, want %d", pages, tt.wantPages)
			}
			if diff := cmp.Diff(summarize(want), summarize(merge(all))); diff != "" {
				t.Errorf("paged result differs from the unpaged one (-want +got):\n%s", diff)
			}
		})
	}
}

// merge joins the consecutive parts of a series split across pages.
func merge(all []*monitoringpb.TimeSeries) []*monitoringpb.TimeSeries {
	var out []*monitoringpb.TimeSeries
	for _, ts := range all {
		if l := len(out); l > 0 && proto.Equal(out[l-1].GetMetric(), ts.GetMetric()) && proto.Equal(out[l-1].GetResource(), ts.GetResource()) {
			out[l-1].Points = append(out[l-1].Points, ts.GetPoints()...)
			continue
		}
		out = append(out, ts)
	}
	return out
}

// TestPageTokenMisuse sends page tokens that do not belong to the request.
func TestPageTokenMisuse(t *testing.T) {
	e := newEnv(t, 0)
	for i := range 5 {
		e.store.ExecutionCompleted("proj", "l", fmt.Sprintf("job-%d", i), "succeeded", at("10:10"))
	}
	e.clock.Set(at("11:00"))
	ctx := context.Background()
	req := &monitoringpb.ListTimeSeriesRequest{Name: "projects/proj", Filter: metricFilter(CompletedExecutionCount), Interval: interval("10:00", "11:00"), PageSize: 2}
	first, err := e.svc.ListTimeSeries(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if first.GetNextPageToken() == "" {
		t.Fatal("no next page token")
	}
	tests := []struct {
		name   string
		mutate func(r *monitoringpb.ListTimeSeriesRequest)
		want   codes.Code
	}{
		{name: "same request", mutate: func(r *monitoringpb.ListTimeSeriesRequest) {}, want: codes.OK},
		{name: "other page size", mutate: func(r *monitoringpb.ListTimeSeriesRequest) { r.PageSize = 3 }, want: codes.OK},
		{name: "other filter", mutate: func(r *monitoringpb.ListTimeSeriesRequest) { r.Filter += ` AND resource.label.job_name = "job-1"` }, want: codes.InvalidArgument},
		{name: "garbage", mutate: func(r *monitoringpb.ListTimeSeriesRequest) { r.PageToken = "xyz" }, want: codes.InvalidArgument},
		{name: "unknown listing", mutate: func(r *monitoringpb.ListTimeSeriesRequest) { r.PageToken = "999.0.0" }, want: codes.InvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := proto.CloneOf(req)
			r.PageToken = first.GetNextPageToken()
			tt.mutate(r)
			it := e.client.ListTimeSeries(ctx, r)
			_, err := it.Next()
			if got := status.Code(err); got != tt.want {
				t.Errorf("code = %v (%v), want %v", got, err, tt.want)
			}
		})
	}
}
