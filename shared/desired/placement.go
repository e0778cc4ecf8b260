package desired

// Placement: which region holds a workload's job. One rule, used by deploy (where to apply,
// what to delete after a region move), trigger (which job to run), runwayctl status and logs
// (which job to show) and the monitor (which copy owns the schedule's slots).
//
// A workload's home region is spec.region, else the first region of its inventory entry
// (HomeRegion). Deploy writes only there; every Runway-managed job of the workload in another of
// its regions is a stray, left by a region move, and deploy deletes it (its scheduler first)
// once the home region is applied. Between the two writes, or when a deletion failed and waits
// for redelivery, a workload has several copies: readers, which do not have the manifest, take
// the most recently placed copy as the home (AnnotationPlacement: one more than any copy has,
// written when a job is placed in a region it is not yet home in), which is the one the last
// deploy wrote. No clock is involved: copies are ordered by the count.

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"cloud.google.com/go/run/apiv2/runpb"
	"github.com/googleapis/gax-go/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"runwayjobs.dev/shared/inventory"
	"runwayjobs.dev/shared/manifest"
	"runwayjobs.dev/shared/platform"
)

// HomeRegion is the region a manifest deploys to: spec.region or the inventory's first.
func HomeRegion(j *manifest.Job, w inventory.Workload) string {
	if j.Spec.Region != "" {
		return j.Spec.Region
	}
	return w.DefaultRegion()
}

// Placement is where a workload's job exists, as Place sees it.
type Placement struct {
	// Home is the copy that runs the workload, nil when it has none.
	Home *runpb.Job
	// Strays are the other Runway-managed copies (left by a region move; deploy deletes them).
	Strays []*runpb.Job
	// Foreign are jobs of the workload's name that Runway does not manage for it: never run,
	// changed or deleted.
	Foreign []*runpb.Job
}

// Place decides which of the jobs named after w (nil entries ignored) is its home: the most
// recently placed of the Runway-managed copies, ties (copies without AnnotationPlacement,
// deployed before it existed) going to the earliest of w's regions.
func Place(w inventory.Workload, jobs []*runpb.Job) Placement {
	var p Placement
	var copies []*runpb.Job
	for _, j := range jobs {
		switch {
		case j == nil:
		case platform.IsManaged(j.Labels) && j.Labels[platform.LabelWorkload] == w.Name:
			copies = append(copies, j)
		default:
			p.Foreign = append(p.Foreign, j)
		}
	}
	if len(copies) == 0 {
		return p
	}
	rank := func(j *runpb.Job) int {
		if i := slices.Index(w.Regions, RegionOf(j.Name)); i >= 0 {
			return i
		}
		return len(w.Regions)
	}
	slices.SortStableFunc(copies, func(a, b *runpb.Job) int {
		if c := cmp.Compare(placement(b), placement(a)); c != 0 {
			return c
		}
		return rank(a) - rank(b)
	})
	p.Home, p.Strays = copies[0], copies[1:]
	return p
}

// placement is the job's placement count, 0 when it does not say.
func placement(j *runpb.Job) int64 {
	n, _ := strconv.ParseInt(j.GetAnnotations()[platform.AnnotationPlacement], 10, 64)
	return n
}

// RegionOf returns the region of a Cloud Run or Cloud Scheduler job's full name
// (projects/P/locations/REGION/jobs/N), "" when the name has none.
func RegionOf(name string) string {
	_, rest, ok := strings.Cut(name, "/locations/")
	if !ok {
		return ""
	}
	region, _, _ := strings.Cut(rest, "/")
	return region
}

// JobGetter is the part of the Cloud Run Jobs client placement reads with.
type JobGetter interface {
	GetJob(context.Context, *runpb.GetJobRequest, ...gax.CallOption) (*runpb.Job, error)
}

// Jobs reads the Cloud Run job named after w in each of w's regions, in order (nil where
// there is none).
func Jobs(ctx context.Context, get JobGetter, w inventory.Workload) ([]*runpb.Job, error) {
	out := make([]*runpb.Job, len(w.Regions))
	for i, region := range w.Regions {
		name := platform.JobName(w.GCPProject, region, w.Name)
		j, err := get.GetJob(ctx, &runpb.GetJobRequest{Name: name})
		switch {
		case status.Code(err) == codes.NotFound:
		case err != nil:
			return nil, fmt.Errorf("run.GetJob %s: %w", name, err)
		default:
			out[i] = j
		}
	}
	return out, nil
}

// Locate reads w's jobs in all its regions and places them.
func Locate(ctx context.Context, get JobGetter, w inventory.Workload) (Placement, error) {
	jobs, err := Jobs(ctx, get, w)
	if err != nil {
		return Placement{}, err
	}
	return Place(w, jobs), nil
}
