package monitoring

import (
	"cmp"
	"slices"
	"strings"

	"cloud.google.com/go/monitoring/apiv3/v2/monitoringpb"
	"google.golang.org/genproto/googleapis/api/metric"
)

// query is a validated ListTimeSeries request.
type query struct {
	project    string
	metricType string
	metric     *metricInfo // nil for a user-defined metric, which never has points here
	none       bool        // the filter rules out every series (resource type, project)
	match      []matcher   // on the labels of a series
	start      int64       // Unix nanoseconds
	end        int64
	headers    bool // view HEADERS

	aligner  monitoringpb.Aggregation_Aligner // ALIGN_NONE: raw points
	reducer  monitoringpb.Aggregation_Reducer
	period   int64
	groupBy  []field
	distinct bool // groupBy tells every series apart: each group holds one series

	kind      metric.MetricDescriptor_MetricKind // of the returned series
	valueType metric.MetricDescriptor_ValueType
}

// matches reports whether the series with key k passes the filter.
func (q *query) matches(k *seriesKey) bool {
	for i := range q.match {
		m := &q.match[i]
		if !m.match(k.label(m.field.kind, m.field.label, q.project)) {
			return false
		}
	}
	return true
}

// maxGroupBy bounds the distinct group-by fields: resource.type, three resource labels and two
// metric labels.
const maxGroupBy = 6

// gkey holds the values of the group-by fields of a series, in the order of query.groupBy.
type gkey [maxGroupBy]string

// row is one series of a result, before it is rendered as a TimeSeries.
type row struct {
	key    *seriesKey // the source series (no reducer)
	group  gkey       // the values of q.groupBy (with a reducer)
	points []outPoint // newest first
}

// outPoint is a returned point; value is i or f according to query.valueType.
type outPoint struct {
	start, end int64
	i          int64
	f          float64
}

// acc accumulates the points of one series in one alignment period.
type acc struct {
	k             int64 // period index, 0 for the period ending at the interval's end
	n, sum        int64
	minimum, peak int64
}

// contrib is the aligned point of one series in one period, on its way to its group.
type contrib struct {
	g int32
	p outPoint
}

// list runs q against the store. Points whose end is after cutoff are not yet ingested.
func (s *Store) list(q *query, cutoff int64) []row {
	if q.metric == nil || q.none {
		return nil
	}
	var (
		rows    []row
		backing []outPoint // the points of every row, which slice it once it stops growing
		offsets []int      // where each row's points start in backing
	)
	s.mu.RLock()
	var all []*series
	if p := s.projects[q.project]; p != nil {
		all = p.list[q.metric.id]
	}
	if q.aligner == monitoringpb.Aggregation_ALIGN_NONE {
		lo, hi := q.start, min(q.end, cutoff)
		if q.start == q.end {
			lo = q.end - 1 // the instant end
		}
		for _, sr := range all {
			if !q.matches(&sr.key) {
				continue
			}
			from := len(backing)
			sr.points(q.metric.id, lo, hi, func(p point) {
				backing = append(backing, outPoint{start: p.start, end: p.end, i: p.value, f: float64(p.value)})
			})
			if len(backing) > from {
				slices.Reverse(backing[from:]) // newest first
				rows = append(rows, row{key: &sr.key})
				offsets = append(offsets, from)
			}
		}
		s.mu.RUnlock()
		attach(rows, backing, offsets)
		rows = sortRows(rows, func(a, b *row) int { return a.key.compare(b.key) })
		return rows
	}

	// Alignment periods end at end, end-period, ... while they end after start; each reads the
	// points whose end is in (e-period, e], even before start (as an interval shorter than the
	// period still gets a whole period's worth).
	n := max(1, (q.end-q.start+q.period-1)/q.period)
	lo, hi := q.end-n*q.period, min(q.end, cutoff)
	reduce := q.reducer != monitoringpb.Aggregation_REDUCE_NONE
	var (
		accs     []acc
		contribs []contrib
		groups   map[gkey]int32
		keys     []gkey
	)
	if reduce && !q.distinct {
		groups = make(map[gkey]int32, len(all))
		contribs = make([]contrib, 0, len(all))
	} else {
		rows = make([]row, 0, len(all))
		offsets = make([]int, 0, len(all))
		backing = make([]outPoint, 0, len(all))
	}
	for _, sr := range all {
		if !q.matches(&sr.key) {
			continue
		}
		accs = accs[:0]
		sr.points(q.metric.id, lo, hi, func(p point) {
			k := (q.end - p.end) / q.period
			if l := len(accs); l > 0 && accs[l-1].k == k {
				a := &accs[l-1]
				a.n++
				a.sum += p.value
				a.minimum = min(a.minimum, p.value)
				a.peak = max(a.peak, p.value)
				return
			}
			accs = append(accs, acc{k: k, n: 1, sum: p.value, minimum: p.value, peak: p.value})
		})
		if len(accs) == 0 {
			continue
		}
		if !reduce || q.distinct {
			rows = append(rows, row{key: &sr.key})
			offsets = append(offsets, len(backing))
			for i := len(accs) - 1; i >= 0; i-- { // newest first
				p := q.aligned(accs[i])
				if reduce { // a group of one series
					r := racc{minI: p.i, maxI: p.i, minF: p.f, maxF: p.f}
					r.add(p)
					p = q.reduced(p.end, r)
				}
				backing = append(backing, p)
			}
			continue
		}
		gk := q.groupKey(&sr.key)
		g, ok := groups[gk]
		if !ok {
			g = int32(len(keys))
			groups[gk] = g
			keys = append(keys, gk)
		}
		for _, a := range accs {
			contribs = append(contribs, contrib{g: g, p: q.aligned(a)})
		}
	}
	s.mu.RUnlock()
	if !reduce {
		attach(rows, backing, offsets)
		rows = sortRows(rows, func(a, b *row) int { return a.key.compare(b.key) })
		return rows
	}
	if q.distinct {
		attach(rows, backing, offsets)
		for i := range rows {
			rows[i].group = q.groupKey(rows[i].key)
		}
		rows = sortRows(rows, func(a, b *row) int { return slices.Compare(a.group[:len(q.groupBy)], b.group[:len(q.groupBy)]) })
		return rows
	}

	// Fold the contributions of each group, period by period, newest first.
	slices.SortFunc(contribs, func(a, b contrib) int {
		if c := cmp.Compare(a.g, b.g); c != 0 {
			return c
		}
		return cmp.Compare(b.p.end, a.p.end)
	})
	rows = make([]row, 0, len(keys))
	for i := 0; i < len(contribs); {
		g := contribs[i].g
		rows = append(rows, row{group: keys[g]})
		offsets = append(offsets, len(backing))
		for i < len(contribs) && contribs[i].g == g {
			end := contribs[i].p.end
			r := racc{minI: contribs[i].p.i, maxI: contribs[i].p.i, minF: contribs[i].p.f, maxF: contribs[i].p.f}
			for ; i < len(contribs) && contribs[i].g == g && contribs[i].p.end == end; i++ {
				r.add(contribs[i].p)
			}
			backing = append(backing, q.reduced(end, r))
		}
	}
	attach(rows, backing, offsets)
	rows = sortRows(rows, func(a, b *row) int { return slices.Compare(a.group[:len(q.groupBy)], b.group[:len(q.groupBy)]) })
	return rows
}

// sortRows returns rows sorted by cmp. It sorts indexes, as rows are large to move.
func sortRows(rows []row, cmp func(a, b *row) int) []row {
	order := make([]int32, len(rows))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(a, b int32) int { return cmp(&rows[a], &rows[b]) })
	out := make([]row, len(rows))
	for i, j := range order {
		out[i] = rows[j]
	}
	return out
}

// attach gives each row its points: those from its offset to the next row's.
func attach(rows []row, backing []outPoint, offsets []int) {
	for i := range rows {
		end := len(backing)
		if i+1 < len(rows) {
			end = offsets[i+1]
		}
		rows[i].points = backing[offsets[i]:end:end]
	}
}

// compare orders series keys by location, job, result and attempt.
func (k *seriesKey) compare(o *seriesKey) int {
	if c := strings.Compare(k.location, o.location); c != 0 {
		return c
	}
	if c := strings.Compare(k.job, o.job); c != 0 {
		return c
	}
	if c := strings.Compare(k.result, o.result); c != 0 {
		return c
	}
	return strings.Compare(k.attempt, o.attempt)
}

// groupKey returns the values of the group-by fields of the series.
func (q *query) groupKey(k *seriesKey) gkey {
	var g gkey
	for i, f := range q.groupBy {
		g[i] = q.groupValue(k, f)
	}
	return g
}

func (q *query) groupValue(k *seriesKey, f field) string {
	if f.kind == fieldResourceType {
		return ResourceType
	}
	return k.label(f.kind, f.label, q.project)
}

// periodEnd is the end of alignment period k.
func (q *query) periodEnd(k int64) int64 { return q.end - k*q.period }

// aligned applies the per-series aligner to the points of one period.
func (q *query) aligned(a acc) outPoint {
	e := q.periodEnd(a.k)
	p := outPoint{start: e, end: e}
	if q.kind == metric.MetricDescriptor_DELTA {
		p.start = e - q.period
	}
	switch q.aligner {
	case monitoringpb.Aggregation_ALIGN_SUM, monitoringpb.Aggregation_ALIGN_DELTA:
		p.i = a.sum
	case monitoringpb.Aggregation_ALIGN_MIN:
		p.i = a.minimum
	case monitoringpb.Aggregation_ALIGN_MAX:
		p.i = a.peak
	case monitoringpb.Aggregation_ALIGN_COUNT:
		p.i = a.n
	case monitoringpb.Aggregation_ALIGN_MEAN:
		p.f = float64(a.sum) / float64(a.n)
		return p
	}
	p.f = float64(p.i)
	return p
}

// racc accumulates aligned values across series in one alignment period.
type racc struct {
	n          int64
	sumI       int64
	sumF       float64
	minI, maxI int64
	minF, maxF float64
}

func (r *racc) add(p outPoint) {
	r.n++
	r.sumI += p.i
	r.sumF += p.f
	r.minI, r.maxI = min(r.minI, p.i), max(r.maxI, p.i)
	r.minF, r.maxF = min(r.minF, p.f), max(r.maxF, p.f)
}

// reduced applies the cross-series reducer to the period ending at e.
func (q *query) reduced(e int64, r racc) outPoint {
	p := outPoint{start: e, end: e}
	if q.kind == metric.MetricDescriptor_DELTA {
		p.start = e - q.period
	}
	double := q.valueType == metric.MetricDescriptor_DOUBLE
	switch q.reducer {
	case monitoringpb.Aggregation_REDUCE_SUM:
		p.i, p.f = r.sumI, r.sumF
	case monitoringpb.Aggregation_REDUCE_MIN:
		p.i, p.f = r.minI, r.minF
	case monitoringpb.Aggregation_REDUCE_MAX:
		p.i, p.f = r.maxI, r.maxF
	case monitoringpb.Aggregation_REDUCE_COUNT:
		p.i = r.n
		double = false
	case monitoringpb.Aggregation_REDUCE_MEAN:
		p.f = r.sumF / float64(r.n)
		double = true
	}
	if !double {
		p.f = float64(p.i)
	}
	return p
}
