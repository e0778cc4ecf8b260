package scheduler

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"

	"cloud.google.com/go/scheduler/apiv1/schedulerpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"runwayjobs.dev/shared/emulator/clock"
)

// TestReplayMonth advances a manual clock by 30 days in one jump and checks that an hourly job
// fired every slot exactly once, in order, each with its own schedule time, before Advance
// returned; and that a second jump within the same hour fires nothing.
func TestReplayMonth(t *testing.T) {
	t0 := time.Date(2026, time.March, 1, 0, 0, 0, 0, time.UTC)
	c := clock.NewManual(t0)
	tg := newTarget(t, c, nil)
	pub := &recorder{}
	e := newEnv(t, Options{Clock: c, Publisher: pub})
	e.create(t, httpJob("hourly", "0 * * * *", tg.URL+"/hourly"))
	e.create(t, pubsubJob("daily", "0 6 * * *", "projects/p1/topics/daily", "tick"))

	c.Advance(30 * 24 * time.Hour)

	hits := tg.got()
	if len(hits) != 720 {
		t.Fatalf("hourly job fired %d times in 30 days, want 720", len(hits))
	}
	for i, h := range hits {
		want := t0.Add(time.Duration(i+1) * time.Hour)
		got, err := time.Parse(time.RFC3339, h.header.Get("X-CloudScheduler-ScheduleTime"))
		if err != nil || !got.Equal(want) {
			t.Fatalf("attempt %d: X-CloudScheduler-ScheduleTime %q, want %s", i, h.header.Get("X-CloudScheduler-ScheduleTime"), want.Format(time.RFC3339))
		}
	}
	if n := len(pub.messages()); n != 30 {
		t.Errorf("daily Pub/Sub job published %d times, want 30", n)
	}
	j := e.get(t, jobName("hourly"))
	if want := t0.Add(721 * time.Hour); !j.GetScheduleTime().AsTime().Equal(want) {
		t.Errorf("schedule_time %v, want %v", j.GetScheduleTime().AsTime(), want)
	}
	if want := t0.Add(720 * time.Hour); !j.GetLastAttemptTime().AsTime().Equal(want) {
		t.Errorf("last_attempt_time %v, want the last slot %v", j.GetLastAttemptTime().AsTime(), want)
	}
	if j.GetStatus() == nil || j.GetStatus().GetCode() != int32(codes.OK) {
		t.Errorf("status %v, want OK", j.GetStatus())
	}

	c.Advance(30 * time.Minute)
	if n := len(tg.got()); n != 720 {
		t.Errorf("after a jump inside the hour: %d attempts, want still 720", n)
	}
	c.Advance(30 * time.Minute)
	if n := len(tg.got()); n != 721 {
		t.Errorf("after reaching the next hour: %d attempts, want 721", n)
	}
}

// TestPauseResume checks that a paused job does not fire, that slots missed while paused are
// not replayed on resume, and the state preconditions.
func TestPauseResume(t *testing.T) {
	ctx := context.Background()
	c := clock.NewManual(start)
	tg := newTarget(t, c, nil)
	e := newEnv(t, Options{Clock: c})
	name := e.create(t, httpJob("p", "0 * * * *", tg.URL)).GetName()

	paused, err := e.client.PauseJob(ctx, &schedulerpb.PauseJobRequest{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	if paused.GetState() != schedulerpb.Job_PAUSED || paused.GetScheduleTime() != nil {
		t.Errorf("paused job: state %v schedule_time %v, want PAUSED and none", paused.GetState(), paused.GetScheduleTime())
	}
	if _, err := e.client.PauseJob(ctx, &schedulerpb.PauseJobRequest{Name: name}); code(err) != codes.FailedPrecondition {
		t.Errorf("pausing a paused job: %v, want FailedPrecondition", err)
	}
	c.Advance(5 * time.Hour)
	if n := len(tg.got()); n != 0 {
		t.Fatalf("paused job fired %d times", n)
	}
	resumed, err := e.client.ResumeJob(ctx, &schedulerpb.ResumeJobRequest{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	if want := start.Add(6 * time.Hour); resumed.GetState() != schedulerpb.Job_ENABLED || !resumed.GetScheduleTime().AsTime().Equal(want) {
		t.Errorf("resumed job: state %v schedule_time %v, want ENABLED and %v", resumed.GetState(), resumed.GetScheduleTime().AsTime(), want)
	}
	c.Advance(2 * time.Hour)
	hits := tg.got()
	if len(hits) != 2 || hits[0].header.Get("X-CloudScheduler-ScheduleTime") != start.Add(6*time.Hour).Format(time.RFC3339) {
		t.Errorf("after resume: %d attempts, want 2 starting at the first slot after resume", len(hits))
	}
}

// TestRunJob checks that RunJob dispatches now, also for a paused job, with the current time as
// schedule time, and records the attempt.
func TestRunJob(t *testing.T) {
	ctx := context.Background()
	c := clock.NewManual(start)
	tg := newTarget(t, c, func(int) int { return http.StatusNotFound })
	e := newEnv(t, Options{Clock: c})
	name := e.create(t, httpJob("r", "0 0 1 1 *", tg.URL)).GetName()
	if _, err := e.client.PauseJob(ctx, &schedulerpb.PauseJobRequest{Name: name}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.RunJob(ctx, &schedulerpb.RunJobRequest{Name: name}); err != nil {
		t.Fatalf("RunJob: %v", err)
	}
	waitFor(t, 5*time.Second, "the forced attempt to be recorded", func() bool { return e.get(t, name).GetLastAttemptTime() != nil })
	hits := tg.got()
	if len(hits) != 1 || hits[0].header.Get("X-CloudScheduler-ScheduleTime") != start.Format(time.RFC3339) {
		t.Fatalf("RunJob: %d attempts (%v), want 1 with schedule time %s", len(hits), hits, start.Format(time.RFC3339))
	}
	j := e.get(t, name)
	if j.GetStatus().GetCode() != int32(codes.NotFound) || !j.GetLastAttemptTime().AsTime().Equal(start) {
		t.Errorf("status %v last_attempt_time %v, want NOT_FOUND (HTTP 404) at %v", j.GetStatus(), j.GetLastAttemptTime().AsTime(), start)
	}
	if j.GetState() != schedulerpb.Job_PAUSED {
		t.Errorf("state %v, want still PAUSED", j.GetState())
	}
}

// TestAttemptHeaders checks the request an HTTP target receives.
func TestAttemptHeaders(t *testing.T) {
	tests := []struct {
		name       string
		target     *schedulerpb.HttpTarget
		wantMethod string
		wantBody   string
		wantHeader map[string]string // "" means absent
	}{
		{
			name:       "defaults",
			target:     &schedulerpb.HttpTarget{Body: []byte(`{"a":1}`)},
			wantMethod: "POST", wantBody: `{"a":1}`,
			wantHeader: map[string]string{
				"X-CloudScheduler": "true", "X-CloudScheduler-JobName": "hdr", "User-Agent": "Google-Cloud-Scheduler",
				"X-CloudScheduler-ScheduleTime": "2026-01-15T13:00:00Z", "Content-Type": "application/octet-stream",
				"Authorization": "",
			},
		},
		{
			name: "job headers, replaced and ignored ones",
			target: &schedulerpb.HttpTarget{HttpMethod: schedulerpb.HttpMethod_PUT, Body: []byte("b"), Headers: map[string]string{
				"Content-Type": "application/json", "X-Custom": "a, b", "User-Agent": "mine", "X-CloudScheduler-JobName": "forged",
				"X-Google-Thing": "no", "Authorization": "Bearer kept-without-token",
			}},
			wantMethod: "PUT", wantBody: "b",
			wantHeader: map[string]string{
				"Content-Type": "application/json", "X-Custom": "a, b", "User-Agent": "Google-Cloud-Scheduler",
				"X-CloudScheduler-JobName": "hdr", "X-Google-Thing": "", "Authorization": "Bearer kept-without-token",
			},
		},
		{
			name: "oidc token: accepted, none attached, Authorization overridden",
			target: &schedulerpb.HttpTarget{HttpMethod: schedulerpb.HttpMethod_GET, Headers: map[string]string{"Authorization": "Bearer x"},
				AuthorizationHeader: &schedulerpb.HttpTarget_OidcToken{OidcToken: &schedulerpb.OidcToken{ServiceAccountEmail: "sa@p1.iam.gserviceaccount.com"}}},
			wantMethod: "GET",
			wantHeader: map[string]string{"Authorization": "", "Content-Type": "", "X-CloudScheduler": "true"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := clock.NewManual(start)
			tg := newTarget(t, c, nil)
			e := newEnv(t, Options{Clock: c})
			tt.target.Uri = tg.URL + "/path"
			e.create(t, &schedulerpb.Job{Name: jobName("hdr"), Schedule: "0 * * * *", Target: &schedulerpb.Job_HttpTarget{HttpTarget: tt.target}})
			c.Advance(time.Hour)
			hits := tg.got()
			if len(hits) != 1 {
				t.Fatalf("%d attempts, want 1", len(hits))
			}
			h := hits[0]
			if h.method != tt.wantMethod || h.body != tt.wantBody || h.path != "/path" {
				t.Errorf("request %s %s body %q, want %s /path body %q", h.method, h.path, h.body, tt.wantMethod, tt.wantBody)
			}
			for k, want := range tt.wantHeader {
				if got := h.header.Get(k); got != want {
					t.Errorf("header %s = %q, want %q", k, got, want)
				}
			}
		})
	}
}

// TestRetry checks retry_config: the number of attempts, growing backoffs, the max_retry_duration
// bound and the final status. Backoffs are real time, so they are small here.
func TestRetry(t *testing.T) {
	const minB = 40 * time.Millisecond
	tests := []struct {
		name      string
		responses []int // per attempt; the last repeats
		retry     *schedulerpb.RetryConfig
		want      int // attempts
		wantCode  codes.Code
	}{
		{
			name: "two failures then success", responses: []int{500, 500, 200},
			retry: &schedulerpb.RetryConfig{RetryCount: 3, MinBackoffDuration: durationpb.New(minB), MaxBackoffDuration: durationpb.New(time.Second)},
			want:  3, wantCode: codes.OK,
		},
		{
			name: "retries exhausted", responses: []int{503},
			retry: &schedulerpb.RetryConfig{RetryCount: 2, MinBackoffDuration: durationpb.New(minB), MaxBackoffDuration: durationpb.New(time.Second)},
			want:  3, wantCode: codes.Unavailable,
		},
		{
			name: "no retry by default", responses: []int{500},
			retry: nil, want: 1, wantCode: codes.Internal,
		},
		{
			name: "bounded by max_retry_duration", responses: []int{500},
			// Retries would start about 40ms and 120ms after the first attempt; a limit of 100ms allows the first only.
			retry: &schedulerpb.RetryConfig{RetryCount: 5, MinBackoffDuration: durationpb.New(minB), MaxBackoffDuration: durationpb.New(time.Second), MaxRetryDuration: durationpb.New(100 * time.Millisecond)},
			want:  2, wantCode: codes.Internal,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := clock.NewManual(start)
			tg := newTarget(t, c, func(n int) int { return tt.responses[min(n, len(tt.responses)-1)] })
			e := newEnv(t, Options{Clock: c})
			j := httpJob("retry", "0 * * * *", tg.URL)
			j.RetryConfig = tt.retry
			e.create(t, j)
			c.Advance(time.Hour)
			waitFor(t, 5*time.Second, strconv.Itoa(tt.want)+" attempts", func() bool { return len(tg.got()) >= tt.want })
			time.Sleep(400 * time.Millisecond) // no further attempt may come
			hits := tg.got()
			if len(hits) != tt.want {
				t.Fatalf("%d attempts, want %d", len(hits), tt.want)
			}
			for i := 1; i < len(hits); i++ {
				gap := hits[i].real.Sub(hits[i-1].real)
				if want := minB << (i - 1); gap < want {
					t.Errorf("retry %d came %v after the previous attempt, want at least %v", i, gap, want)
				}
				if hits[i].header.Get("X-CloudScheduler-ScheduleTime") != hits[0].header.Get("X-CloudScheduler-ScheduleTime") {
					t.Errorf("retry %d has schedule time %s, want the slot's", i, hits[i].header.Get("X-CloudScheduler-ScheduleTime"))
				}
			}
			if len(hits) == 3 {
				if g1, g2 := hits[1].real.Sub(hits[0].real), hits[2].real.Sub(hits[1].real); g2 <= g1 {
					t.Errorf("backoffs %v then %v, want growing", g1, g2)
				}
			}
			if st := e.get(t, jobName("retry")).GetStatus(); codes.Code(st.GetCode()) != tt.wantCode {
				t.Errorf("status %v, want %v", st, tt.wantCode)
			}
		})
	}
}

// TestRetryStopsAtNextSlot checks that pending retries end when the next slot fires.
func TestRetryStopsAtNextSlot(t *testing.T) {
	c := clock.NewManual(start)
	tg := newTarget(t, c, func(int) int { return 500 })
	e := newEnv(t, Options{Clock: c})
	j := httpJob("slow-retry", "0 * * * *", tg.URL)
	j.RetryConfig = &schedulerpb.RetryConfig{RetryCount: 5, MinBackoffDuration: durationpb.New(300 * time.Millisecond)}
	e.create(t, j)
	c.Advance(time.Hour) // slot 1: attempt, retry pending in 300ms
	c.Advance(time.Hour) // slot 2: a new execution, slot 1's retries stop
	time.Sleep(450 * time.Millisecond)
	hits := tg.got()
	var slot1 int
	for _, h := range hits {
		if h.header.Get("X-CloudScheduler-ScheduleTime") == start.Add(time.Hour).Format(time.RFC3339) {
			slot1++
		}
	}
	if slot1 != 1 {
		t.Errorf("slot 1 was attempted %d times, want once (its retries end at the next slot)", slot1)
	}
	if len(hits) != 3 {
		t.Errorf("%d attempts, want 3 (slot 1, slot 2, slot 2's first retry)", len(hits))
	}
}

// TestPubsubTarget checks Pub/Sub delivery, and that a publish failure is a failed, retried attempt.
func TestPubsubTarget(t *testing.T) {
	tests := []struct {
		name     string
		pub      *recorder // nil: no Publisher
		retries  int32
		wantMsgs int
		wantCode codes.Code
	}{
		{name: "published", pub: &recorder{}, wantMsgs: 1, wantCode: codes.OK},
		{name: "failure retried", pub: &recorder{fail: 1, err: status.Error(codes.NotFound, "topic gone")}, retries: 1, wantMsgs: 1, wantCode: codes.OK},
		{name: "failure recorded", pub: &recorder{fail: 1, err: status.Error(codes.NotFound, "topic gone")}, wantMsgs: 0, wantCode: codes.NotFound},
		{name: "plain error", pub: &recorder{fail: 1, err: errors.New("boom")}, wantMsgs: 0, wantCode: codes.Unknown},
		{name: "no publisher", pub: nil, wantMsgs: 0, wantCode: codes.FailedPrecondition},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := clock.NewManual(start)
			opts := Options{Clock: c}
			if tt.pub != nil {
				opts.Publisher = tt.pub
			}
			e := newEnv(t, opts)
			j := pubsubJob("ps", "*/10 * * * *", "projects/p1/topics/ticks", "payload")
			j.RetryConfig = &schedulerpb.RetryConfig{RetryCount: tt.retries, MinBackoffDuration: durationpb.New(10 * time.Millisecond)}
			e.create(t, j)
			c.Advance(10 * time.Minute)
			waitFor(t, 5*time.Second, "status "+tt.wantCode.String(), func() bool {
				return codes.Code(e.get(t, jobName("ps")).GetStatus().GetCode()) == tt.wantCode
			})
			if tt.pub != nil {
				msgs := tt.pub.messages()
				if len(msgs) != tt.wantMsgs {
					t.Fatalf("%d messages, want %d", len(msgs), tt.wantMsgs)
				}
				if len(msgs) == 1 && (msgs[0].topic != "projects/p1/topics/ticks" || msgs[0].data != "payload" || msgs[0].attrs["k"] != "v") {
					t.Errorf("message %+v, want topic, data and attributes of the job", msgs[0])
				}
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	// The example of the RetryConfig.max_doublings documentation.
	rc := &schedulerpb.RetryConfig{RetryCount: 5, MinBackoffDuration: durationpb.New(10 * time.Second), MaxBackoffDuration: durationpb.New(300 * time.Second), MaxDoublings: 3}
	want := []time.Duration{10, 20, 40, 80, 160, 240, 300, 300}
	for i, w := range want {
		rc.RetryCount = int32(i + 1)
		got, ok := backoff(rc, i+1, 0)
		if !ok || got != w*time.Second {
			t.Errorf("retry %d: wait %v (allowed %v), want %v", i+1, got, ok, w*time.Second)
		}
	}
	rc.RetryCount = 2
	if _, ok := backoff(rc, 3, 0); ok {
		t.Error("a third retry was allowed with retry_count 2")
	}
	rc.MaxRetryDuration = durationpb.New(25 * time.Second)
	if _, ok := backoff(rc, 2, 10*time.Second); ok {
		t.Error("a retry starting at 30s was allowed with max_retry_duration 25s")
	}
}

// TestRealClockLateness runs the real-clock firing loop with an offset clock that puts the next
// minute one second away, and checks that every job fires once, within a second of its slot.
// It also checks re-arming: the loop is asleep on a yearly job when the minute jobs arrive.
func TestRealClockLateness(t *testing.T) {
	c := &offsetClock{}
	slot := c.setNextMinuteIn(time.Second)
	tg := newTarget(t, c, nil)
	e := newEnv(t, Options{Clock: c})
	e.create(t, httpJob("yearly", "0 0 1 1 *", tg.URL))
	const jobs = 20
	for i := range jobs {
		e.create(t, httpJob("minute-"+strconv.Itoa(i), "* * * * *", tg.URL))
	}
	waitFor(t, 3*time.Second, "every job to fire", func() bool { return len(tg.got()) >= jobs })
	time.Sleep(100 * time.Millisecond)
	hits := tg.got()
	if len(hits) != jobs {
		t.Fatalf("%d attempts, want %d", len(hits), jobs)
	}
	var worst time.Duration
	for _, h := range hits {
		if got := h.header.Get("X-CloudScheduler-ScheduleTime"); got != slot.Format(time.RFC3339) {
			t.Errorf("schedule time %s, want %s", got, slot.Format(time.RFC3339))
		}
		late := h.at.Sub(slot)
		if late < 0 || late > time.Second {
			t.Errorf("attempt arrived %v after the slot, want within [0, 1s]", late)
		}
		worst = max(worst, late)
	}
	t.Logf("%d jobs on one slot: worst lateness %v", jobs, worst)
	if j := e.get(t, jobName("minute-0")); !j.GetScheduleTime().AsTime().Equal(slot.Add(time.Minute)) {
		t.Errorf("schedule_time after firing %v, want %v", j.GetScheduleTime().AsTime(), slot.Add(time.Minute))
	}
}

// BenchmarkSlotLateness measures how late the real-clock loop delivers a slot: each iteration
// shifts the clock so that the next minute is 20ms away, creates a job and waits for its attempt.
// The lateness is reported as ms-late/op (the ns/op figure includes the 20ms wait).
func BenchmarkSlotLateness(b *testing.B) {
	c := &offsetClock{}
	tg := newTarget(b, c, nil)
	e := newEnv(b, Options{Clock: c})
	ctx := context.Background()
	var total, worst time.Duration
	for i := 0; b.Loop(); i++ {
		slot := c.setNextMinuteIn(20 * time.Millisecond)
		name := e.create(b, httpJob("bench", "* * * * *", tg.URL)).GetName()
		waitFor(b, 2*time.Second, "the slot", func() bool { return len(tg.got()) > i })
		late := tg.got()[i].at.Sub(slot)
		total += late
		worst = max(worst, late)
		if err := e.client.DeleteJob(ctx, &schedulerpb.DeleteJobRequest{Name: name}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms-late/op")
	b.ReportMetric(float64(worst.Microseconds())/1000, "ms-worst")
}
