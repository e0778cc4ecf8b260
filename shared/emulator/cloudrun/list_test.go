package cloudrun

import (
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/run/apiv2/runpb"
	"google.golang.org/api/iterator"
)

// setClock is a clock tests set to any time, backward too (as a wall clock stepped back by
// NTP is). Timeouts run in real time with it, like the real clock's.
type setClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *setClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *setClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

func (*setClock) OnAdvance(func(time.Time))       {}
func (*setClock) OnWake(func() (time.Time, bool)) {}
func (*setClock) Manual() bool                    { return false }

// TestListExecutionsIndex checks the per-job index against the order Cloud Run documents
// (creation time, newest first): executions created at one clock time (newest created
// first), a clock stepped back, a deleted execution, a deleted and recreated job, every job
// ("-") merged, each read with pages of several sizes.
func TestListExecutionsIndex(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2031, 5, 6, 7, 0, 0, 0, time.UTC)
	clk := &setClock{now: t0}
	e := newEnv(t, Options{Clock: clk, OpDelay: time.Millisecond})
	ctx := ctxT(t)
	a := e.createJob(t, "index-a", jobSpec("true"))
	b := e.createJob(t, "index-b", jobSpec("true"))
	run := func(job *runpb.Job, at time.Time) string {
		t.Helper()
		clk.Set(at)
		x, err := e.runJob(t, job.Name, nil)
		if err != nil {
			t.Fatal(err)
		}
		return x.Name[strings.LastIndexByte(x.Name, '/')+1:]
	}
	x1 := run(a, t0)
	x2 := run(a, t0) // same time: created later, listed first
	y1 := run(b, t0.Add(2*time.Hour))
	x3 := run(a, t0.Add(2*time.Hour))
	x4 := run(a, t0.Add(time.Hour)) // the clock stepped back
	list := func(parent string, pageSize int) []string {
		t.Helper()
		var names []string
		pager := iterator.NewPager(e.execs.ListExecutions(ctx, &runpb.ListExecutionsRequest{Parent: parent}), pageSize, "")
		for {
			var page []*runpb.Execution
			next, err := pager.NextPage(&page)
			if err != nil {
				t.Fatalf("ListExecutions %s: %v", parent, err)
			}
			for _, x := range page {
				names = append(names, x.Name[strings.LastIndexByte(x.Name, '/')+1:])
			}
			if next == "" {
				return names
			}
		}
	}
	check := func(step, parent string, want []string) {
		t.Helper()
		for _, size := range []int{1, 2, 100} {
			if got := list(parent, size); !slices.Equal(got, want) {
				t.Errorf("%s: ListExecutions %s (pages of %d) = %v, want %v", step, parent, size, got, want)
			}
		}
	}
	every := testParent + "/jobs/-"
	check("created", a.Name, []string{x3, x4, x2, x1})
	check("created", every, []string{x3, y1, x4, x2, x1})
	check("created", "projects/"+testProject+"/locations/-/jobs/index-b", []string{y1})

	x, err := e.execs.GetExecution(ctx, &runpb.GetExecutionRequest{Name: a.Name + "/executions/" + x2})
	if err != nil {
		t.Fatal(err)
	}
	op, err := e.execs.DeleteExecution(ctx, &runpb.DeleteExecutionRequest{Name: x.Name})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := op.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	check("execution deleted", a.Name, []string{x3, x4, x1})

	dop, err := e.jobs.DeleteJob(ctx, &runpb.DeleteJobRequest{Name: b.Name})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dop.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	b = e.createJob(t, "index-b", jobSpec("true"))
	check("job deleted and recreated", b.Name, nil)
	check("job deleted and recreated", every, []string{x3, x4, x1})
	y2 := run(b, t0.Add(90*time.Minute))
	check("recreated job run", every, []string{x3, y2, x4, x1})
}
