package monitoring

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http/httptest"
	"os"
	"strconv"
	"testing"

	gapic "cloud.google.com/go/monitoring/apiv3/v2"
	"cloud.google.com/go/monitoring/apiv3/v2/monitoringpb"
	"google.golang.org/api/iterator"
	mrest "google.golang.org/api/monitoring/v3"
	"google.golang.org/genproto/googleapis/api/metric"
	"google.golang.org/genproto/googleapis/api/monitoredres"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"runwayjobs.dev/shared/emulator/rest"
)

// transport is how the official client reaches the service in this run of the tests: "grpc"
// (cloud.google.com/go/monitoring/apiv3/v2) or "rest" (google.golang.org/api/monitoring/v3,
// the Go REST client of Cloud Monitoring, which the GAPIC one lacks). TestMain runs every
// test once with each, or with -transport's one.
var transport = "grpc"

var transportFlag = flag.String("transport", "", `run the tests over this transport only ("grpc" or "rest"); empty means both`)

func TestMain(m *testing.M) {
	flag.Parse()
	exit := 0
	for _, tr := range []string{"grpc", "rest"} {
		if *transportFlag != "" && *transportFlag != tr || tr == "rest" && flag.Lookup("test.fuzz").Value.String() != "" {
			continue
		}
		transport = tr
		fmt.Printf("=== transport %s\n", tr)
		if c := m.Run(); c != 0 {
			exit = c
		}
	}
	os.Exit(exit)
}

// badName is the code of a call on a malformed resource name: the service's InvalidArgument
// over gRPC; over REST no URL template matches the name, so the front end answers NotFound
// before any service sees the call, as Google's does.
func badName() codes.Code {
	if transport == "rest" {
		return codes.NotFound
	}
	return codes.InvalidArgument
}

// badNameMsg is what the error of a malformed name says: the service's msg over gRPC, the
// front end's over REST.
func badNameMsg(msg string) string {
	if transport == "rest" {
		return "was not found"
	}
	return msg
}

// metricClient is the MetricService calls the tests make, with the GAPIC client's
// signatures, over either transport.
type metricClient interface {
	ListTimeSeries(context.Context, *monitoringpb.ListTimeSeriesRequest) *pages[*monitoringpb.TimeSeries]
	CreateTimeSeries(context.Context, *monitoringpb.CreateTimeSeriesRequest) error
	CreateServiceTimeSeries(context.Context, *monitoringpb.CreateTimeSeriesRequest) error
	ListMetricDescriptors(context.Context, *monitoringpb.ListMetricDescriptorsRequest) *pages[*metric.MetricDescriptor]
	GetMetricDescriptor(context.Context, *monitoringpb.GetMetricDescriptorRequest) (*metric.MetricDescriptor, error)
	CreateMetricDescriptor(context.Context, *monitoringpb.CreateMetricDescriptorRequest) (*metric.MetricDescriptor, error)
	DeleteMetricDescriptor(context.Context, *monitoringpb.DeleteMetricDescriptorRequest) error
	ListMonitoredResourceDescriptors(context.Context, *monitoringpb.ListMonitoredResourceDescriptorsRequest) *pages[*monitoredres.MonitoredResourceDescriptor]
	GetMonitoredResourceDescriptor(context.Context, *monitoringpb.GetMonitoredResourceDescriptorRequest) (*monitoredres.MonitoredResourceDescriptor, error)
	Close() error
}

// newClient returns the official client of the transport for the gRPC server at addr (the
// REST one through the transcoder on an HTTP server of its own).
func newClient(tb testing.TB, addr string) metricClient {
	tb.Helper()
	tb.Logf("transport %s", transport)
	if transport != "rest" {
		c, err := gapic.NewMetricClient(context.Background(), gcpOptions(addr)...)
		if err != nil {
			tb.Fatal(err)
		}
		return grpcClient{c}
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	h, err := rest.New(rest.Options{Conn: conn, Services: []string{monitoringpb.MetricService_ServiceDesc.ServiceName}})
	if err != nil {
		tb.Fatal(err)
	}
	hs := httptest.NewServer(h)
	tb.Cleanup(hs.Close)
	svc, err := mrest.NewService(context.Background(), rest.ClientOptions(hs.Listener.Addr().String())...)
	if err != nil {
		tb.Fatal(err)
	}
	return restClient{svc}
}

// pages is the GAPIC iterators' shape (Next, PageInfo, Response) over a fetch function.
type pages[T any] struct {
	items    []T
	pageInfo *iterator.PageInfo
	nextFunc func() error
	// Response is the raw response of the current page (the proto response type).
	Response any
}

// newPages returns an iterator over fetch, which reads one page and returns its response.
func newPages[T any](size int32, token string, fetch func(size int, token string) ([]T, string, any, error)) *pages[T] {
	it := &pages[T]{}
	it.pageInfo, it.nextFunc = iterator.NewPageInfo(func(size int, token string) (string, error) {
		items, next, resp, err := fetch(size, token)
		if err != nil {
			return "", err
		}
		it.Response = resp
		it.items = append(it.items, items...)
		return next, nil
	}, func() int { return len(it.items) }, func() any { b := it.items; it.items = nil; return b })
	it.pageInfo.MaxSize = int(size)
	it.pageInfo.Token = token
	return it
}

// PageInfo supports pagination.
func (it *pages[T]) PageInfo() *iterator.PageInfo { return it.pageInfo }

// Next returns the next result, or iterator.Done.
func (it *pages[T]) Next() (T, error) {
	var item T
	if err := it.nextFunc(); err != nil {
		return item, err
	}
	item, it.items = it.items[0], it.items[1:]
	return item, nil
}

// grpcClient is the GAPIC client, its iterators' pages read through InternalFetch.
type grpcClient struct{ c *gapic.MetricClient }

func (g grpcClient) ListTimeSeries(ctx context.Context, req *monitoringpb.ListTimeSeriesRequest) *pages[*monitoringpb.TimeSeries] {
	it := g.c.ListTimeSeries(ctx, req)
	return newPages(req.GetPageSize(), req.GetPageToken(), func(size int, token string) ([]*monitoringpb.TimeSeries, string, any, error) {
		items, next, err := it.InternalFetch(size, token)
		return items, next, it.Response, err
	})
}

func (g grpcClient) ListMetricDescriptors(ctx context.Context, req *monitoringpb.ListMetricDescriptorsRequest) *pages[*metric.MetricDescriptor] {
	it := g.c.ListMetricDescriptors(ctx, req)
	return newPages(req.GetPageSize(), req.GetPageToken(), func(size int, token string) ([]*metric.MetricDescriptor, string, any, error) {
		items, next, err := it.InternalFetch(size, token)
		return items, next, it.Response, err
	})
}

func (g grpcClient) ListMonitoredResourceDescriptors(ctx context.Context, req *monitoringpb.ListMonitoredResourceDescriptorsRequest) *pages[*monitoredres.MonitoredResourceDescriptor] {
	it := g.c.ListMonitoredResourceDescriptors(ctx, req)
	return newPages(req.GetPageSize(), req.GetPageToken(), func(size int, token string) ([]*monitoredres.MonitoredResourceDescriptor, string, any, error) {
		items, next, err := it.InternalFetch(size, token)
		return items, next, it.Response, err
	})
}

func (g grpcClient) CreateTimeSeries(ctx context.Context, req *monitoringpb.CreateTimeSeriesRequest) error {
	return g.c.CreateTimeSeries(ctx, req)
}

func (g grpcClient) CreateServiceTimeSeries(ctx context.Context, req *monitoringpb.CreateTimeSeriesRequest) error {
	return g.c.CreateServiceTimeSeries(ctx, req)
}

func (g grpcClient) GetMetricDescriptor(ctx context.Context, req *monitoringpb.GetMetricDescriptorRequest) (*metric.MetricDescriptor, error) {
	return g.c.GetMetricDescriptor(ctx, req)
}

func (g grpcClient) CreateMetricDescriptor(ctx context.Context, req *monitoringpb.CreateMetricDescriptorRequest) (*metric.MetricDescriptor, error) {
	return g.c.CreateMetricDescriptor(ctx, req)
}

func (g grpcClient) DeleteMetricDescriptor(ctx context.Context, req *monitoringpb.DeleteMetricDescriptorRequest) error {
	return g.c.DeleteMetricDescriptor(ctx, req)
}

func (g grpcClient) GetMonitoredResourceDescriptor(ctx context.Context, req *monitoringpb.GetMonitoredResourceDescriptorRequest) (*monitoredres.MonitoredResourceDescriptor, error) {
	return g.c.GetMonitoredResourceDescriptor(ctx, req)
}

func (g grpcClient) Close() error { return g.c.Close() }

// restClient is google.golang.org/api/monitoring/v3. Messages cross between its structs and
// the protos as JSON (both are the REST JSON form); its errors become the gRPC status their
// JSON body names.
type restClient struct{ s *mrest.Service }

// convert moves a value between the REST structs and the protos through JSON.
func convert(from, to any) error {
	var b []byte
	var err error
	if m, ok := from.(proto.Message); ok {
		b, err = protojson.Marshal(m)
	} else {
		b, err = json.Marshal(from)
	}
	if err != nil {
		return fmt.Errorf("convert %T: %w", from, err)
	}
	if m, ok := to.(proto.Message); ok {
		err = protojson.Unmarshal(b, m)
	} else {
		err = json.Unmarshal(b, to)
	}
	if err != nil {
		return fmt.Errorf("convert %T to %T: %w", from, to, err)
	}
	return nil
}

// restErr turns a REST error into the status its body names (nil stays nil).
func restErr(err error) error {
	if err == nil {
		return nil
	}
	return rest.StatusOf(err).Err()
}

// durationText is a Duration as the REST query writes it ("60s").
func durationText(d *durationpb.Duration) string {
	b, _ := protojson.Marshal(d)
	s, _ := strconv.Unquote(string(b))
	return s
}

func (r restClient) ListTimeSeries(ctx context.Context, req *monitoringpb.ListTimeSeriesRequest) *pages[*monitoringpb.TimeSeries] {
	return newPages(req.GetPageSize(), req.GetPageToken(), func(size int, token string) ([]*monitoringpb.TimeSeries, string, any, error) {
		call := r.s.Projects.TimeSeries.List(req.GetName()).Context(ctx).Filter(req.GetFilter()).OrderBy(req.GetOrderBy())
		if iv := req.GetInterval(); iv != nil {
			if iv.StartTime != nil {
				call.IntervalStartTime(iv.StartTime.AsTime().Format("2006-01-02T15:04:05.999999999Z07:00"))
			}
			if iv.EndTime != nil {
				call.IntervalEndTime(iv.EndTime.AsTime().Format("2006-01-02T15:04:05.999999999Z07:00"))
			}
		}
		if a := req.GetAggregation(); a != nil {
			call.AggregationGroupByFields(a.GroupByFields...)
			if a.AlignmentPeriod != nil {
				call.AggregationAlignmentPeriod(durationText(a.AlignmentPeriod))
			}
			if a.PerSeriesAligner != 0 {
				call.AggregationPerSeriesAligner(a.PerSeriesAligner.String())
			}
			if a.CrossSeriesReducer != 0 {
				call.AggregationCrossSeriesReducer(a.CrossSeriesReducer.String())
			}
		}
		if a := req.GetSecondaryAggregation(); a != nil {
			call.SecondaryAggregationGroupByFields(a.GroupByFields...)
			if a.AlignmentPeriod != nil {
				call.SecondaryAggregationAlignmentPeriod(durationText(a.AlignmentPeriod))
			}
			if a.PerSeriesAligner != 0 {
				call.SecondaryAggregationPerSeriesAligner(a.PerSeriesAligner.String())
			}
			if a.CrossSeriesReducer != 0 {
				call.SecondaryAggregationCrossSeriesReducer(a.CrossSeriesReducer.String())
			}
		}
		if req.View != 0 {
			call.View(req.View.String())
		}
		if size > 0 {
			call.PageSize(int64(size))
		}
		if token != "" {
			call.PageToken(token)
		}
		got, err := call.Do()
		if err != nil {
			return nil, "", nil, restErr(err)
		}
		resp := &monitoringpb.ListTimeSeriesResponse{}
		if err := convert(got, resp); err != nil {
			return nil, "", nil, err
		}
		return resp.TimeSeries, resp.NextPageToken, resp, nil
	})
}

func (r restClient) ListMetricDescriptors(ctx context.Context, req *monitoringpb.ListMetricDescriptorsRequest) *pages[*metric.MetricDescriptor] {
	return newPages(req.GetPageSize(), req.GetPageToken(), func(size int, token string) ([]*metric.MetricDescriptor, string, any, error) {
		call := r.s.Projects.MetricDescriptors.List(req.GetName()).Context(ctx).Filter(req.GetFilter()).ActiveOnly(req.GetActiveOnly())
		if size > 0 {
			call.PageSize(int64(size))
		}
		if token != "" {
			call.PageToken(token)
		}
		got, err := call.Do()
		if err != nil {
			return nil, "", nil, restErr(err)
		}
		resp := &monitoringpb.ListMetricDescriptorsResponse{}
		if err := convert(got, resp); err != nil {
			return nil, "", nil, err
		}
		return resp.MetricDescriptors, resp.NextPageToken, resp, nil
	})
}

func (r restClient) ListMonitoredResourceDescriptors(ctx context.Context, req *monitoringpb.ListMonitoredResourceDescriptorsRequest) *pages[*monitoredres.MonitoredResourceDescriptor] {
	return newPages(req.GetPageSize(), req.GetPageToken(), func(size int, token string) ([]*monitoredres.MonitoredResourceDescriptor, string, any, error) {
		call := r.s.Projects.MonitoredResourceDescriptors.List(req.GetName()).Context(ctx).Filter(req.GetFilter())
		if size > 0 {
			call.PageSize(int64(size))
		}
		if token != "" {
			call.PageToken(token)
		}
		got, err := call.Do()
		if err != nil {
			return nil, "", nil, restErr(err)
		}
		resp := &monitoringpb.ListMonitoredResourceDescriptorsResponse{}
		if err := convert(got, resp); err != nil {
			return nil, "", nil, err
		}
		return resp.ResourceDescriptors, resp.NextPageToken, resp, nil
	})
}

func (r restClient) createTimeSeries(ctx context.Context, req *monitoringpb.CreateTimeSeriesRequest, service bool) error {
	body := &mrest.CreateTimeSeriesRequest{}
	if err := convert(&monitoringpb.CreateTimeSeriesRequest{TimeSeries: req.TimeSeries}, body); err != nil {
		return err
	}
	if service {
		_, err := r.s.Projects.TimeSeries.CreateService(req.GetName(), body).Context(ctx).Do()
		return restErr(err)
	}
	_, err := r.s.Projects.TimeSeries.Create(req.GetName(), body).Context(ctx).Do()
	return restErr(err)
}

func (r restClient) CreateTimeSeries(ctx context.Context, req *monitoringpb.CreateTimeSeriesRequest) error {
	return r.createTimeSeries(ctx, req, false)
}

func (r restClient) CreateServiceTimeSeries(ctx context.Context, req *monitoringpb.CreateTimeSeriesRequest) error {
	return r.createTimeSeries(ctx, req, true)
}

func (r restClient) GetMetricDescriptor(ctx context.Context, req *monitoringpb.GetMetricDescriptorRequest) (*metric.MetricDescriptor, error) {
	got, err := r.s.Projects.MetricDescriptors.Get(req.GetName()).Context(ctx).Do()
	if err != nil {
		return nil, restErr(err)
	}
	out := &metric.MetricDescriptor{}
	return out, convert(got, out)
}

func (r restClient) CreateMetricDescriptor(ctx context.Context, req *monitoringpb.CreateMetricDescriptorRequest) (*metric.MetricDescriptor, error) {
	body := &mrest.MetricDescriptor{}
	if req.MetricDescriptor != nil {
		if err := convert(req.MetricDescriptor, body); err != nil {
			return nil, err
		}
	}
	got, err := r.s.Projects.MetricDescriptors.Create(req.GetName(), body).Context(ctx).Do()
	if err != nil {
		return nil, restErr(err)
	}
	out := &metric.MetricDescriptor{}
	return out, convert(got, out)
}

func (r restClient) DeleteMetricDescriptor(ctx context.Context, req *monitoringpb.DeleteMetricDescriptorRequest) error {
	_, err := r.s.Projects.MetricDescriptors.Delete(req.GetName()).Context(ctx).Do()
	return restErr(err)
}

func (r restClient) GetMonitoredResourceDescriptor(ctx context.Context, req *monitoringpb.GetMonitoredResourceDescriptorRequest) (*monitoredres.MonitoredResourceDescriptor, error) {
	got, err := r.s.Projects.MonitoredResourceDescriptors.Get(req.GetName()).Context(ctx).Do()
	if err != nil {
		return nil, restErr(err)
	}
	out := &monitoredres.MonitoredResourceDescriptor{}
	return out, convert(got, out)
}

func (r restClient) Close() error { return nil }
