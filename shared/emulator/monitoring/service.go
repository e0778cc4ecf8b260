package monitoring

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/monitoring/apiv3/v2/monitoringpb"
	"google.golang.org/genproto/googleapis/api/metric"
	"google.golang.org/genproto/googleapis/api/monitoredres"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/emptypb"

	"runwayjobs.dev/shared/emulator/clock"
)

// Options configure a Service.
type Options struct {
	// Clock decides which points are ingested yet; nil means the store's clock (or the real
	// clock without a store).
	Clock clock.Clock
	// Store holds the points; nil means a new, empty store. Give the same store to the Cloud Run
	// emulator as its Recorder.
	Store *Store
	// IngestDelay is how long after its end a point becomes visible to ListTimeSeries. Zero
	// (the default, for tests) means at once; real Cloud Monitoring shows Cloud Run points a few
	// minutes late (about three, varying), which a monitor must allow for.
	IngestDelay time.Duration
}

// Service is the emulated google.monitoring.v3.MetricService.
type Service struct {
	monitoringpb.UnimplementedMetricServiceServer

	clock clock.Clock
	store *Store
	delay time.Duration
	pages pageCache

	mu     sync.Mutex
	custom map[string]map[string]*metric.MetricDescriptor // by project, then type
}

// New returns a service reading opts.Store.
func New(opts Options) *Service {
	s := &Service{clock: opts.Clock, store: opts.Store, delay: max(opts.IngestDelay, 0), custom: map[string]map[string]*metric.MetricDescriptor{}}
	if s.clock == nil {
		if s.store != nil {
			s.clock = s.store.clock
		} else {
			s.clock = clock.Real{}
		}
	}
	if s.store == nil {
		s.store = NewStore(s.clock)
	}
	return s
}

// Store returns the store the service reads.
func (s *Service) Store() *Store { return s.store }

// Register serves the MetricService on g.
func (s *Service) Register(g *grpc.Server) { monitoringpb.RegisterMetricServiceServer(g, s) }

var _ monitoringpb.MetricServiceServer = (*Service)(nil)

const (
	maxTimeSeriesPage = 100_000 // points (view FULL) or series (view HEADERS)
	maxDescriptorPage = 10_000
	maxWriteSeries    = 200
)

// ListTimeSeries returns the series of one metric that have points in the interval. The series
// travel encoded in the response's unknown fields (see encode.go): read the response through
// gRPC.
func (s *Service) ListTimeSeries(_ context.Context, req *monitoringpb.ListTimeSeriesRequest) (*monitoringpb.ListTimeSeriesResponse, error) {
	q, err := s.parseQuery(req)
	if err != nil {
		return nil, err
	}
	size := int(req.GetPageSize())
	if size <= 0 || size > maxTimeSeriesPage {
		size = maxTimeSeriesPage
	}
	fp := fingerprint(req)
	var l *listing
	var si, pi int
	if tok := req.GetPageToken(); tok != "" {
		if l, si, pi, err = s.pages.get(tok, fp); err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "page_token: %v", err)
		}
	} else {
		cutoff := s.clock.Now().Add(-s.delay).UnixNano()
		l = &listing{fingerprint: fp, q: q, rows: s.store.list(q, cutoff)}
	}
	enc := encoder{q: l.q}
	out := make([]byte, 0, 192*min(len(l.rows)-si, size)) // about the size of a one-point series
	out, si, pi, done := enc.page(out, l.rows, si, pi, size)
	resp := &monitoringpb.ListTimeSeriesResponse{}
	resp.ProtoReflect().SetUnknown(protoreflect.RawFields(out)) // the series; see encode.go
	if q.metric != nil {
		resp.Unit = "1"
	}
	if done {
		s.pages.drop(l)
	} else {
		resp.NextPageToken = s.pages.put(l, si, pi)
	}
	return resp, nil
}

// parseQuery validates a ListTimeSeries request.
func (s *Service) parseQuery(req *monitoringpb.ListTimeSeriesRequest) (*query, error) {
	project, err := parseProject(req.GetName(), "name")
	if err != nil {
		return nil, err
	}
	q := &query{project: project}
	if strings.TrimSpace(req.GetFilter()) == "" {
		return nil, status.Error(codes.InvalidArgument, `filter is required and must name one metric type, as in metric.type = "run.googleapis.com/job/completed_execution_count"`)
	}
	matchers, err := parseFilter(req.GetFilter())
	if err != nil {
		return nil, invalidFilter(req.GetFilter(), err)
	}
	var typ *matcher
	for i := range matchers {
		m := &matchers[i]
		switch m.field.kind {
		case fieldMetricType:
			if typ != nil {
				return nil, invalidFilter(req.GetFilter(), &filterError{m.field.pos, "the filter names metric.type twice; it must name exactly one metric type"})
			}
			if m.op != opEq || m.negate {
				return nil, invalidFilter(req.GetFilter(), &filterError{m.field.pos, `metric.type must be compared with = to one quoted metric type`})
			}
			typ = m
		case fieldResourceType:
			q.none = q.none || !m.match(ResourceType)
		case fieldProject:
			q.none = q.none || !m.match(project)
		}
	}
	if typ == nil {
		return nil, invalidFilter(req.GetFilter(), &filterError{0, `the filter must name one metric type, as in metric.type = "run.googleapis.com/job/completed_execution_count"`})
	}
	kind := metric.MetricDescriptor_METRIC_KIND_UNSPECIFIED
	q.metricType = typ.values[0]
	if q.metric = metricByType(typ.values[0]); q.metric != nil {
		kind = q.metric.kind
	} else if d := s.customDescriptor(project, typ.values[0]); d != nil {
		kind = d.GetMetricKind() // user-defined: never has points in the emulator
	} else {
		return nil, status.Errorf(codes.NotFound, "Cannot find metric(s) that match type = %q.", typ.values[0])
	}
	for i := range matchers {
		m := matchers[i]
		switch m.field.kind {
		case fieldResourceLabel:
			if !slices.ContainsFunc(resourceLabels, func(l labelInfo) bool { return l.key == m.field.label }) {
				return nil, invalidFilter(req.GetFilter(), &filterError{m.field.pos, fmt.Sprintf("resource type %s has no label %q (it has project_id, location and job_name)", ResourceType, m.field.label)})
			}
			if m.field.label == "project_id" {
				q.none = q.none || !m.match(project)
				continue
			}
		case fieldMetricLabel:
			if q.metric != nil && !q.metric.hasLabel(m.field.label) {
				return nil, invalidFilter(req.GetFilter(), &filterError{m.field.pos, fmt.Sprintf("metric %s has no label %q%s", q.metric.typ, m.field.label, q.metric.labelList())})
			}
		default:
			continue
		}
		q.match = append(q.match, m)
	}

	iv := req.GetInterval()
	if iv.GetEndTime() == nil {
		return nil, status.Error(codes.InvalidArgument, "interval.end_time is required")
	}
	if err := iv.GetEndTime().CheckValid(); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "interval.end_time: %v", err)
	}
	q.end = iv.GetEndTime().AsTime().UnixNano()
	q.start = q.end
	if iv.GetStartTime() != nil {
		if err := iv.GetStartTime().CheckValid(); err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "interval.start_time: %v", err)
		}
		q.start = iv.GetStartTime().AsTime().UnixNano()
	}
	if q.start > q.end {
		return nil, status.Errorf(codes.InvalidArgument, "interval.start_time %s is later than interval.end_time %s",
			iv.GetStartTime().AsTime().Format(time.RFC3339Nano), iv.GetEndTime().AsTime().Format(time.RFC3339Nano))
	}

	switch req.GetView() {
	case monitoringpb.ListTimeSeriesRequest_FULL:
	case monitoringpb.ListTimeSeriesRequest_HEADERS:
		q.headers = true
	default:
		return nil, status.Errorf(codes.InvalidArgument, "view %v is not FULL or HEADERS", req.GetView())
	}
	if req.GetOrderBy() != "" {
		return nil, status.Error(codes.InvalidArgument, "order_by is unsupported and must be left blank")
	}
	if sa := req.GetSecondaryAggregation(); sa != nil && !proto.Equal(sa, &monitoringpb.Aggregation{}) {
		return nil, status.Error(codes.Unimplemented, "secondary_aggregation is not supported by the emulator")
	}
	q.kind, q.valueType = kind, metric.MetricDescriptor_INT64
	if err := q.parseAggregation(req.GetAggregation()); err != nil {
		return nil, err
	}
	return q, nil
}

func (m *metricInfo) labelList() string {
	if len(m.labels) == 0 {
		return " (it has none)"
	}
	keys := make([]string, len(m.labels))
	for i, l := range m.labels {
		keys[i] = l.key
	}
	return " (it has " + strings.Join(keys, ", ") + ")"
}

func invalidFilter(filter string, err error) error {
	var fe *filterError
	if errors.As(err, &fe) {
		near := filter[min(fe.pos, len(filter)):]
		if len(near) > 30 {
			near = near[:30] + "…"
		}
		return status.Errorf(codes.InvalidArgument, "filter: %v (at %q in %q)", err, near, filter)
	}
	return status.Errorf(codes.InvalidArgument, "filter: %v", err)
}

var (
	aligners = map[monitoringpb.Aggregation_Aligner]bool{
		monitoringpb.Aggregation_ALIGN_SUM:   true,
		monitoringpb.Aggregation_ALIGN_DELTA: true,
		monitoringpb.Aggregation_ALIGN_MIN:   true,
		monitoringpb.Aggregation_ALIGN_MAX:   true,
		monitoringpb.Aggregation_ALIGN_MEAN:  true,
		monitoringpb.Aggregation_ALIGN_COUNT: true,
	}
	reducers = map[monitoringpb.Aggregation_Reducer]bool{
		monitoringpb.Aggregation_REDUCE_NONE:  true,
		monitoringpb.Aggregation_REDUCE_SUM:   true,
		monitoringpb.Aggregation_REDUCE_MIN:   true,
		monitoringpb.Aggregation_REDUCE_MAX:   true,
		monitoringpb.Aggregation_REDUCE_MEAN:  true,
		monitoringpb.Aggregation_REDUCE_COUNT: true,
	}
)

const maxAlignmentPeriod = 104 * 7 * 24 * time.Hour

// parseAggregation validates agg and sets the aggregation and output kind of q.
func (q *query) parseAggregation(agg *monitoringpb.Aggregation) error {
	al, red := agg.GetPerSeriesAligner(), agg.GetCrossSeriesReducer()
	if al == monitoringpb.Aggregation_ALIGN_NONE {
		if red != monitoringpb.Aggregation_REDUCE_NONE {
			return status.Errorf(codes.InvalidArgument, "aggregation.cross_series_reducer %v needs a per_series_aligner other than ALIGN_NONE and an alignment_period", red)
		}
		return nil // raw points; alignment_period is ignored
	}
	if !aligners[al] {
		return status.Errorf(codes.Unimplemented, "aggregation.per_series_aligner %v is not supported by the emulator (it supports ALIGN_NONE, ALIGN_SUM, ALIGN_DELTA, ALIGN_MIN, ALIGN_MAX, ALIGN_MEAN and ALIGN_COUNT)", al)
	}
	if !reducers[red] {
		return status.Errorf(codes.Unimplemented, "aggregation.cross_series_reducer %v is not supported by the emulator (it supports REDUCE_NONE, REDUCE_SUM, REDUCE_MIN, REDUCE_MAX, REDUCE_MEAN and REDUCE_COUNT)", red)
	}
	if agg.GetAlignmentPeriod() == nil {
		return status.Errorf(codes.InvalidArgument, "aggregation.alignment_period is required with per_series_aligner %v", al)
	}
	if err := agg.GetAlignmentPeriod().CheckValid(); err != nil {
		return status.Errorf(codes.InvalidArgument, "aggregation.alignment_period: %v", err)
	}
	period := agg.GetAlignmentPeriod().AsDuration()
	if period < time.Minute || period > maxAlignmentPeriod {
		return status.Errorf(codes.InvalidArgument, "aggregation.alignment_period %v is not between 60s and 104 weeks", period)
	}
	if al == monitoringpb.Aggregation_ALIGN_DELTA && q.kind == metric.MetricDescriptor_GAUGE {
		return status.Errorf(codes.InvalidArgument, "aggregation.per_series_aligner ALIGN_DELTA is not valid for GAUGE metric %s", q.metricType)
	}
	q.aligner, q.reducer, q.period = al, red, int64(period)
	switch al {
	case monitoringpb.Aggregation_ALIGN_SUM, monitoringpb.Aggregation_ALIGN_DELTA:
		// kind and value type unchanged
	case monitoringpb.Aggregation_ALIGN_MEAN:
		q.kind, q.valueType = metric.MetricDescriptor_GAUGE, metric.MetricDescriptor_DOUBLE
	default:
		q.kind = metric.MetricDescriptor_GAUGE
	}
	switch red {
	case monitoringpb.Aggregation_REDUCE_NONE:
		return nil
	case monitoringpb.Aggregation_REDUCE_MEAN:
		q.valueType = metric.MetricDescriptor_DOUBLE
	case monitoringpb.Aggregation_REDUCE_COUNT:
		q.valueType = metric.MetricDescriptor_INT64
	}
	for i, text := range agg.GetGroupByFields() {
		f, err := parseField(text, 0)
		if err != nil {
			return status.Errorf(codes.InvalidArgument, "aggregation.group_by_fields[%d]: %s", i, err.(*filterError).msg)
		}
		switch {
		case f.kind == fieldResourceType:
		case f.kind == fieldResourceLabel && slices.ContainsFunc(resourceLabels, func(l labelInfo) bool { return l.key == f.label }):
		case f.kind == fieldMetricLabel && (q.metric == nil || q.metric.hasLabel(f.label)):
		default:
			return status.Errorf(codes.InvalidArgument, "aggregation.group_by_fields[%d]: %q is not a label of metric %s or of resource type %s", i, text, q.metricType, ResourceType)
		}
		if !slices.ContainsFunc(q.groupBy, func(g field) bool { return g.kind == f.kind && g.label == f.label }) {
			q.groupBy = append(q.groupBy, f) // "resource.label.x" and "resource.labels.x" are one field
		}
	}
	if len(q.groupBy) > maxGroupBy {
		return status.Errorf(codes.InvalidArgument, "aggregation.group_by_fields: more than %d distinct fields", maxGroupBy)
	}
	// Grouping by every label that tells series apart (as the monitor does) reduces nothing: list
	// then skips the grouping.
	has := func(kind fieldKind, label string) bool {
		return slices.ContainsFunc(q.groupBy, func(g field) bool { return g.kind == kind && g.label == label })
	}
	q.distinct = q.metric != nil && has(fieldResourceLabel, "location") && has(fieldResourceLabel, "job_name")
	for _, l := range metricLabels(q.metric) {
		q.distinct = q.distinct && has(fieldMetricLabel, l.key)
	}
	return nil
}

func metricLabels(m *metricInfo) []labelInfo {
	if m == nil {
		return nil
	}
	return m.labels
}

// fingerprint identifies a request apart from its paging, to check that a page token is used
// with the request that produced it.
func fingerprint(req *monitoringpb.ListTimeSeriesRequest) string {
	c := proto.CloneOf(req)
	c.PageSize, c.PageToken = 0, ""
	b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(c)
	return string(b)
}

// listing is the result of a ListTimeSeries request whose pages are still being read. The whole
// result is computed by the first page, so later pages are consistent with it whatever is
// recorded meanwhile.
type listing struct {
	id          uint64
	fingerprint string
	q           *query
	rows        []row
}

// pageCache keeps the listings with pages left, forgetting the oldest beyond maxListings.
type pageCache struct {
	mu       sync.Mutex
	next     uint64
	listings map[uint64]*listing
	order    []uint64 // by age
}

const maxListings = 32

func (c *pageCache) put(l *listing, si, pi int) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if l.id == 0 {
		if c.listings == nil {
			c.listings = map[uint64]*listing{}
		}
		c.next++
		l.id = c.next
		c.listings[l.id] = l
		c.order = append(c.order, l.id)
		for len(c.order) > maxListings {
			delete(c.listings, c.order[0])
			c.order = c.order[1:]
		}
	}
	return fmt.Sprintf("%d.%d.%d", l.id, si, pi)
}

func (c *pageCache) get(token, fp string) (*listing, int, int, error) {
	parts := strings.Split(token, ".")
	var n [3]uint64
	if len(parts) != 3 {
		return nil, 0, 0, fmt.Errorf("%q is not a page token of this service", token)
	}
	for i, p := range parts {
		v, err := strconv.ParseUint(p, 10, 31)
		if err != nil {
			return nil, 0, 0, fmt.Errorf("%q is not a page token of this service", token)
		}
		n[i] = v
	}
	c.mu.Lock()
	l := c.listings[n[0]]
	c.mu.Unlock()
	switch {
	case l == nil:
		return nil, 0, 0, fmt.Errorf("%q has expired or was already read to the end; list again from the first page", token)
	case l.fingerprint != fp:
		return nil, 0, 0, errors.New("the request differs from the one that returned this token (only page_size may change)")
	case int(n[1]) > len(l.rows) || (int(n[1]) < len(l.rows) && int(n[2]) >= max(len(l.rows[n[1]].points), 1)):
		return nil, 0, 0, fmt.Errorf("%q is not a page token of this service", token)
	}
	return l, int(n[1]), int(n[2]), nil
}

// drop forgets a listing read to the end.
func (c *pageCache) drop(l *listing) {
	if l.id == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.listings, l.id)
}

// CreateTimeSeries adds points to the Cloud Run job metrics (which real Cloud Monitoring
// refuses: only Cloud Run writes them). Every series is checked before any is written.
func (s *Service) CreateTimeSeries(_ context.Context, req *monitoringpb.CreateTimeSeriesRequest) (*emptypb.Empty, error) {
	project, err := parseProject(req.GetName(), "name")
	if err != nil {
		return nil, err
	}
	all := req.GetTimeSeries()
	if len(all) == 0 || len(all) > maxWriteSeries {
		return nil, status.Errorf(codes.InvalidArgument, "time_series has %d series; between 1 and %d are allowed", len(all), maxWriteSeries)
	}
	type write struct {
		m     *metricInfo
		key   seriesKey
		start int64
		end   int64
		value int64
	}
	writes := make([]write, 0, len(all))
	type id struct {
		m   metricID
		key seriesKey
	}
	seen := map[id]bool{}
	for i, t := range all {
		bad := func(format string, args ...any) error {
			return status.Errorf(codes.InvalidArgument, "time_series[%d]%s", i, fmt.Sprintf(format, args...))
		}
		typ := t.GetMetric().GetType()
		m := metricByType(typ)
		if m == nil {
			if s.customDescriptor(project, typ) != nil {
				return nil, bad(".metric.type %q: the emulator stores points only for %s, %s and %s", typ, CompletedExecutionCount, CompletedTaskAttemptCount, RunningExecutions)
			}
			return nil, bad(".metric.type %q is not a metric the emulator knows (%s, %s or %s)", typ, CompletedExecutionCount, CompletedTaskAttemptCount, RunningExecutions)
		}
		if rt := t.GetResource().GetType(); rt != ResourceType {
			return nil, bad(".resource.type %q: %s is written on resource type %s", rt, typ, ResourceType)
		}
		rl := t.GetResource().GetLabels()
		for k := range rl {
			if !slices.ContainsFunc(resourceLabels, func(l labelInfo) bool { return l.key == k }) {
				return nil, bad(".resource.labels: unknown label %q (%s has project_id, location and job_name)", k, ResourceType)
			}
		}
		for _, l := range resourceLabels {
			if rl[l.key] == "" {
				return nil, bad(".resource.labels.%s is required", l.key)
			}
		}
		if rl["project_id"] != project {
			return nil, bad(".resource.labels.project_id %q differs from the project %q of name", rl["project_id"], project)
		}
		ml := t.GetMetric().GetLabels()
		for k := range ml {
			if !m.hasLabel(k) {
				return nil, bad(".metric.labels: unknown label %q for %s%s", k, typ, m.labelList())
			}
		}
		key := seriesKey{location: rl["location"], job: rl["job_name"], result: ml["result"], attempt: ml["attempt"]}
		for _, l := range m.labels {
			if ml[l.key] == "" {
				return nil, bad(".metric.labels.%s is required", l.key)
			}
		}
		if k := t.GetMetricKind(); k != metric.MetricDescriptor_METRIC_KIND_UNSPECIFIED && k != m.kind {
			return nil, bad(".metric_kind %v: %s is %v", k, typ, m.kind)
		}
		if v := t.GetValueType(); v != metric.MetricDescriptor_VALUE_TYPE_UNSPECIFIED && v != metric.MetricDescriptor_INT64 {
			return nil, bad(".value_type %v: %s is INT64", v, typ)
		}
		if len(t.GetPoints()) != 1 {
			return nil, bad(".points has %d points; exactly one is required", len(t.GetPoints()))
		}
		pt := t.GetPoints()[0]
		iv, ok := pt.GetValue().GetValue().(*monitoringpb.TypedValue_Int64Value)
		if !ok {
			return nil, bad(".points[0].value must be an int64_value: %s is INT64", typ)
		}
		end := pt.GetInterval().GetEndTime()
		if end == nil || end.CheckValid() != nil {
			return nil, bad(".points[0].interval.end_time is required")
		}
		w := write{m: m, key: key, end: end.AsTime().UnixNano(), value: iv.Int64Value}
		w.start = w.end
		if st := pt.GetInterval().GetStartTime(); st != nil {
			if st.CheckValid() != nil {
				return nil, bad(".points[0].interval.start_time is not a valid time")
			}
			w.start = st.AsTime().UnixNano()
		}
		switch {
		case m.kind == metric.MetricDescriptor_DELTA && w.start >= w.end:
			return nil, bad(".points[0].interval: a DELTA point needs a start_time before its end_time")
		case m.kind == metric.MetricDescriptor_GAUGE && w.start != w.end:
			return nil, bad(".points[0].interval: a GAUGE point's start_time, if given, must equal its end_time")
		}
		if seen[id{m.id, key}] {
			return nil, bad(": the request writes this time series twice")
		}
		seen[id{m.id, key}] = true
		writes = append(writes, w)
	}
	st := s.store
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, w := range writes {
		if w.m.kind == metric.MetricDescriptor_GAUGE {
			st.setGauge(project, w.key, w.end, w.value)
		} else {
			// The point's own interval is not kept: it counts in the minute holding its end.
			st.addCount(project, w.m.id, w.key, w.end-1, w.value)
		}
	}
	return &emptypb.Empty{}, nil
}

// ListMetricDescriptors lists the Cloud Run job metrics and the user-defined metrics of the
// project. The filter may only test metric.type.
func (s *Service) ListMetricDescriptors(_ context.Context, req *monitoringpb.ListMetricDescriptorsRequest) (*monitoringpb.ListMetricDescriptorsResponse, error) {
	project, err := parseProject(req.GetName(), "name")
	if err != nil {
		return nil, err
	}
	matchers, err := parseFilter(req.GetFilter())
	if err != nil {
		return nil, invalidFilter(req.GetFilter(), err)
	}
	for _, m := range matchers {
		if m.field.kind != fieldMetricType {
			return nil, invalidFilter(req.GetFilter(), &filterError{m.field.pos, "the emulator filters metric descriptors on metric.type only"})
		}
	}
	var all []*metric.MetricDescriptor
	for _, m := range metrics {
		if !req.GetActiveOnly() || s.store.active(project, m.id, s.clock.Now().Add(-25*time.Hour).UnixNano()) {
			all = append(all, m.descriptor(project, s.delay))
		}
	}
	if !req.GetActiveOnly() {
		s.mu.Lock()
		for _, d := range s.custom[project] {
			all = append(all, proto.CloneOf(d))
		}
		s.mu.Unlock()
	}
	all = slices.DeleteFunc(all, func(d *metric.MetricDescriptor) bool {
		for _, m := range matchers {
			if !m.match(d.GetType()) {
				return true
			}
		}
		return false
	})
	slices.SortFunc(all, func(a, b *metric.MetricDescriptor) int { return strings.Compare(a.GetType(), b.GetType()) })
	page, next, err := pageOf(all, req.GetPageSize(), req.GetPageToken(), maxDescriptorPage)
	if err != nil {
		return nil, err
	}
	return &monitoringpb.ListMetricDescriptorsResponse{MetricDescriptors: page, NextPageToken: next}, nil
}

// GetMetricDescriptor returns one metric descriptor.
func (s *Service) GetMetricDescriptor(_ context.Context, req *monitoringpb.GetMetricDescriptorRequest) (*metric.MetricDescriptor, error) {
	project, typ, err := parseChild(req.GetName(), "metricDescriptors")
	if err != nil {
		return nil, err
	}
	if m := metricByType(typ); m != nil {
		return m.descriptor(project, s.delay), nil
	}
	if d := s.customDescriptor(project, typ); d != nil {
		return d, nil
	}
	return nil, status.Errorf(codes.NotFound, "metric descriptor %s not found", req.GetName())
}

// userDefinedPrefixes are the metric type prefixes CreateMetricDescriptor accepts.
var userDefinedPrefixes = []string{"custom.googleapis.com/", "external.googleapis.com/", "workload.googleapis.com/"}

// CreateMetricDescriptor creates (or replaces) a user-defined metric descriptor. The emulator
// lists it, but stores no points for it.
func (s *Service) CreateMetricDescriptor(_ context.Context, req *monitoringpb.CreateMetricDescriptorRequest) (*metric.MetricDescriptor, error) {
	project, err := parseProject(req.GetName(), "name")
	if err != nil {
		return nil, err
	}
	d := proto.CloneOf(req.GetMetricDescriptor())
	switch {
	case d == nil:
		return nil, status.Error(codes.InvalidArgument, "metric_descriptor is required")
	case !slices.ContainsFunc(userDefinedPrefixes, func(p string) bool { return strings.HasPrefix(d.GetType(), p) && len(d.GetType()) > len(p) }):
		return nil, status.Errorf(codes.InvalidArgument, "metric_descriptor.type %q must start with one of %s", d.GetType(), strings.Join(userDefinedPrefixes, ", "))
	case d.GetMetricKind() == metric.MetricDescriptor_METRIC_KIND_UNSPECIFIED:
		return nil, status.Error(codes.InvalidArgument, "metric_descriptor.metric_kind is required")
	case d.GetValueType() == metric.MetricDescriptor_VALUE_TYPE_UNSPECIFIED:
		return nil, status.Error(codes.InvalidArgument, "metric_descriptor.value_type is required")
	}
	d.Name = "projects/" + project + "/metricDescriptors/" + d.GetType()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.custom[project] == nil {
		s.custom[project] = map[string]*metric.MetricDescriptor{}
	}
	s.custom[project][d.GetType()] = d
	return proto.CloneOf(d), nil
}

// DeleteMetricDescriptor deletes a user-defined metric descriptor.
func (s *Service) DeleteMetricDescriptor(_ context.Context, req *monitoringpb.DeleteMetricDescriptorRequest) (*emptypb.Empty, error) {
	project, typ, err := parseChild(req.GetName(), "metricDescriptors")
	if err != nil {
		return nil, err
	}
	if metricByType(typ) != nil {
		return nil, status.Errorf(codes.InvalidArgument, "%s is a built-in metric and cannot be deleted", typ)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.custom[project][typ] == nil {
		return nil, status.Errorf(codes.NotFound, "metric descriptor %s not found", req.GetName())
	}
	delete(s.custom[project], typ)
	return &emptypb.Empty{}, nil
}

func (s *Service) customDescriptor(project, typ string) *metric.MetricDescriptor {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d := s.custom[project][typ]; d != nil {
		return proto.CloneOf(d)
	}
	return nil
}

// ListMonitoredResourceDescriptors lists cloud_run_job. The filter may only test resource.type.
func (s *Service) ListMonitoredResourceDescriptors(_ context.Context, req *monitoringpb.ListMonitoredResourceDescriptorsRequest) (*monitoringpb.ListMonitoredResourceDescriptorsResponse, error) {
	project, err := parseProject(req.GetName(), "name")
	if err != nil {
		return nil, err
	}
	matchers, err := parseFilter(req.GetFilter())
	if err != nil {
		return nil, invalidFilter(req.GetFilter(), err)
	}
	var all []*monitoredres.MonitoredResourceDescriptor
	d := resourceDescriptor(project)
	keep := true
	for _, m := range matchers {
		if m.field.kind != fieldResourceType {
			return nil, invalidFilter(req.GetFilter(), &filterError{m.field.pos, "the emulator filters monitored resource descriptors on resource.type only"})
		}
		keep = keep && m.match(d.GetType())
	}
	if keep {
		all = append(all, d)
	}
	page, next, err := pageOf(all, req.GetPageSize(), req.GetPageToken(), maxDescriptorPage)
	if err != nil {
		return nil, err
	}
	return &monitoringpb.ListMonitoredResourceDescriptorsResponse{ResourceDescriptors: page, NextPageToken: next}, nil
}

// GetMonitoredResourceDescriptor returns the cloud_run_job descriptor.
func (s *Service) GetMonitoredResourceDescriptor(_ context.Context, req *monitoringpb.GetMonitoredResourceDescriptorRequest) (*monitoredres.MonitoredResourceDescriptor, error) {
	project, typ, err := parseChild(req.GetName(), "monitoredResourceDescriptors")
	if err != nil {
		return nil, err
	}
	if typ != ResourceType {
		return nil, status.Errorf(codes.NotFound, "monitored resource descriptor %s not found (the emulator knows %s only)", req.GetName(), ResourceType)
	}
	return resourceDescriptor(project), nil
}

// pageOf returns one page of a small, fully known list; the token is the offset.
func pageOf[T any](all []T, size int32, token string, maxSize int) ([]T, string, error) {
	if size <= 0 || int(size) > maxSize {
		size = int32(maxSize)
	}
	off := 0
	if token != "" {
		n, err := strconv.Atoi(token)
		if err != nil || n < 0 || n > len(all) {
			return nil, "", status.Errorf(codes.InvalidArgument, "page_token %q is not a page token of this service", token)
		}
		off = n
	}
	end := min(len(all), off+int(size))
	next := ""
	if end < len(all) {
		next = strconv.Itoa(end)
	}
	return all[off:end], next, nil
}

// parseProject reads "projects/{project}".
func parseProject(name, field string) (string, error) {
	p, ok := strings.CutPrefix(name, "projects/")
	if !ok || p == "" || strings.Contains(p, "/") {
		if strings.HasPrefix(name, "organizations/") || strings.HasPrefix(name, "folders/") {
			return "", status.Errorf(codes.InvalidArgument, "%s %q: the emulator serves projects only (projects/PROJECT_ID)", field, name)
		}
		return "", status.Errorf(codes.InvalidArgument, "%s %q is not of the form projects/PROJECT_ID", field, name)
	}
	return p, nil
}

// parseChild reads "projects/{project}/{collection}/{id}", where id may contain slashes.
func parseChild(name, collection string) (project, id string, err error) {
	rest, ok := strings.CutPrefix(name, "projects/")
	if ok {
		project, id, ok = strings.Cut(rest, "/"+collection+"/")
	}
	if !ok || project == "" || strings.Contains(project, "/") || id == "" {
		return "", "", status.Errorf(codes.InvalidArgument, "name %q is not of the form projects/PROJECT_ID/%s/ID", name, collection)
	}
	return project, id, nil
}

// active reports whether the project has a point of metric m ending after since.
func (s *Store) active(project string, m metricID, since int64) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	p := s.projects[project]
	return p != nil && p.latest[m] > since
}
