package iam

import (
	"fmt"
	"testing"

	"cloud.google.com/go/run/apiv2/runpb"
)

// BenchmarkGuard is what the interceptor adds to each guarded RPC: finding the permission and
// resource, then checking the rules.
func BenchmarkGuard(b *testing.B) {
	req := &runpb.UpdateJobRequest{Job: &runpb.Job{Name: "projects/p/locations/l/jobs/j"}}
	for _, n := range []int{0, 10} {
		b.Run(fmt.Sprintf("%d rules", n), func(b *testing.B) {
			p := New()
			for i := range n {
				_ = p.Deny(Rule{Permissions: []string{"run.jobs.get", "pubsub.topics.publish"}, Resource: fmt.Sprintf("projects/q%d", i)})
			}
			b.ReportAllocs()
			for b.Loop() {
				perm, res, _ := Guarded("/google.cloud.run.v2.Jobs/UpdateJob", req)
				if p.Check(perm, res) != nil {
					b.Fatal("denied")
				}
			}
		})
	}
}
