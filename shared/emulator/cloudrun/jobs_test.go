package cloudrun

import (
	"context"
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"cloud.google.com/go/run/apiv2/runpb"
	"github.com/googleapis/gax-go/v2/callctx"
	"google.golang.org/api/iterator"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"runwayjobs.dev/shared/emulator/clock"
)

func TestCreateJobValidation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{OpDelay: 10 * time.Millisecond})
	e.createJob(t, "taken", jobSpec("true"))
	mutate := func(f func(j *runpb.Job)) *runpb.Job {
		j := jobSpec("true")
		f(j)
		return j
	}
	tests := []struct {
		name   string
		parent string
		id     string
		job    *runpb.Job
		want   codes.Code
	}{
		{name: "valid", id: "ok-1", job: jobSpec("true"), want: codes.OK},
		{name: "63 characters", id: "a" + strings.Repeat("b", 62), job: jobSpec("true"), want: codes.OK},
		{name: "64 characters", id: "a" + strings.Repeat("b", 63), job: jobSpec("true"), want: codes.InvalidArgument},
		{name: "uppercase", id: "Bad", job: jobSpec("true"), want: codes.InvalidArgument},
		{name: "starts with digit", id: "1job", job: jobSpec("true"), want: codes.InvalidArgument},
		{name: "starts with hyphen", id: "-job", job: jobSpec("true"), want: codes.InvalidArgument},
		{name: "ends with hyphen", id: "job-", job: jobSpec("true"), want: codes.InvalidArgument},
		{name: "underscore", id: "my_job", job: jobSpec("true"), want: codes.InvalidArgument},
		{name: "duplicate", id: "taken", job: jobSpec("true"), want: codes.AlreadyExists},
		{name: "bad parent", parent: "projects/p", id: "x", job: jobSpec("true"), want: badName()},
		{name: "no job", id: "x", job: nil, want: codes.InvalidArgument},
		{name: "no template", id: "x", job: &runpb.Job{}, want: codes.InvalidArgument},
		{name: "reserved annotation", id: "x", job: mutate(func(j *runpb.Job) {
			j.Annotations = map[string]string{"run.googleapis.com/launch-stage": "BETA"}
		}), want: codes.InvalidArgument},
		{name: "reserved label", id: "x", job: mutate(func(j *runpb.Job) {
			j.Labels = map[string]string{"cloud.googleapis.com/location": "x"}
		}), want: codes.InvalidArgument},
		{name: "reserved template annotation", id: "x", job: mutate(func(j *runpb.Job) {
			j.Template.Annotations = map[string]string{"serving.knative.dev/creator": "x"}
		}), want: codes.InvalidArgument},
		{name: "reserved template label", id: "x", job: mutate(func(j *runpb.Job) {
			j.Template.Labels = map[string]string{"autoscaling.knative.dev/maxScale": "1"}
		}), want: codes.InvalidArgument},
		{name: "user annotation", id: "user-annotation", job: mutate(func(j *runpb.Job) {
			j.Annotations = map[string]string{"runway.dev/slot": "x"}
		}), want: codes.OK},
		{name: "task_count too big", id: "x", job: withTasks(jobSpec("true"), 10001, 0), want: codes.InvalidArgument},
		{name: "task_count negative", id: "x", job: withTasks(jobSpec("true"), -1, 0), want: codes.InvalidArgument},
		{name: "task_count max", id: "tasks-max", job: withTasks(jobSpec("true"), 10000, 0), want: codes.OK},
		{name: "parallelism negative", id: "x", job: withTasks(jobSpec("true"), 2, -1), want: codes.InvalidArgument},
		{name: "max_retries 11", id: "x", job: withRetries(jobSpec("true"), 11), want: codes.InvalidArgument},
		{name: "max_retries -1", id: "x", job: withRetries(jobSpec("true"), -1), want: codes.InvalidArgument},
		{name: "timeout 169h", id: "x", job: withTimeout(jobSpec("true"), 169*time.Hour), want: codes.InvalidArgument},
		{name: "timeout 0", id: "x", job: withTimeout(jobSpec("true"), 0), want: codes.InvalidArgument},
		{name: "timeout 168h", id: "timeout-max", job: withTimeout(jobSpec("true"), 168*time.Hour), want: codes.OK},
		{name: "no container", id: "x", job: mutate(func(j *runpb.Job) { j.Template.Template.Containers = nil }), want: codes.InvalidArgument},
		{name: "two containers", id: "x", job: mutate(func(j *runpb.Job) {
			j.Template.Template.Containers = append(j.Template.Template.Containers, &runpb.Container{Image: "x"})
		}), want: codes.InvalidArgument},
		{name: "no image", id: "x", job: mutate(func(j *runpb.Job) { j.Template.Template.Containers[0].Image = "" }), want: codes.InvalidArgument},
		{name: "name mismatch", id: "x", job: mutate(func(j *runpb.Job) { j.Name = testParent + "/jobs/y" }), want: codes.InvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parent := tt.parent
			if parent == "" {
				parent = testParent
			}
			ctx := ctxT(t)
			op, err := e.jobs.CreateJob(ctx, &runpb.CreateJobRequest{Parent: parent, JobId: tt.id, Job: tt.job})
			if err == nil {
				_, err = op.Wait(ctx)
			}
			if got := codeOf(err); got != tt.want {
				t.Fatalf("CreateJob(%q) = %v (%v), want %v", tt.id, got, err, tt.want)
			}
		})
	}
}

func TestCreateJobOutputFields(t *testing.T) {
	t.Parallel()
	start := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	clk := clock.NewManual(start)
	e := newEnv(t, Options{Clock: clk, OpDelay: 200 * time.Millisecond})
	ctx := ctxT(t)
	op, err := e.jobs.CreateJob(ctx, &runpb.CreateJobRequest{Parent: testParent, JobId: "fields", Job: jobSpec("true")})
	if err != nil {
		t.Fatal(err)
	}
	if op.Done() {
		t.Error("the create operation is done at once; want it to take OpDelay")
	}
	if !regexp.MustCompile(`^projects/p/locations/us-central1/operations/[0-9a-f-]{36}$`).MatchString(op.Name()) {
		t.Errorf("operation name %q", op.Name())
	}
	pending, err := e.jobs.GetJob(ctx, &runpb.GetJobRequest{Name: testParent + "/jobs/fields"})
	if err != nil {
		t.Fatal(err)
	}
	if !pending.Reconciling || pending.TerminalCondition.GetState() != runpb.Condition_CONDITION_RECONCILING || pending.ObservedGeneration != 0 {
		t.Errorf("before the operation ends: reconciling %v, terminal %v, observed %d", pending.Reconciling, pending.TerminalCondition, pending.ObservedGeneration)
	}
	clk.Advance(time.Minute)
	j, err := op.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name string
		ok   bool
	}{
		{"name", j.Name == testParent+"/jobs/fields"},
		{"uid", regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(j.Uid)},
		{"generation 1", j.Generation == 1},
		{"observed_generation 1", j.ObservedGeneration == 1},
		{"etag quoted", len(j.Etag) > 2 && strings.HasPrefix(j.Etag, `"`) && strings.HasSuffix(j.Etag, `"`)},
		{"etag changed when ready", j.Etag != pending.Etag},
		{"create_time from the clock", j.CreateTime.AsTime().Equal(start)},
		{"update_time", j.UpdateTime.AsTime().Equal(start)},
		{"creator", j.Creator == "emulator" && j.LastModifier == "emulator"},
		{"not reconciling", !j.Reconciling},
		{"ready", j.TerminalCondition.GetType() == "Ready" && j.TerminalCondition.GetState() == runpb.Condition_CONDITION_SUCCEEDED},
		{"ready transition at the clock", j.TerminalCondition.GetLastTransitionTime().AsTime().Equal(start.Add(time.Minute))},
		{"task_count default 1", j.Template.TaskCount == 1},
		{"max_retries default 3", j.Template.Template.GetMaxRetries() == 3},
		{"timeout default 600s", j.Template.Template.Timeout.AsDuration() == 600*time.Second},
		{"no executions", j.ExecutionCount == 0 && j.LatestCreatedExecution == nil},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("%s: wrong in %v", c.name, j)
		}
	}
	meta, err := op.Metadata()
	if err != nil || meta.GetName() != j.Name {
		t.Errorf("metadata = %v, %v; want the job", meta, err)
	}
}

func TestUpdateJob(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{OpDelay: 10 * time.Millisecond})
	base := e.createJob(t, "upd", jobSpec("true"))
	tests := []struct {
		name         string
		job          func(current *runpb.Job) *runpb.Job
		allowMissing bool
		validateOnly bool
		want         codes.Code
		wantGen      int64 // generation after the call
	}{
		{name: "no etag", job: func(c *runpb.Job) *runpb.Job { c.Etag = ""; c.Labels = map[string]string{"a": "1"}; return c }, want: codes.OK, wantGen: 2},
		{name: "current etag", job: func(c *runpb.Job) *runpb.Job { c.Labels = map[string]string{"a": "2"}; return c }, want: codes.OK, wantGen: 3},
		{name: "stale etag", job: func(c *runpb.Job) *runpb.Job { c.Etag = base.Etag; return c }, want: codes.Aborted, wantGen: 3},
		{name: "unknown etag", job: func(c *runpb.Job) *runpb.Job { c.Etag = `"nope"`; return c }, want: codes.Aborted, wantGen: 3},
		{name: "validate_only", validateOnly: true, job: func(c *runpb.Job) *runpb.Job { c.Labels = map[string]string{"a": "x"}; return c }, want: codes.OK, wantGen: 3},
		{name: "invalid template", job: func(c *runpb.Job) *runpb.Job { c.Template.TaskCount = 20000; return c }, want: codes.InvalidArgument, wantGen: 3},
		{name: "reserved annotation", job: func(c *runpb.Job) *runpb.Job {
			c.Annotations = map[string]string{"run.googleapis.com/x": "y"}
			return c
		}, want: codes.InvalidArgument, wantGen: 3},
		{name: "missing", job: func(c *runpb.Job) *runpb.Job { c.Name = testParent + "/jobs/absent"; return c }, want: codes.NotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := ctxT(t)
			cur, err := e.jobs.GetJob(ctx, &runpb.GetJobRequest{Name: base.Name})
			if err != nil {
				t.Fatal(err)
			}
			req := tt.job(proto.Clone(cur).(*runpb.Job))
			op, err := e.jobs.UpdateJob(ctx, &runpb.UpdateJobRequest{Job: req, AllowMissing: tt.allowMissing, ValidateOnly: tt.validateOnly})
			var got *runpb.Job
			if err == nil {
				if tt.validateOnly && !op.Done() {
					t.Error("validate_only operation not done at once")
				}
				got, err = op.Wait(ctx)
			}
			if codeOf(err) != tt.want {
				t.Fatalf("UpdateJob = %v, want %v", err, tt.want)
			}
			if tt.wantGen == 0 {
				return
			}
			after, err := e.jobs.GetJob(ctx, &runpb.GetJobRequest{Name: base.Name})
			if err != nil {
				t.Fatal(err)
			}
			if after.Generation != tt.wantGen {
				t.Errorf("generation = %d, want %d", after.Generation, tt.wantGen)
			}
			changed := tt.want == codes.OK && !tt.validateOnly
			if (after.Etag != cur.Etag) != changed {
				t.Errorf("etag %s -> %s; want changed=%v", cur.Etag, after.Etag, changed)
			}
			if changed {
				if got.Generation != tt.wantGen || got.ObservedGeneration != tt.wantGen || got.Reconciling {
					t.Errorf("operation response: generation %d, observed %d, reconciling %v", got.Generation, got.ObservedGeneration, got.Reconciling)
				}
				if !after.CreateTime.AsTime().Equal(cur.CreateTime.AsTime()) || after.Uid != cur.Uid {
					t.Error("update changed create_time or uid")
				}
			}
			if tt.validateOnly && got.GetLabels()["a"] != "x" {
				t.Errorf("validate_only response = %v, want the job as it would be", got.GetLabels())
			}
		})
	}
}

func TestUpdateJobAllowMissing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{OpDelay: 10 * time.Millisecond})
	ctx := ctxT(t)
	j := jobSpec("true")
	j.Name = testParent + "/jobs/upsert"
	op, err := e.jobs.UpdateJob(ctx, &runpb.UpdateJobRequest{Job: j, AllowMissing: true})
	if err != nil {
		t.Fatal(err)
	}
	got, err := op.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got.Generation != 1 || got.Uid == "" || got.ObservedGeneration != 1 {
		t.Errorf("upserted job: generation %d, uid %q, observed %d", got.Generation, got.Uid, got.ObservedGeneration)
	}
	op, err = e.jobs.UpdateJob(ctx, &runpb.UpdateJobRequest{Job: j, AllowMissing: true})
	if err != nil {
		t.Fatal(err)
	}
	if got, err = op.Wait(ctx); err != nil || got.Generation != 2 {
		t.Errorf("second upsert: generation %d, %v; want 2", got.GetGeneration(), err)
	}
	bad := jobSpec("true")
	bad.Name = testParent + "/jobs/Bad_Name"
	if _, err := e.jobs.UpdateJob(ctx, &runpb.UpdateJobRequest{Job: bad, AllowMissing: true}); codeOf(err) != codes.InvalidArgument {
		t.Errorf("upsert with a bad id = %v, want InvalidArgument", err)
	}
}

func TestDeleteJob(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{OpDelay: 10 * time.Millisecond})
	ctx := ctxT(t)
	j := e.createJob(t, "del", jobSpec("true"))
	x, err := e.runJob(t, j.Name, nil)
	if err != nil {
		t.Fatal(err)
	}
	long := e.createJob(t, "del-running", jobSpec("sleep", "30"))

	tests := []struct {
		name         string
		job          string
		etag         string
		validateOnly bool
		want         codes.Code
	}{
		{name: "missing", job: testParent + "/jobs/absent", want: codes.NotFound},
		{name: "bad name", job: "jobs/x", want: badName()},
		{name: "stale etag", job: j.Name, etag: `"stale"`, want: codes.Aborted},
		{name: "validate_only", job: j.Name, validateOnly: true, want: codes.OK},
		{name: "running execution", job: long.Name, want: codes.FailedPrecondition},
	}
	runOp, err := e.jobs.RunJob(ctx, &runpb.RunJobRequest{Name: long.Name})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			op, err := e.jobs.DeleteJob(ctx, &runpb.DeleteJobRequest{Name: tt.job, Etag: tt.etag, ValidateOnly: tt.validateOnly})
			if err == nil {
				_, err = op.Wait(ctx)
			}
			if codeOf(err) != tt.want {
				t.Fatalf("DeleteJob = %v, want %v", err, tt.want)
			}
		})
	}
	if _, err := e.jobs.GetJob(ctx, &runpb.GetJobRequest{Name: j.Name}); err != nil {
		t.Fatalf("the job is gone after validate_only: %v", err)
	}

	cur, _ := e.jobs.GetJob(ctx, &runpb.GetJobRequest{Name: j.Name})
	op, err := e.jobs.DeleteJob(ctx, &runpb.DeleteJobRequest{Name: j.Name, Etag: cur.Etag})
	if err != nil {
		t.Fatal(err)
	}
	deleted, err := op.Wait(ctx)
	if err != nil || deleted.Name != j.Name || deleted.DeleteTime == nil {
		t.Errorf("delete operation = %v, %v; want the deleted job with delete_time", deleted, err)
	}
	if _, err := e.jobs.GetJob(ctx, &runpb.GetJobRequest{Name: j.Name}); codeOf(err) != codes.NotFound {
		t.Errorf("GetJob after delete = %v, want NotFound", err)
	}
	if _, err := e.execs.GetExecution(ctx, &runpb.GetExecutionRequest{Name: x.Name}); codeOf(err) != codes.NotFound {
		t.Errorf("its execution after delete = %v, want NotFound", err)
	}
	// The same id can be created again.
	e.createJob(t, "del", jobSpec("true"))

	// Cancel, then delete works.
	meta, _ := runOp.Metadata()
	cop, err := e.execs.CancelExecution(ctx, &runpb.CancelExecutionRequest{Name: meta.Name})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cop.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	dop, err := e.jobs.DeleteJob(ctx, &runpb.DeleteJobRequest{Name: long.Name})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dop.Wait(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestListJobsPaging(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{OpDelay: time.Millisecond})
	ctx := ctxT(t)
	var want []string
	for _, id := range []string{"a", "b", "c", "d", "e"} {
		want = append([]string{e.createJob(t, id, jobSpec("true")).Name}, want...) // newest first
	}
	other := "projects/p/locations/europe-west1"
	if op, err := e.jobs.CreateJob(ctx, &runpb.CreateJobRequest{Parent: other, JobId: "z", Job: jobSpec("true")}); err != nil {
		t.Fatal(err)
	} else if _, err := op.Wait(ctx); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name     string
		parent   string
		pageSize int
		wantLen  int
		wantPage []int // sizes of the pages
	}{
		{name: "pages of 2", parent: testParent, pageSize: 2, wantLen: 5, wantPage: []int{2, 2, 1}},
		{name: "one page", parent: testParent, pageSize: 10, wantLen: 5, wantPage: []int{5}},
		{name: "all locations", parent: "projects/p/locations/-", pageSize: 4, wantLen: 6, wantPage: []int{4, 2}},
		{name: "other project", parent: "projects/q/locations/-", pageSize: 4, wantLen: 0, wantPage: []int{0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var names []string
			var pages []int
			pager := iterator.NewPager(e.jobs.ListJobs(ctx, &runpb.ListJobsRequest{Parent: tt.parent}), tt.pageSize, "")
			for {
				var jobs []*runpb.Job
				next, err := pager.NextPage(&jobs)
				if err != nil {
					t.Fatal(err)
				}
				pages = append(pages, len(jobs))
				for _, j := range jobs {
					names = append(names, j.Name)
				}
				if next == "" {
					break
				}
			}
			if len(names) != tt.wantLen {
				t.Fatalf("%d jobs, want %d: %v", len(names), tt.wantLen, names)
			}
			if tt.parent == testParent && strings.Join(names, ",") != strings.Join(want, ",") {
				t.Errorf("order %v, want newest first %v", names, want)
			}
			if !slices.Equal(pages, tt.wantPage) {
				t.Errorf("pages %v, want %v", pages, tt.wantPage)
			}
		})
	}
	if _, err := e.jobs.ListJobs(ctx, &runpb.ListJobsRequest{Parent: testParent, PageToken: "garbage"}).Next(); codeOf(err) != codes.InvalidArgument {
		t.Errorf("bad page token = %v, want InvalidArgument", err)
	}
}

func TestValidateOnly(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{OpDelay: 10 * time.Millisecond})
	ctx := ctxT(t)
	op, err := e.jobs.CreateJob(ctx, &runpb.CreateJobRequest{Parent: testParent, JobId: "dry", Job: jobSpec("true"), ValidateOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if !op.Done() {
		t.Error("validate_only create: operation not done")
	}
	got, err := op.Wait(ctx)
	if err != nil || got.Template.Template.GetMaxRetries() != 3 || got.Name != testParent+"/jobs/dry" {
		t.Errorf("validate_only create = %v, %v; want the defaulted job", got, err)
	}
	if _, err := e.jobs.GetJob(ctx, &runpb.GetJobRequest{Name: testParent + "/jobs/dry"}); codeOf(err) != codes.NotFound {
		t.Errorf("GetJob after validate_only create = %v, want NotFound", err)
	}
	if _, err := e.jobs.CreateJob(ctx, &runpb.CreateJobRequest{Parent: testParent, JobId: "Dry", Job: jobSpec("true"), ValidateOnly: true}); codeOf(err) != codes.InvalidArgument {
		t.Errorf("validate_only with a bad id = %v, want InvalidArgument", err)
	}

	j := e.createJob(t, "dry", jobSpec("true"))
	rop, err := e.jobs.RunJob(ctx, &runpb.RunJobRequest{Name: j.Name, ValidateOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if !rop.Done() {
		t.Error("validate_only run: operation not done")
	}
	x, err := rop.Wait(ctx)
	if err != nil || x.TaskCount != 1 {
		t.Errorf("validate_only run = %v, %v", x, err)
	}
	after, _ := e.jobs.GetJob(ctx, &runpb.GetJobRequest{Name: j.Name})
	if after.ExecutionCount != 0 || after.Etag != j.Etag {
		t.Errorf("validate_only run changed the job: execution_count %d", after.ExecutionCount)
	}
	list, err := e.execs.ListExecutions(ctx, &runpb.ListExecutionsRequest{Parent: j.Name}).Next()
	if !errors.Is(err, iterator.Done) {
		t.Errorf("executions after validate_only run: %v, %v", list, err)
	}
}

func TestOperationsService(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{OpDelay: 300 * time.Millisecond})
	ctx := ctxT(t)
	op, err := e.jobs.CreateJob(ctx, &runpb.CreateJobRequest{Parent: testParent, JobId: "ops", Job: jobSpec("true")})
	if err != nil {
		t.Fatal(err)
	}
	// GetOperation long-polls: it answers when the operation ends, well before 1 s.
	began := time.Now()
	got, err := e.jobs.GetOperation(ctx, &longrunningpb.GetOperationRequest{Name: op.Name()})
	if err != nil {
		t.Fatal(err)
	}
	if !got.Done || time.Since(began) > 900*time.Millisecond {
		t.Errorf("GetOperation: done %v after %v; want done after about 300ms", got.Done, time.Since(began))
	}

	slow := newEnv(t, Options{OpDelay: 5 * time.Second})
	sop, err := slow.jobs.CreateJob(ctx, &runpb.CreateJobRequest{Parent: testParent, JobId: "slow", Job: jobSpec("true")})
	if err != nil {
		t.Fatal(err)
	}
	began = time.Now()
	got, err = slow.jobs.GetOperation(ctx, &longrunningpb.GetOperationRequest{Name: sop.Name()})
	if err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(began); got.Done || waited < 900*time.Millisecond || waited > 3*time.Second {
		t.Errorf("GetOperation of a slow operation: done %v after %v; want not done after about 1s", got.Done, waited)
	}
	// Shorter than the long poll (1 s); the server answers 250 ms before it (within).
	short, cancel := context.WithTimeout(ctx, 600*time.Millisecond)
	// A REST client's deadline reaches the server only as Google's X-Server-Timeout header.
	short = callctx.SetHeaders(short, "x-server-timeout", "0.6")
	got, err = slow.jobs.GetOperation(short, &longrunningpb.GetOperationRequest{Name: sop.Name()})
	cancel()
	if err != nil || got.Done {
		t.Errorf("GetOperation with a 600ms deadline = %v, done %v; want the unfinished operation before the deadline", err, got.GetDone())
	}
	began = time.Now()
	got, err = slow.jobs.WaitOperation(ctx, &longrunningpb.WaitOperationRequest{Name: sop.Name(), Timeout: durationpb.New(100 * time.Millisecond)})
	if err != nil || got.Done || time.Since(began) > 900*time.Millisecond {
		t.Errorf("WaitOperation with a 100ms timeout: %v, done %v after %v", err, got.GetDone(), time.Since(began))
	}

	var names []string
	it := e.jobs.ListOperations(ctx, &longrunningpb.ListOperationsRequest{Name: testParent})
	for {
		o, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, o.Name)
	}
	if len(names) != 1 || names[0] != op.Name() {
		t.Errorf("ListOperations = %v, want [%s]", names, op.Name())
	}
	if err := e.jobs.DeleteOperation(ctx, &longrunningpb.DeleteOperationRequest{Name: op.Name()}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.jobs.GetOperation(ctx, &longrunningpb.GetOperationRequest{Name: op.Name()}); codeOf(err) != codes.NotFound {
		t.Errorf("GetOperation after delete = %v, want NotFound", err)
	}
	if _, err := slow.ops.CancelOperation(ctx, &longrunningpb.CancelOperationRequest{Name: sop.Name()}); codeOf(err) != codes.Unimplemented {
		t.Errorf("CancelOperation = %v, want Unimplemented", err)
	}
}
