package monitoring

import (
	"cmp"
	"slices"
	"strconv"
	"sync"
	"time"

	"runwayjobs.dev/shared/emulator/clock"
)

const minute = int64(time.Minute)

// Store holds the Cloud Run job metrics of every project. The Cloud Run emulator records into it
// (it implements cloudrun.Recorder); a Service reads it. It is safe for concurrent use.
//
// Counts are kept in one-minute buckets per series, as Cloud Run reports them; running
// executions are kept as the start and completion events and turned into one point per minute
// when read.
type Store struct {
	clock clock.Clock

	mu       sync.RWMutex
	projects map[string]*projectData
}

// NewStore returns an empty store. c stamps calls whose time is zero.
func NewStore(c clock.Clock) *Store {
	if c == nil {
		c = clock.Real{}
	}
	return &Store{clock: c, projects: map[string]*projectData{}}
}

// projectData is the series of one project, by metric.
type projectData struct {
	series [numMetrics]map[seriesKey]*series
	list   [numMetrics][]*series // the same series, in creation order, for fast scans
	latest [numMetrics]int64     // end of the latest point written, for active_only
}

// seriesKey identifies a series within a project and metric: the resource labels other than
// project_id, and the metric labels (empty where the metric has none).
type seriesKey struct {
	location, job, result, attempt string
}

// label returns the value of a resource or metric label of the series.
func (k *seriesKey) label(kind fieldKind, name, project string) string {
	switch {
	case kind == fieldResourceLabel && name == "project_id":
		return project
	case kind == fieldResourceLabel && name == "location":
		return k.location
	case kind == fieldResourceLabel && name == "job_name":
		return k.job
	case kind == fieldMetricLabel && name == "result":
		return k.result
	case kind == fieldMetricLabel && name == "attempt":
		return k.attempt
	}
	return ""
}

// series holds the points of one time series.
type series struct {
	key     seriesKey
	buckets []bucket     // DELTA metrics: one per minute with completions, by start
	events  []event      // running_executions as recorded, by time
	written []gaugePoint // running_executions as written with CreateTimeSeries, by time
}

// bucket is the count of one minute [start, start+1m).
type bucket struct {
	start int64 // Unix nanoseconds, a multiple of a minute
	value int64
}

// event is an execution starting (+1) or completing (-1).
type event struct {
	at    int64 // Unix nanoseconds
	delta int64
	level int64 // executions running after this event (never below zero)
}

// gaugePoint is a gauge value written through CreateTimeSeries.
type gaugePoint struct{ at, value int64 }

// ExecutionStarted records that an execution of job started at at.
func (s *Store) ExecutionStarted(project, location, job string, at time.Time) {
	t := s.stamp(at)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addEvent(project, seriesKey{location: location, job: job}, t, +1)
}

// ExecutionCompleted records that an execution of job completed at at with result
// ("succeeded", "failed" or "cancelled").
func (s *Store) ExecutionCompleted(project, location, job, result string, at time.Time) {
	t := s.stamp(at)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addEvent(project, seriesKey{location: location, job: job}, t, -1)
	s.addCount(project, completedExecutions, seriesKey{location: location, job: job, result: result}, t, 1)
}

// TaskAttemptCompleted records that attempt (0 for the first) of a task of job completed at at
// with result.
func (s *Store) TaskAttemptCompleted(project, location, job, result string, attempt int, at time.Time) {
	t := s.stamp(at)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addCount(project, completedTaskAttempts, seriesKey{location: location, job: job, result: result, attempt: strconv.Itoa(attempt)}, t, 1)
}

func (s *Store) stamp(at time.Time) int64 {
	if at.IsZero() {
		at = s.clock.Now()
	}
	return at.UnixNano()
}

// get returns the series, creating it. The caller holds s.mu for writing.
func (s *Store) get(project string, m metricID, k seriesKey) (*projectData, *series) {
	p := s.projects[project]
	if p == nil {
		p = &projectData{}
		s.projects[project] = p
	}
	if p.series[m] == nil {
		p.series[m] = map[seriesKey]*series{}
	}
	sr := p.series[m][k]
	if sr == nil {
		sr = &series{key: k}
		p.series[m][k] = sr
		p.list[m] = append(p.list[m], sr)
	}
	return p, sr
}

// addCount adds n to the minute bucket holding t. The caller holds s.mu for writing.
func (s *Store) addCount(project string, m metricID, k seriesKey, t, n int64) {
	p, sr := s.get(project, m, k)
	start := floorMinute(t)
	p.latest[m] = max(p.latest[m], start+minute)
	if l := len(sr.buckets); l > 0 && sr.buckets[l-1].start == start {
		sr.buckets[l-1].value += n
		return
	}
	if l := len(sr.buckets); l == 0 || sr.buckets[l-1].start < start {
		sr.buckets = append(sr.buckets, bucket{start, n})
		return
	}
	i, found := slices.BinarySearchFunc(sr.buckets, start, func(b bucket, t int64) int { return cmp.Compare(b.start, t) })
	if found {
		sr.buckets[i].value += n
		return
	}
	sr.buckets = slices.Insert(sr.buckets, i, bucket{start, n})
}

// addEvent records a change of running executions. The caller holds s.mu for writing.
func (s *Store) addEvent(project string, k seriesKey, t, delta int64) {
	p, sr := s.get(project, runningExecutions, k)
	p.latest[runningExecutions] = max(p.latest[runningExecutions], floorMinute(t)+2*minute)
	// Insert after any event at the same time, so a start and a completion recorded at one
	// instant keep their order; then recompute the levels from there (rarely more than one).
	i := len(sr.events)
	for i > 0 && sr.events[i-1].at > t {
		i--
	}
	sr.events = slices.Insert(sr.events, i, event{at: t, delta: delta})
	for j := i; j < len(sr.events); j++ {
		prev := int64(0)
		if j > 0 {
			prev = sr.events[j-1].level
		}
		sr.events[j].level = max(0, prev+sr.events[j].delta)
	}
}

// setGauge writes a gauge value at t, replacing one at the same time. The caller holds s.mu for
// writing.
func (s *Store) setGauge(project string, k seriesKey, t, v int64) {
	p, sr := s.get(project, runningExecutions, k)
	p.latest[runningExecutions] = max(p.latest[runningExecutions], t)
	i, found := slices.BinarySearchFunc(sr.written, t, func(g gaugePoint, t int64) int { return cmp.Compare(g.at, t) })
	if found {
		sr.written[i].value = v
		return
	}
	sr.written = slices.Insert(sr.written, i, gaugePoint{t, v})
}

// point is a stored or derived point: its interval and value.
type point struct{ start, end, value int64 }

// points calls fn, oldest first, for each point of sr whose end is in (lo, hi].
func (sr *series) points(m metricID, lo, hi int64, fn func(point)) {
	if hi <= lo {
		return
	}
	if m != runningExecutions {
		// Buckets end a minute after they start: the first one with end > lo starts after lo-1m.
		i, _ := slices.BinarySearchFunc(sr.buckets, lo-minute+1, func(b bucket, t int64) int { return cmp.Compare(b.start, t) })
		for ; i < len(sr.buckets) && sr.buckets[i].start+minute <= hi; i++ {
			b := sr.buckets[i]
			fn(point{b.start, b.start + minute, b.value})
		}
		return
	}
	if len(sr.written) == 0 {
		sr.derived(lo, hi, fn)
		return
	}
	// Merge the derived minute points with the written ones; a written point wins a tie.
	var derived []point
	sr.derived(lo, hi, func(p point) { derived = append(derived, p) })
	i, _ := slices.BinarySearchFunc(sr.written, lo+1, func(g gaugePoint, t int64) int { return cmp.Compare(g.at, t) })
	for _, d := range derived {
		for ; i < len(sr.written) && sr.written[i].at <= hi && sr.written[i].at <= d.end; i++ {
			w := sr.written[i]
			fn(point{w.at, w.at, w.value})
			if w.at == d.end {
				d.end = -1 // replaced
			}
		}
		if d.end >= 0 {
			fn(d)
		}
	}
	for ; i < len(sr.written) && sr.written[i].at <= hi; i++ {
		fn(point{sr.written[i].at, sr.written[i].at, sr.written[i].value})
	}
}

// derived calls fn, oldest first, for the running-executions points derived from the events
// whose end is in (lo, hi]. Minute m yields a point at m+1m whose value is the most executions
// running at any time during [m, m+1m); minutes with none running yield a point only right after
// a minute that had some (so the series drops to zero and then stops).
func (sr *series) derived(lo, hi int64, fn func(point)) {
	ev := sr.events
	if len(ev) == 0 {
		return
	}
	first, last := floorMinute(ev[0].at), floorMinute(ev[len(ev)-1].at)+minute
	if ev[len(ev)-1].level > 0 {
		last = hi // still running: a point every minute up to hi
	}
	// The point of minute m ends at m+1m: lo < m+1m <= hi.
	from, to := max(first, floorMinute(lo)), min(last, floorMinute(hi-minute))
	if from > to {
		return
	}
	// Start one minute early to know whether the minute before `from` had executions running.
	m := from - minute
	i, _ := slices.BinarySearchFunc(ev, m, func(e event, t int64) int { return cmp.Compare(e.at, t) })
	prev := int64(0)
	for m <= to {
		level := int64(0)
		if i > 0 {
			level = ev[i-1].level
		}
		peak := level
		for ; i < len(ev) && ev[i].at < m+minute; i++ {
			peak = max(peak, ev[i].level)
		}
		if m >= from && (peak > 0 || prev > 0) {
			fn(point{m + minute, m + minute, peak})
		}
		prev = peak
		if peak == 0 {
			// Idle: jump to the minute of the next event.
			if i == len(ev) {
				return
			}
			m = max(m+minute, floorMinute(ev[i].at))
			prev = 0
			continue
		}
		m += minute
	}
}

func floorMinute(t int64) int64 {
	r := t % minute
	if r < 0 {
		r += minute
	}
	return t - r
}
