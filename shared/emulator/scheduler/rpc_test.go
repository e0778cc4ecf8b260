package scheduler

import (
	"context"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/scheduler/apiv1/schedulerpb"
	"google.golang.org/api/iterator"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"runwayjobs.dev/shared/emulator/clock"
)

var start = time.Date(2026, time.January, 15, 12, 0, 0, 0, time.UTC)

func TestCreateJobErrors(t *testing.T) {
	e := newEnv(t, Options{Clock: clock.NewManual(start)})
	e.create(t, httpJob("exists", "0 * * * *", "http://example.invalid/"))
	withRetry := func(rc *schedulerpb.RetryConfig) *schedulerpb.Job {
		j := httpJob("r", "0 * * * *", "http://example.invalid/")
		j.RetryConfig = rc
		return j
	}
	tests := []struct {
		name   string
		parent string
		job    *schedulerpb.Job
		want   codes.Code
	}{
		{name: "ok", parent: testParent, job: httpJob("ok", "*/5 * * * *", "http://example.invalid/"), want: codes.OK},
		{name: "ok pubsub", parent: testParent, job: pubsubJob("ps", "0 9 * * 1", "projects/p1/topics/t", "x"), want: codes.OK},
		{name: "ok id with underscores", parent: testParent, job: httpJob("a_B-9", "0 * * * *", "https://example.invalid/"), want: codes.OK},
		{name: "ok id of 500 chars", parent: testParent, job: httpJob(strings.Repeat("a", 500), "0 * * * *", "http://example.invalid/"), want: codes.OK},
		{name: "ok time zone utc", parent: testParent, job: func() *schedulerpb.Job {
			j := httpJob("utc", "0 * * * *", "http://x.invalid/")
			j.TimeZone = "utc"
			return j
		}(), want: codes.OK},
		{name: "already exists", parent: testParent, job: httpJob("exists", "0 * * * *", "http://example.invalid/"), want: codes.AlreadyExists},
		{name: "bad parent", parent: "projects/p1", job: httpJob("x", "0 * * * *", "http://example.invalid/"), want: badName()},
		{name: "no job", parent: testParent, job: nil, want: codes.InvalidArgument},
		{name: "no name", parent: testParent, job: &schedulerpb.Job{Schedule: "0 * * * *", Target: &schedulerpb.Job_HttpTarget{HttpTarget: &schedulerpb.HttpTarget{Uri: "http://x.invalid/"}}}, want: codes.InvalidArgument},
		{name: "name under other parent", parent: testParent, job: func() *schedulerpb.Job {
			j := httpJob("x", "0 * * * *", "http://x.invalid/")
			j.Name = "projects/p1/locations/us-east1/jobs/x"
			return j
		}(), want: codes.InvalidArgument},
		{name: "id with dot", parent: testParent, job: httpJob("a.b", "0 * * * *", "http://x.invalid/"), want: codes.InvalidArgument},
		{name: "id of 501 chars", parent: testParent, job: httpJob(strings.Repeat("a", 501), "0 * * * *", "http://x.invalid/"), want: codes.InvalidArgument},
		{name: "no schedule", parent: testParent, job: httpJob("x", "", "http://x.invalid/"), want: codes.InvalidArgument},
		{name: "bad schedule", parent: testParent, job: httpJob("x", "61 * * * *", "http://x.invalid/"), want: codes.InvalidArgument},
		{name: "six fields", parent: testParent, job: httpJob("x", "0 0 * * * *", "http://x.invalid/"), want: codes.InvalidArgument},
		{name: "app engine schedule", parent: testParent, job: httpJob("ae", "every 5 minutes", "http://x.invalid/"), want: codes.OK},
		{name: "app engine schedule off the hour", parent: testParent, job: httpJob("x", "every 7 minutes", "http://x.invalid/"), want: codes.InvalidArgument},
		{name: "bad time zone", parent: testParent, job: func() *schedulerpb.Job {
			j := httpJob("x", "0 * * * *", "http://x.invalid/")
			j.TimeZone = "Mars/Olympus"
			return j
		}(), want: codes.InvalidArgument},
		{name: "no target", parent: testParent, job: &schedulerpb.Job{Name: jobName("x"), Schedule: "0 * * * *"}, want: codes.InvalidArgument},
		{name: "app engine target", parent: testParent, job: &schedulerpb.Job{Name: jobName("x"), Schedule: "0 * * * *", Target: &schedulerpb.Job_AppEngineHttpTarget{AppEngineHttpTarget: &schedulerpb.AppEngineHttpTarget{RelativeUri: "/"}}}, want: codes.InvalidArgument},
		{name: "uri without scheme", parent: testParent, job: httpJob("x", "0 * * * *", "example.invalid/"), want: codes.InvalidArgument},
		{name: "body with GET", parent: testParent, job: func() *schedulerpb.Job {
			j := httpJob("x", "0 * * * *", "http://x.invalid/")
			j.GetHttpTarget().HttpMethod = schedulerpb.HttpMethod_GET
			j.GetHttpTarget().Body = []byte("b")
			return j
		}(), want: codes.InvalidArgument},
		{name: "attempt deadline too short", parent: testParent, job: func() *schedulerpb.Job {
			j := httpJob("x", "0 * * * *", "http://x.invalid/")
			j.AttemptDeadline = durationpb.New(time.Second)
			return j
		}(), want: codes.InvalidArgument},
		{name: "attempt deadline too long", parent: testParent, job: func() *schedulerpb.Job {
			j := httpJob("x", "0 * * * *", "http://x.invalid/")
			j.AttemptDeadline = durationpb.New(time.Hour)
			return j
		}(), want: codes.InvalidArgument},
		{name: "topic in other project", parent: testParent, job: pubsubJob("x", "0 * * * *", "projects/p2/topics/t", "x"), want: codes.InvalidArgument},
		{name: "bad topic", parent: testParent, job: pubsubJob("x", "0 * * * *", "topics/t", "x"), want: codes.InvalidArgument},
		{name: "empty message", parent: testParent, job: &schedulerpb.Job{Name: jobName("x"), Schedule: "0 * * * *", Target: &schedulerpb.Job_PubsubTarget{PubsubTarget: &schedulerpb.PubsubTarget{TopicName: "projects/p1/topics/t"}}}, want: codes.InvalidArgument},
		{name: "retry count 5", parent: testParent, job: withRetry(&schedulerpb.RetryConfig{RetryCount: 5}), want: codes.OK},
		{name: "retry count 6", parent: testParent, job: withRetry(&schedulerpb.RetryConfig{RetryCount: 6}), want: codes.InvalidArgument},
		{name: "retry count -1", parent: testParent, job: withRetry(&schedulerpb.RetryConfig{RetryCount: -1}), want: codes.InvalidArgument},
		{name: "negative doublings", parent: testParent, job: withRetry(&schedulerpb.RetryConfig{MaxDoublings: -1}), want: codes.InvalidArgument},
		{name: "negative backoff", parent: testParent, job: withRetry(&schedulerpb.RetryConfig{MinBackoffDuration: durationpb.New(-time.Second)}), want: codes.InvalidArgument},
		{name: "min above max backoff", parent: testParent, job: withRetry(&schedulerpb.RetryConfig{MinBackoffDuration: durationpb.New(time.Minute), MaxBackoffDuration: durationpb.New(time.Second)}), want: codes.InvalidArgument},
		{name: "long description", parent: testParent, job: func() *schedulerpb.Job {
			j := httpJob("x", "0 * * * *", "http://x.invalid/")
			j.Description = strings.Repeat("d", 501)
			return j
		}(), want: codes.InvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.client.CreateJob(context.Background(), &schedulerpb.CreateJobRequest{Parent: tt.parent, Job: tt.job})
			if got := code(err); got != tt.want {
				t.Errorf("CreateJob: code %v (%v), want %v", got, err, tt.want)
			}
		})
	}
}

func TestCRUD(t *testing.T) {
	ctx := context.Background()
	c := clock.NewManual(start)
	e := newEnv(t, Options{Clock: c})

	in := httpJob("job-1", "30 * * * *", "http://example.invalid/run")
	in.Description = "hourly"
	in.State = schedulerpb.Job_PAUSED // output only: ignored
	created := e.create(t, in)
	if created.GetState() != schedulerpb.Job_ENABLED {
		t.Errorf("state = %v, want ENABLED", created.GetState())
	}
	if got, want := created.GetScheduleTime().AsTime(), start.Add(30*time.Minute); !got.Equal(want) {
		t.Errorf("schedule_time = %v, want %v", got, want)
	}
	if got := created.GetUserUpdateTime().AsTime(); !got.Equal(start) {
		t.Errorf("user_update_time = %v, want %v", got, start)
	}
	if got := created.GetHttpTarget().GetHttpMethod(); got != schedulerpb.HttpMethod_POST {
		t.Errorf("http_method = %v, want POST (the default)", got)
	}
	if got := created.GetAttemptDeadline().AsDuration(); got != 3*time.Minute {
		t.Errorf("attempt_deadline = %v, want 3m", got)
	}
	wantRetry := &schedulerpb.RetryConfig{MaxRetryDuration: durationpb.New(0), MinBackoffDuration: durationpb.New(5 * time.Second), MaxBackoffDuration: durationpb.New(time.Hour), MaxDoublings: 5}
	if !proto.Equal(created.GetRetryConfig(), wantRetry) {
		t.Errorf("retry_config = %v, want %v", created.GetRetryConfig(), wantRetry)
	}
	if got := e.get(t, in.GetName()); !proto.Equal(got, created) {
		t.Errorf("GetJob = %v, want %v", got, created)
	}

	for _, id := range []string{"job-2", "job-3", "job-4", "job-5"} {
		e.create(t, httpJob(id, "0 0 * * *", "http://example.invalid/"))
	}
	// A job in another location is not listed.
	other := httpJob("elsewhere", "0 0 * * *", "http://example.invalid/")
	other.Name = "projects/p1/locations/us-east1/jobs/elsewhere"
	if _, err := e.client.CreateJob(ctx, &schedulerpb.CreateJobRequest{Parent: "projects/p1/locations/us-east1", Job: other}); err != nil {
		t.Fatal(err)
	}
	// Page by hand (iterator.Pager sends page_size and page_token), then let the iterator page.
	var names []string
	pages, token := 0, ""
	for {
		pager := iterator.NewPager(e.client.ListJobs(ctx, &schedulerpb.ListJobsRequest{Parent: testParent}), 2, token)
		var page []*schedulerpb.Job
		next, err := pager.NextPage(&page)
		if err != nil {
			t.Fatalf("ListJobs page %d: %v", pages+1, err)
		}
		pages++
		for _, j := range page {
			names = append(names, strings.TrimPrefix(j.GetName(), testParent+"/jobs/"))
		}
		if token = next; token == "" || pages > 5 {
			break
		}
	}
	if want := "job-1 job-2 job-3 job-4 job-5"; strings.Join(names, " ") != want || pages != 3 {
		t.Errorf("paged ListJobs = %v in %d pages, want %s in 3", names, pages, want)
	}
	all := e.client.ListJobs(ctx, &schedulerpb.ListJobsRequest{Parent: testParent, PageSize: 2})
	n := 0
	for {
		_, err := all.Next()
		if err == iterator.Done {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 5 {
		t.Errorf("iterating ListJobs gave %d jobs, want 5", n)
	}
	if _, err := e.client.ListJobs(ctx, &schedulerpb.ListJobsRequest{Parent: testParent, PageToken: "garbage"}).Next(); code(err) != codes.InvalidArgument {
		t.Errorf("ListJobs with a bad token: %v, want InvalidArgument", err)
	}
	if _, err := e.client.ListJobs(ctx, &schedulerpb.ListJobsRequest{Parent: "projects/p1"}).Next(); code(err) != badName() {
		t.Errorf("ListJobs with a bad parent: %v, want %v", err, badName())
	}

	if err := e.client.DeleteJob(ctx, &schedulerpb.DeleteJobRequest{Name: in.GetName()}); err != nil {
		t.Fatalf("DeleteJob: %v", err)
	}
	tests := []struct {
		name string
		call func() error
		want codes.Code
	}{
		{name: "get deleted", call: func() error {
			_, err := e.client.GetJob(ctx, &schedulerpb.GetJobRequest{Name: in.GetName()})
			return err
		}, want: codes.NotFound},
		{name: "delete deleted", call: func() error { return e.client.DeleteJob(ctx, &schedulerpb.DeleteJobRequest{Name: in.GetName()}) }, want: codes.NotFound},
		{name: "pause deleted", call: func() error {
			_, err := e.client.PauseJob(ctx, &schedulerpb.PauseJobRequest{Name: in.GetName()})
			return err
		}, want: codes.NotFound},
		{name: "resume deleted", call: func() error {
			_, err := e.client.ResumeJob(ctx, &schedulerpb.ResumeJobRequest{Name: in.GetName()})
			return err
		}, want: codes.NotFound},
		{name: "run deleted", call: func() error {
			_, err := e.client.RunJob(ctx, &schedulerpb.RunJobRequest{Name: in.GetName()})
			return err
		}, want: codes.NotFound},
		{name: "update deleted", call: func() error {
			_, err := e.client.UpdateJob(ctx, &schedulerpb.UpdateJobRequest{Job: &schedulerpb.Job{Name: in.GetName(), Description: "x"}})
			return err
		}, want: codes.NotFound},
		{name: "get malformed", call: func() error { _, err := e.client.GetJob(ctx, &schedulerpb.GetJobRequest{Name: "jobs/x"}); return err }, want: badName()},
		{name: "resume enabled", call: func() error {
			_, err := e.client.ResumeJob(ctx, &schedulerpb.ResumeJobRequest{Name: jobName("job-2")})
			return err
		}, want: codes.FailedPrecondition},
		{name: "recreate deleted", call: func() error {
			_, err := e.client.CreateJob(ctx, &schedulerpb.CreateJobRequest{Parent: testParent, Job: httpJob("job-1", "0 * * * *", "http://x.invalid/")})
			return err
		}, want: codes.OK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); code(err) != tt.want {
				t.Errorf("code %v (%v), want %v", code(err), err, tt.want)
			}
		})
	}
}

func TestUpdateJob(t *testing.T) {
	ctx := context.Background()
	base := func() *schedulerpb.Job {
		j := httpJob("u", "0 * * * *", "http://example.invalid/a")
		j.Description = "before"
		j.GetHttpTarget().Headers = map[string]string{"A": "1"}
		return j
	}
	tests := []struct {
		name  string
		job   *schedulerpb.Job // Name is set to the job's
		paths []string
		want  codes.Code
		check func(t *testing.T, got *schedulerpb.Job)
	}{
		{
			name: "mask changes only the masked field", paths: []string{"description"},
			job: &schedulerpb.Job{Description: "after", Schedule: "5 * * * *"},
			check: func(t *testing.T, got *schedulerpb.Job) {
				if got.GetDescription() != "after" || got.GetSchedule() != "0 * * * *" {
					t.Errorf("description %q schedule %q, want after and the old schedule", got.GetDescription(), got.GetSchedule())
				}
			},
		},
		{
			name: "masked field absent from the request is cleared", paths: []string{"description"},
			job: &schedulerpb.Job{},
			check: func(t *testing.T, got *schedulerpb.Job) {
				if got.GetDescription() != "" {
					t.Errorf("description %q, want cleared", got.GetDescription())
				}
			},
		},
		{
			name: "schedule and time zone move schedule_time", paths: []string{"schedule", "time_zone"},
			job: &schedulerpb.Job{Schedule: "0 9 * * *", TimeZone: "Europe/Berlin"},
			check: func(t *testing.T, got *schedulerpb.Job) {
				if want := time.Date(2026, 1, 16, 8, 0, 0, 0, time.UTC); !got.GetScheduleTime().AsTime().Equal(want) {
					t.Errorf("schedule_time %v, want %v", got.GetScheduleTime().AsTime(), want)
				}
			},
		},
		{
			name: "nested path", paths: []string{"http_target.uri"},
			job: &schedulerpb.Job{Target: &schedulerpb.Job_HttpTarget{HttpTarget: &schedulerpb.HttpTarget{Uri: "http://example.invalid/b", Body: []byte("ignored")}}},
			check: func(t *testing.T, got *schedulerpb.Job) {
				ht := got.GetHttpTarget()
				if ht.GetUri() != "http://example.invalid/b" || len(ht.GetBody()) != 0 || ht.GetHeaders()["A"] != "1" {
					t.Errorf("http_target %v, want only the uri changed", ht)
				}
			},
		},
		{
			name: "retry_config.retry_count", paths: []string{"retry_config.retry_count"},
			job: &schedulerpb.Job{RetryConfig: &schedulerpb.RetryConfig{RetryCount: 3, MaxDoublings: 1}},
			check: func(t *testing.T, got *schedulerpb.Job) {
				if rc := got.GetRetryConfig(); rc.GetRetryCount() != 3 || rc.GetMaxDoublings() != 5 {
					t.Errorf("retry_config %v, want retry_count 3 and max_doublings unchanged", rc)
				}
			},
		},
		{
			name: "switch target", paths: []string{"pubsub_target"},
			job: pubsubJob("", "", "projects/p1/topics/t", "d"),
			check: func(t *testing.T, got *schedulerpb.Job) {
				if got.GetPubsubTarget().GetTopicName() != "projects/p1/topics/t" || got.GetHttpTarget() != nil {
					t.Errorf("target %v, want the Pub/Sub target only", got.GetTarget())
				}
			},
		},
		{
			name: "empty mask updates the fields set", paths: nil,
			job: &schedulerpb.Job{Description: "after", Schedule: "15 * * * *"},
			check: func(t *testing.T, got *schedulerpb.Job) {
				if got.GetDescription() != "after" || got.GetSchedule() != "15 * * * *" || got.GetHttpTarget().GetUri() != "http://example.invalid/a" {
					t.Errorf("got %v, want description and schedule changed, target kept", got)
				}
			},
		},
		{name: "unknown path", paths: []string{"nope"}, job: &schedulerpb.Job{}, want: codes.InvalidArgument},
		{name: "output only path", paths: []string{"state"}, job: &schedulerpb.Job{State: schedulerpb.Job_PAUSED}, want: codes.InvalidArgument},
		{name: "name path", paths: []string{"name"}, job: &schedulerpb.Job{}, want: codes.InvalidArgument},
		{name: "path into a map", paths: []string{"http_target.headers.a"}, job: &schedulerpb.Job{}, want: codes.InvalidArgument},
		{name: "cleared schedule", paths: []string{"schedule"}, job: &schedulerpb.Job{}, want: codes.InvalidArgument},
		{name: "bad schedule", paths: []string{"schedule"}, job: &schedulerpb.Job{Schedule: "nope"}, want: codes.InvalidArgument},
		{name: "bad time zone", paths: []string{"time_zone"}, job: &schedulerpb.Job{TimeZone: "Nowhere/Land"}, want: codes.InvalidArgument},
		{name: "retry count out of range", paths: []string{"retry_config"}, job: &schedulerpb.Job{RetryConfig: &schedulerpb.RetryConfig{RetryCount: 9}}, want: codes.InvalidArgument},
		{name: "cleared target", paths: []string{"http_target"}, job: &schedulerpb.Job{}, want: codes.InvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := clock.NewManual(start)
			e := newEnv(t, Options{Clock: c})
			before := e.create(t, base())
			c.Advance(time.Minute) // user_update_time must move
			req := proto.Clone(tt.job).(*schedulerpb.Job)
			req.Name = before.GetName()
			var mask *fieldmaskpb.FieldMask
			if tt.paths != nil {
				mask = &fieldmaskpb.FieldMask{Paths: tt.paths}
			}
			got, err := e.client.UpdateJob(ctx, &schedulerpb.UpdateJobRequest{Job: req, UpdateMask: mask})
			if code(err) != tt.want {
				t.Fatalf("UpdateJob: code %v (%v), want %v", code(err), err, tt.want)
			}
			if err != nil {
				if after := e.get(t, before.GetName()); !proto.Equal(after, before) {
					t.Errorf("refused update changed the job:\n%v\nwant\n%v", after, before)
				}
				return
			}
			if !got.GetUserUpdateTime().AsTime().Equal(start.Add(time.Minute)) {
				t.Errorf("user_update_time %v, want %v", got.GetUserUpdateTime().AsTime(), start.Add(time.Minute))
			}
			if got.GetState() != schedulerpb.Job_ENABLED {
				t.Errorf("state %v, want ENABLED", got.GetState())
			}
			tt.check(t, got)
			if stored := e.get(t, before.GetName()); !proto.Equal(stored, got) {
				t.Errorf("GetJob after update = %v, want %v", stored, got)
			}
		})
	}
}

func TestScheduleTimeZone(t *testing.T) {
	tests := []struct {
		name  string
		now   time.Time
		sched string
		tz    string
		want  time.Time
	}{
		{name: "berlin winter", now: start, sched: "0 9 * * *", tz: "Europe/Berlin", want: time.Date(2026, 1, 16, 8, 0, 0, 0, time.UTC)},
		{name: "berlin summer", now: time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC), sched: "0 9 * * *", tz: "Europe/Berlin", want: time.Date(2026, 7, 1, 7, 0, 0, 0, time.UTC)},
		{name: "default utc", now: start, sched: "0 9 * * *", tz: "", want: time.Date(2026, 1, 16, 9, 0, 0, 0, time.UTC)},
		{name: "new york", now: start, sched: "30 8 * * 1-5", tz: "America/New_York", want: time.Date(2026, 1, 15, 13, 30, 0, 0, time.UTC)},
		{name: "utc spelled utc", now: start, sched: "*/20 * * * *", tz: "utc", want: start.Add(20 * time.Minute)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, Options{Clock: clock.NewManual(tt.now)})
			j := httpJob("tz", tt.sched, "http://example.invalid/")
			j.TimeZone = tt.tz
			got := e.create(t, j)
			if st := got.GetScheduleTime().AsTime(); !st.Equal(tt.want) {
				t.Errorf("schedule_time = %v, want %v", st, tt.want)
			}
			if got.GetTimeZone() != tt.tz {
				t.Errorf("time_zone = %q, want %q as given", got.GetTimeZone(), tt.tz)
			}
		})
	}
}
