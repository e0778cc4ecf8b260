package desired

import (
	"maps"
	"slices"
	"strings"

	"cloud.google.com/go/run/apiv2/runpb"
	"cloud.google.com/go/scheduler/apiv1/schedulerpb"
	"google.golang.org/protobuf/proto"

	"runwayjobs.dev/shared/platform"
)

// JobChanges lists the fields of got that differ from want (nil: nothing to write). Only the
// fields Runway sets are compared; server-set fields and defaults are ignored.
func JobChanges(want, got *runpb.Job) []string {
	var ch []string
	diff := func(field string, equal bool) {
		if !equal {
			ch = append(ch, field)
		}
	}
	diff("labels", maps.Equal(want.Labels, ownLabels(got.Labels, want.Labels)))
	for _, k := range slices.Sorted(maps.Keys(want.Annotations)) {
		diff("annotations."+strings.TrimPrefix(k, platform.AnnotationPrefix), got.Annotations[k] == want.Annotations[k])
	}
	for _, k := range slices.Sorted(maps.Keys(got.Annotations)) {
		if _, ok := want.Annotations[k]; !ok && strings.HasPrefix(k, platform.AnnotationPrefix) {
			ch = append(ch, "annotations."+strings.TrimPrefix(k, platform.AnnotationPrefix)+" (removed)")
		}
	}
	we, ge := want.GetTemplate(), got.GetTemplate()
	diff("task_count", we.GetTaskCount() == ge.GetTaskCount())
	diff("parallelism", we.GetParallelism() == ge.GetParallelism())
	wt, gt := we.GetTemplate(), ge.GetTemplate()
	diff("max_retries", wt.GetMaxRetries() == gt.GetMaxRetries())
	diff("timeout", wt.GetTimeout().AsDuration() == gt.GetTimeout().AsDuration())
	diff("service_account", wt.GetServiceAccount() == gt.GetServiceAccount())
	if len(gt.GetContainers()) != 1 {
		return append(ch, "containers")
	}
	wc, gc := wt.Containers[0], gt.Containers[0]
	diff("container_name", wc.Name == gc.Name)
	diff("image", wc.Image == gc.Image)
	diff("command", slices.Equal(wc.Command, gc.Command))
	diff("args", slices.Equal(wc.Args, gc.Args))
	diff("env", slices.EqualFunc(wc.Env, gc.Env, func(a, b *runpb.EnvVar) bool { return proto.Equal(a, b) }))
	diff("resources", maps.Equal(wc.GetResources().GetLimits(), gc.GetResources().GetLimits()))
	return ch
}

// ownLabels keeps the labels of got that Runway manages: the runway-* ones and managed-by,
// so labels added by others (billing, say) are not a difference.
func ownLabels(got, want map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range got {
		if _, ok := want[k]; ok || k == platform.LabelManagedBy || strings.HasPrefix(k, "runway-") {
			out[k] = v
		}
	}
	return out
}

// SchedulerChanges lists the update mask paths of got that differ from want.
func SchedulerChanges(want, got *schedulerpb.Job) []string {
	var mask []string
	if want.Description != got.Description {
		mask = append(mask, "description")
	}
	if want.Schedule != got.Schedule {
		mask = append(mask, "schedule")
	}
	if want.TimeZone != got.TimeZone {
		mask = append(mask, "time_zone")
	}
	if !proto.Equal(want.GetPubsubTarget(), got.GetPubsubTarget()) {
		mask = append(mask, "pubsub_target")
	}
	return mask
}
