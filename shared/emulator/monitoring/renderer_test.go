package monitoring

import (
	"cloud.google.com/go/monitoring/apiv3/v2/monitoringpb"
	"google.golang.org/genproto/googleapis/api/metric"
	"google.golang.org/genproto/googleapis/api/monitoredres"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// This file keeps the straightforward way of building the TimeSeries of a page, as the oracle
// that TestEncoding holds the wire encoder to.

// renderer turns rows into TimeSeries. Messages that many series would hold equal copies of (the
// metric with its labels, aligned points and their intervals) are made once and shared: the
// response is only read, by the marshaller, so sharing is safe and saves most of the work.
type renderer struct {
	q       *query
	metrics map[[4]string]*metric.Metric
	points  map[outPoint]*monitoringpb.Point
	singles map[*monitoringpb.Point][]*monitoringpb.Point
}

// metric returns the metric with the given labels (key, value, key, value; empty keys unused).
func (r *renderer) metric(kv [4]string) *metric.Metric {
	if m := r.metrics[kv]; m != nil {
		return m
	}
	m := &metric.Metric{Type: r.q.metric.typ}
	for i := 0; i < len(kv); i += 2 {
		if kv[i] != "" {
			if m.Labels == nil {
				m.Labels = map[string]string{}
			}
			m.Labels[kv[i]] = kv[i+1]
		}
	}
	if r.metrics == nil {
		r.metrics = map[[4]string]*metric.Metric{}
	}
	r.metrics[kv] = m
	return m
}

// header renders the metric and resource of a row.
func (r *renderer) header(rw *row) *monitoringpb.TimeSeries {
	q := r.q
	var kv [4]string
	res := &monitoredres.MonitoredResource{Type: ResourceType}
	if q.reducer == monitoringpb.Aggregation_REDUCE_NONE {
		res.Labels = map[string]string{"project_id": q.project, "location": rw.key.location, "job_name": rw.key.job}
		for i, l := range q.metric.labels {
			kv[2*i], kv[2*i+1] = l.key, rw.key.label(fieldMetricLabel, l.key, q.project)
		}
	} else {
		n := 0
		for i, f := range q.groupBy {
			switch f.kind {
			case fieldResourceLabel:
				if res.Labels == nil {
					res.Labels = map[string]string{}
				}
				res.Labels[f.label] = rw.group[i]
			case fieldMetricLabel:
				kv[2*n], kv[2*n+1] = f.label, rw.group[i]
				n++
			}
		}
	}
	return &monitoringpb.TimeSeries{Metric: r.metric(kv), Resource: res, MetricKind: q.kind, ValueType: q.valueType}
}

// point renders a point.
func (r *renderer) point(p outPoint) *monitoringpb.Point {
	aligned := r.q.aligner != monitoringpb.Aggregation_ALIGN_NONE
	if aligned {
		if pt := r.points[p]; pt != nil {
			return pt
		}
	}
	v := &monitoringpb.TypedValue{}
	if r.q.valueType == metric.MetricDescriptor_DOUBLE {
		v.Value = &monitoringpb.TypedValue_DoubleValue{DoubleValue: p.f}
	} else {
		v.Value = &monitoringpb.TypedValue_Int64Value{Int64Value: p.i}
	}
	pt := &monitoringpb.Point{Interval: &monitoringpb.TimeInterval{StartTime: ts(p.start), EndTime: ts(p.end)}, Value: v}
	if aligned {
		if r.points == nil {
			r.points = map[outPoint]*monitoringpb.Point{}
		}
		r.points[p] = pt
	}
	return pt
}

// page renders rows from row si, point pi, until pageSize points (series in view HEADERS) are
// rendered. It returns the position to continue from, or done.
func (r *renderer) page(rows []row, si, pi, pageSize int) (out []*monitoringpb.TimeSeries, nsi, npi int, done bool) {
	budget := pageSize
	for si < len(rows) && budget > 0 {
		rw := &rows[si]
		ts := r.header(rw)
		out = append(out, ts)
		if r.q.headers {
			budget--
			si++
			continue
		}
		n := min(len(rw.points)-pi, budget)
		if n == 1 && len(rw.points) == 1 && r.q.aligner != monitoringpb.Aggregation_ALIGN_NONE {
			// The common aligned series of one point: share the one-element slice too.
			pt := r.point(rw.points[0])
			if ts.Points = r.singles[pt]; ts.Points == nil {
				if r.singles == nil {
					r.singles = map[*monitoringpb.Point][]*monitoringpb.Point{}
				}
				ts.Points = []*monitoringpb.Point{pt}
				r.singles[pt] = ts.Points
			}
		} else {
			ts.Points = make([]*monitoringpb.Point, n)
			for j := range n {
				ts.Points[j] = r.point(rw.points[pi+j])
			}
		}
		budget -= n
		pi += n
		if pi == len(rw.points) {
			si, pi = si+1, 0
		}
	}
	return out, si, pi, si >= len(rows)
}

func ts(n int64) *timestamppb.Timestamp {
	sec, ns := splitNanos(n)
	return &timestamppb.Timestamp{Seconds: sec, Nanos: ns}
}
