package monitoring

import (
	"math"

	"cloud.google.com/go/monitoring/apiv3/v2/monitoringpb"
	"google.golang.org/genproto/googleapis/api/metric"
	"google.golang.org/protobuf/encoding/protowire"
)

// The series of a ListTimeSeries page are written straight in the protobuf wire format and
// attached to the response as unknown fields under the number of its time_series field. On the
// wire this is byte for byte what marshalling TimeSeries messages would give, so clients decode
// ordinary TimeSeries; but it costs a few milliseconds for 10,000 series, where building the
// messages and marshalling them (two label maps per series, walked by reflection) took most of
// the 100 ms budget. The price: a response read in process, without going through gRPC, has
// its series only in those unknown fields. TestEncoding checks the bytes against marshalled
// messages.

// Field numbers, from google/monitoring/v3/{metric,metric_service,common}.proto,
// google/api/{metric,monitored_resource}.proto and google/protobuf/timestamp.proto.
const (
	wireResponseTimeSeries protowire.Number = 1 // ListTimeSeriesResponse.time_series

	wireSeriesMetric     protowire.Number = 1 // TimeSeries.metric
	wireSeriesResource   protowire.Number = 2 // TimeSeries.resource
	wireSeriesMetricKind protowire.Number = 3 // TimeSeries.metric_kind
	wireSeriesValueType  protowire.Number = 4 // TimeSeries.value_type
	wireSeriesPoints     protowire.Number = 5 // TimeSeries.points

	wireMetricLabels   protowire.Number = 2 // Metric.labels
	wireMetricType     protowire.Number = 3 // Metric.type
	wireResourceType   protowire.Number = 1 // MonitoredResource.type
	wireResourceLabels protowire.Number = 2 // MonitoredResource.labels
	wireMapKey         protowire.Number = 1 // map entry key
	wireMapValue       protowire.Number = 2 // map entry value

	wirePointInterval protowire.Number = 1 // Point.interval
	wirePointValue    protowire.Number = 2 // Point.value
	wireIntervalStart protowire.Number = 1 // TimeInterval.start_time
	wireIntervalEnd   protowire.Number = 2 // TimeInterval.end_time
	wireSeconds       protowire.Number = 1 // Timestamp.seconds
	wireNanos         protowire.Number = 2 // Timestamp.nanos
	wireInt64Value    protowire.Number = 2 // TypedValue.int64_value
	wireDoubleValue   protowire.Number = 3 // TypedValue.double_value
)

// encoder writes the rows of a query as TimeSeries. Parts that many series share (the metric
// with its labels, aligned points) are encoded once.
type encoder struct {
	q       *query
	metrics map[[4]string][]byte // encoded Metric messages, by label key, value, key, value
	points  map[outPoint][]byte  // encoded Point messages, aligned results only
	body    []byte               // scratch: the series being written
	part    []byte               // scratch: a message inside it
}

// page encodes rows from row si, point pi, until pageSize points (series in view HEADERS) are
// written, appending each series to out as a time_series field. It returns the position to go
// on from, or done.
func (e *encoder) page(out []byte, rows []row, si, pi, pageSize int) (_ []byte, nsi, npi int, done bool) {
	budget := pageSize
	for si < len(rows) && budget > 0 {
		rw := &rows[si]
		e.body = e.header(e.body[:0], rw)
		if e.q.headers {
			budget--
			si++
		} else {
			n := min(len(rw.points)-pi, budget)
			for _, p := range rw.points[pi : pi+n] {
				e.body = protowire.AppendTag(e.body, wireSeriesPoints, protowire.BytesType)
				e.body = protowire.AppendBytes(e.body, e.point(p))
			}
			budget -= n
			pi += n
			if pi == len(rw.points) {
				si, pi = si+1, 0
			}
		}
		out = protowire.AppendTag(out, wireResponseTimeSeries, protowire.BytesType)
		out = protowire.AppendBytes(out, e.body)
	}
	return out, si, pi, si >= len(rows)
}

// header writes the metric, resource, kind and value type of a series.
func (e *encoder) header(b []byte, rw *row) []byte {
	q := e.q
	var kv [4]string
	p := e.part[:0]
	p = appendString(p, wireResourceType, ResourceType)
	if q.reducer == monitoringpb.Aggregation_REDUCE_NONE {
		p = appendLabel(p, wireResourceLabels, "project_id", q.project)
		p = appendLabel(p, wireResourceLabels, "location", rw.key.location)
		p = appendLabel(p, wireResourceLabels, "job_name", rw.key.job)
		for i, l := range q.metric.labels {
			kv[2*i], kv[2*i+1] = l.key, rw.key.label(fieldMetricLabel, l.key, q.project)
		}
	} else {
		n := 0
		for i, f := range q.groupBy {
			switch {
			case f.kind == fieldResourceLabel:
				p = appendLabel(p, wireResourceLabels, f.label, rw.group[i])
			case f.kind == fieldMetricLabel:
				kv[2*n], kv[2*n+1] = f.label, rw.group[i]
				n++
			}
		}
	}
	e.part = p
	b = protowire.AppendTag(b, wireSeriesMetric, protowire.BytesType)
	b = protowire.AppendBytes(b, e.metric(kv))
	b = protowire.AppendTag(b, wireSeriesResource, protowire.BytesType)
	b = protowire.AppendBytes(b, p)
	if q.kind != metric.MetricDescriptor_METRIC_KIND_UNSPECIFIED {
		b = protowire.AppendTag(b, wireSeriesMetricKind, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(q.kind))
	}
	b = protowire.AppendTag(b, wireSeriesValueType, protowire.VarintType)
	return protowire.AppendVarint(b, uint64(q.valueType))
}

// metric returns the encoded Metric with the given labels.
func (e *encoder) metric(kv [4]string) []byte {
	if m, ok := e.metrics[kv]; ok {
		return m
	}
	var m []byte
	for i := 0; i < len(kv); i += 2 {
		if kv[i] != "" {
			m = appendLabel(m, wireMetricLabels, kv[i], kv[i+1])
		}
	}
	m = appendString(m, wireMetricType, e.q.metric.typ)
	if e.metrics == nil {
		e.metrics = map[[4]string][]byte{}
	}
	e.metrics[kv] = m
	return m
}

// point returns the encoded Point.
func (e *encoder) point(p outPoint) []byte {
	aligned := e.q.aligner != monitoringpb.Aggregation_ALIGN_NONE
	if b, ok := e.points[p]; ok && aligned {
		return b
	}
	var iv, v []byte
	iv = appendTimestamp(iv, wireIntervalStart, p.start)
	iv = appendTimestamp(iv, wireIntervalEnd, p.end)
	if e.q.valueType == metric.MetricDescriptor_DOUBLE {
		v = protowire.AppendTag(v, wireDoubleValue, protowire.Fixed64Type)
		v = protowire.AppendFixed64(v, math.Float64bits(p.f))
	} else {
		v = protowire.AppendTag(v, wireInt64Value, protowire.VarintType)
		v = protowire.AppendVarint(v, uint64(p.i))
	}
	b := make([]byte, 0, len(iv)+len(v)+6)
	b = protowire.AppendTag(b, wirePointInterval, protowire.BytesType)
	b = protowire.AppendBytes(b, iv)
	b = protowire.AppendTag(b, wirePointValue, protowire.BytesType)
	b = protowire.AppendBytes(b, v)
	if aligned {
		if e.points == nil {
			e.points = map[outPoint][]byte{}
		}
		e.points[p] = b
	}
	return b
}

func appendString(b []byte, num protowire.Number, s string) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

// appendLabel appends one entry of a map<string, string> field.
func appendLabel(b []byte, num protowire.Number, k, v string) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(2+protowire.SizeBytes(len(k))+protowire.SizeBytes(len(v))))
	b = appendString(b, wireMapKey, k)
	return appendString(b, wireMapValue, v)
}

// appendTimestamp appends a google.protobuf.Timestamp of Unix nanoseconds n.
func appendTimestamp(b []byte, num protowire.Number, n int64) []byte {
	sec, ns := splitNanos(n)
	size := 0
	if sec != 0 {
		size += 1 + protowire.SizeVarint(uint64(sec))
	}
	if ns != 0 {
		size += 1 + protowire.SizeVarint(uint64(ns))
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(size))
	if sec != 0 {
		b = protowire.AppendTag(b, wireSeconds, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(sec))
	}
	if ns != 0 {
		b = protowire.AppendTag(b, wireNanos, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(ns))
	}
	return b
}

// splitNanos splits Unix nanoseconds into seconds and non-negative nanoseconds, as Timestamp
// holds them.
func splitNanos(n int64) (int64, int32) {
	sec, ns := n/1e9, n%1e9
	if ns < 0 {
		sec, ns = sec-1, ns+1e9
	}
	return sec, int32(ns)
}
