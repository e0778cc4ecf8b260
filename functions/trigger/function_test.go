package trigger

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/scheduler/apiv1/schedulerpb"

	"runwayjobs.dev/shared/gcp"
	"runwayjobs.dev/shared/platform"
	"runwayjobs.dev/shared/state"
)

// TestFunctionThroughPubSub runs the registered function as Cloud Functions does (configured
// from the environment, behind the functions framework) on an Eventarc-style push subscription
// of the trigger topic, and drives it the two ways production does: a Cloud Scheduler job
// publishing the scheduled-run request, and a run request published on the topic.
func TestFunctionThroughPubSub(t *testing.T) {
	e := newEnv(t)
	e.createJob(t, "nightly", region2, platform.Settings{Schedule: "* * * * *", ConcurrencyPolicy: "Allow"}, "true")
	t.Setenv(gcp.EmulatorHostEnv, e.emu.Addr())
	t.Setenv(state.EnvVar, e.store.Root())
	t.Setenv(platform.EnvInventory, e.invPath)
	url := serve(t)

	ctx := ctxT(t)
	topic := platform.TopicPath(testProject, platform.TriggerTopic("nightly"))
	if _, err := e.cl.PubSub.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: topic}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.cl.PubSub.SubscriptionAdminClient.CreateSubscription(ctx, &pubsubpb.Subscription{
		Name: "projects/" + testProject + "/subscriptions/eventarc-trigger-nightly", Topic: topic,
		PushConfig: &pubsubpb.PushConfig{PushEndpoint: url}, AckDeadlineSeconds: 30,
	}); err != nil {
		t.Fatal(err)
	}

	// What the deploy function creates for a scheduled job, fired now.
	sched, err := e.cl.Scheduler.CreateJob(ctx, &schedulerpb.CreateJobRequest{
		Parent: "projects/" + testProject + "/locations/" + region2,
		Job: &schedulerpb.Job{
			Name:     platform.JobName(testProject, region2, "nightly"),
			Schedule: "* * * * *",
			Target: &schedulerpb.Job_PubsubTarget{PubsubTarget: &schedulerpb.PubsubTarget{
				TopicName: topic, Data: []byte(`{"workload":"nightly"}`),
				Attributes: map[string]string{platform.AttrKind: platform.KindScheduled},
			}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.cl.Scheduler.RunJob(ctx, &schedulerpb.RunJobRequest{Name: sched.Name}); err != nil {
		t.Fatal(err)
	}

	// What runwayctl run publishes.
	body, _ := json.Marshal(platform.RunRequest{RequestID: "ci-1-2", Workload: "nightly", Env: map[string]string{"LEVEL": "debug"}})
	pub := e.cl.PubSub.Publisher(topic)
	defer pub.Stop()
	if _, err := pub.Publish(ctx, &pubsub.Message{Data: body, Attributes: map[string]string{platform.AttrKind: platform.KindRun}}).Get(ctx); err != nil {
		t.Fatal(err)
	}

	for _, key := range []string{e.waitKey(t, "runs/nightly/slot-"), platform.RunRecordKey("nightly", "ci-1-2")} {
		rec := e.waitRecord(t, key)
		if rec.Outcome != platform.RunStarted || rec.Execution == "" {
			t.Errorf("%s: %+v, want started", key, rec)
		}
	}
	if n := len(e.executions(t, nightlyJob)); n != 2 {
		t.Errorf("%d executions, want 2", n)
	}
}

// waitKey polls the store until a key under prefix exists, and returns it.
func (e *env) waitKey(t testing.TB, prefix string) string {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if keys, _ := e.store.List(context.Background(), prefix); len(keys) == 1 {
			return keys[0]
		} else if len(keys) > 1 {
			t.Fatalf("keys %v under %s, want one", keys, prefix)
		}
	}
	t.Fatalf("no key under %s", prefix)
	return ""
}

// waitRecord polls the store until key has a final outcome.
func (e *env) waitRecord(t testing.TB, key string) platform.RunRecord {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if rec, ok := e.record(t, key); ok && rec.Outcome != platform.RunClaimed {
			return rec
		}
	}
	keys, _ := e.store.List(context.Background(), "")
	t.Fatalf("no outcome at %s (store has %v)", key, keys)
	return platform.RunRecord{}
}
