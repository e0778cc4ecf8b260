package detect

import (
	"fmt"
	"testing"
	"time"

	"runwayjobs.dev/shared/platform"
)

// BenchmarkEvaluate10kJobs is the pure evaluation of one tick over 10,000 jobs (schedules from
// every minute to monthly), a sixth of which completed an execution in the window, after an
// hour of ticks. Target: under 500 ms (the I/O is in the monitor package's BenchmarkTick10kJobs).
func BenchmarkEvaluate10kJobs(b *testing.B) {
	schedules := []string{"*/5 * * * *", "0 * * * *", "17 * * * *", "30 2 * * *", "0 9 * * 1", "0 0 1 * *", "*/15 * * * *", "", "* * * * *", "45 */6 * * *"}
	obs := make([]Observation, 10_000)
	for i := range obs {
		s := settings(func(s *platform.Settings) {
			s.Workload, s.Schedule = fmt.Sprintf("job-%05d", i), schedules[i%len(schedules)]
		})
		obs[i] = Observation{Job: Job{Key: Key{Project: "p", Location: "us-east1", Job: s.Workload}, Settings: s, SlotOwner: true, Channels: []string{"slack"}}}
	}
	// An hour of ticks builds the state, every job running on schedule.
	st := &State{Watermark: t0}
	tick := func(st *State, t time.Time, withExecs bool) (*State, int) {
		for i := range obs {
			o := &obs[i]
			o.Read, o.Executions = false, nil
			if withExecs && i%6 == t.Minute()%6 {
				o.Read = true
				x := Execution{Name: fmt.Sprintf("%s/executions/x-%d", o.Job.Key.Name(), t.Unix()), Created: t.Add(-50 * time.Second), Started: t.Add(-49 * time.Second),
					Completed: t.Add(-10 * time.Second), Result: Succeeded, Trigger: platform.TriggerSchedule}
				if i%12 == 0 {
					x.Result = Failed
				}
				o.Executions = []Execution{x}
			}
		}
		ns, alerts := Evaluate(st, obs, t, Config{})
		ns.Outbox = nil
		return ns, len(alerts)
	}
	for m := 1; m <= 60; m++ {
		st, _ = tick(st, t0.Add(time.Duration(m)*time.Minute), true)
	}
	t := t0.Add(61 * time.Minute)
	b.ReportAllocs()
	var alerts int
	for b.Loop() {
		_, alerts = tick(st, t, true)
	}
	b.ReportMetric(float64(alerts), "alerts/op")
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/op")
}
