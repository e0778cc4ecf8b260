package emulator_test

import (
	"bytes"
	"net/http"
	"slices"
	"strings"
	"testing"

	"cloud.google.com/go/iam/apiv1/iampb"
	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/run/apiv2/runpb"
	storagev1 "google.golang.org/api/storage/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"runwayjobs.dev/shared/emulator"
	"runwayjobs.dev/shared/emulator/emulatortest"
	"runwayjobs.dev/shared/gcp"
)

// TestIAMDenyRules grants everything on a fresh emulator, then denies permissions through the
// admin API and sees, through the official clients, TestIamPermissions leave them out and the
// RPCs they guard answer PermissionDenied with Google's message.
func TestIAMDenyRules(t *testing.T) {
	e := emulatortest.Start(t, emulator.Options{})
	cl := dial(t, e)
	ctx := ctxT(t)
	job := createJob(t, cl, "iam-job", "true")
	topic := "projects/" + project + "/topics/iam-topic"
	if _, err := cl.PubSub.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: topic}); err != nil {
		t.Fatal(err)
	}
	st, err := gcp.NewStorageAPI(ctx, emulatortest.Config(e, project))
	if err != nil {
		t.Fatal(err)
	}
	const bucket = "iam-bucket"
	if _, err := st.Buckets.Insert(project, &storagev1.Bucket{Name: bucket}).Context(ctx).Do(); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Objects.Insert(bucket, &storagev1.Object{Name: "k"}).Media(strings.NewReader("v")).Context(ctx).Do(); err != nil {
		t.Fatal(err)
	}

	runPerms := []string{"run.jobs.get", "run.jobs.runWithOverrides", "run.executions.list"}
	testJob := func() []string {
		t.Helper()
		r, err := cl.Jobs.TestIamPermissions(ctx, &iampb.TestIamPermissionsRequest{Resource: job.Name, Permissions: runPerms})
		if err != nil {
			t.Fatalf("run TestIamPermissions: %v", err)
		}
		return r.Permissions
	}
	testTopic := func() []string {
		t.Helper()
		r, err := cl.PubSub.TopicAdminClient.TestIamPermissions(ctx, &iampb.TestIamPermissionsRequest{Resource: topic, Permissions: []string{"pubsub.topics.publish", "pubsub.topics.get"}})
		if err != nil {
			t.Fatalf("pubsub TestIamPermissions: %v", err)
		}
		return r.Permissions
	}
	testBucket := func() []string {
		t.Helper()
		r, err := st.Buckets.TestIamPermissions(bucket, []string{"storage.objects.get", "storage.objects.list"}).Context(ctx).Do()
		if err != nil {
			t.Fatalf("storage TestPermissions: %v", err)
		}
		return r.Permissions
	}
	if got := testJob(); !slices.Equal(got, runPerms) {
		t.Errorf("fresh emulator: job permissions %q, want all", got)
	}
	if got := testTopic(); len(got) != 2 {
		t.Errorf("fresh emulator: topic permissions %q, want both", got)
	}
	if got := testBucket(); len(got) != 2 {
		t.Errorf("fresh emulator: bucket permissions %q, want both", got)
	}
	missing, err := cl.Jobs.TestIamPermissions(ctx, &iampb.TestIamPermissionsRequest{Resource: job.Name + "x", Permissions: runPerms})
	if err != nil || len(missing.Permissions) != 0 {
		t.Errorf("TestIamPermissions on a missing job = %v, %v; want none granted, as Google answers", missing, err)
	}

	for _, body := range []string{
		`{"permissions":["run.jobs.get"],"resource":"` + job.Name + `"}`,
		`{"permissions":["pubsub.topics.publish"],"resource":"` + topic + `"}`,
		`{"permissions":["storage.objects.get"],"resource":"projects/_/buckets/iam-bucket"}`,
	} {
		resp, err := http.Post("http://"+e.Addr()+"/emulator/v1/iam/deny", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("deny %s: %s", body, resp.Status)
		}
	}
	if got := testJob(); !slices.Equal(got, runPerms[1:]) {
		t.Errorf("job permissions %q, want all but run.jobs.get", got)
	}
	if got := testTopic(); !slices.Equal(got, []string{"pubsub.topics.get"}) {
		t.Errorf("topic permissions %q, want only pubsub.topics.get", got)
	}
	if got := testBucket(); !slices.Equal(got, []string{"storage.objects.list"}) {
		t.Errorf("bucket permissions %q, want only storage.objects.list", got)
	}

	_, err = cl.Jobs.GetJob(ctx, &runpb.GetJobRequest{Name: job.Name})
	if s := status.Convert(err); s.Code() != codes.PermissionDenied || s.Message() != "Permission 'run.jobs.get' denied on resource '"+job.Name+"' (or it may not exist)." {
		t.Errorf("GetJob = %v, want Google's PermissionDenied", err)
	}
	if _, err := cl.Executions.ListExecutions(ctx, &runpb.ListExecutionsRequest{Parent: job.Name}).Next(); status.Code(err) == codes.PermissionDenied {
		t.Errorf("ListExecutions denied with only run.jobs.get taken away: %v", err)
	}
	pub := cl.PubSub.Publisher(topic)
	_, err = pub.Publish(ctx, &pubsub.Message{Data: []byte("x")}).Get(ctx)
	pub.Stop()
	if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "pubsub.topics.publish") {
		t.Errorf("Publish = %v, want PermissionDenied naming pubsub.topics.publish", err)
	}
	_, err = st.Objects.Get(bucket, "k").Context(ctx).Download()
	if err == nil || !strings.Contains(err.Error(), "storage.objects.get") || !strings.Contains(err.Error(), "403") {
		t.Errorf("object read = %v, want 403 naming storage.objects.get", err)
	}
	if _, err := st.Objects.List(bucket).Context(ctx).Do(); err != nil {
		t.Errorf("object list with storage.objects.list granted: %v", err)
	}

	req, _ := http.NewRequest(http.MethodDelete, "http://"+e.Addr()+"/emulator/v1/iam/deny", bytes.NewReader(nil))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if _, err := cl.Jobs.GetJob(ctx, &runpb.GetJobRequest{Name: job.Name}); err != nil {
		t.Errorf("GetJob after DELETE /emulator/v1/iam/deny: %v", err)
	}
}

// TestIAMPolicies: Get/SetIamPolicy store a policy per resource with an etag, as the clients
// expect for read-modify-write, and answer NotFound for resources that do not exist.
func TestIAMPolicies(t *testing.T) {
	e := emulatortest.Start(t, emulator.Options{})
	cl := dial(t, e)
	ctx := ctxT(t)
	job := createJob(t, cl, "policy-job", "true")
	topic := "projects/" + project + "/topics/policy-topic"
	if _, err := cl.PubSub.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: topic}); err != nil {
		t.Fatal(err)
	}
	type policyAPI struct {
		get func(*iampb.GetIamPolicyRequest) (*iampb.Policy, error)
		set func(*iampb.SetIamPolicyRequest) (*iampb.Policy, error)
	}
	apis := map[string]policyAPI{
		job.Name: {
			get: func(r *iampb.GetIamPolicyRequest) (*iampb.Policy, error) { return cl.Jobs.GetIamPolicy(ctx, r) },
			set: func(r *iampb.SetIamPolicyRequest) (*iampb.Policy, error) { return cl.Jobs.SetIamPolicy(ctx, r) },
		},
		topic: {
			get: func(r *iampb.GetIamPolicyRequest) (*iampb.Policy, error) {
				return cl.PubSub.TopicAdminClient.GetIamPolicy(ctx, r)
			},
			set: func(r *iampb.SetIamPolicyRequest) (*iampb.Policy, error) {
				return cl.PubSub.TopicAdminClient.SetIamPolicy(ctx, r)
			},
		},
	}
	for name, api := range apis {
		p, err := api.get(&iampb.GetIamPolicyRequest{Resource: name})
		if err != nil || len(p.Bindings) != 0 {
			t.Fatalf("%s: GetIamPolicy = %v, %v; want an empty policy", name, p, err)
		}
		p.Bindings = []*iampb.Binding{{Role: "roles/viewer", Members: []string{"user:a@example.com"}}}
		set, err := api.set(&iampb.SetIamPolicyRequest{Resource: name, Policy: p})
		if err != nil {
			t.Fatalf("%s: SetIamPolicy: %v", name, err)
		}
		got, err := api.get(&iampb.GetIamPolicyRequest{Resource: name})
		if err != nil || len(got.Bindings) != 1 || string(got.Etag) != string(set.Etag) {
			t.Errorf("%s: GetIamPolicy after Set = %v, %v", name, got, err)
		}
		if _, err := api.set(&iampb.SetIamPolicyRequest{Resource: name, Policy: p}); status.Code(err) != codes.Aborted {
			t.Errorf("%s: SetIamPolicy with a stale etag = %v, want Aborted", name, err)
		}
		if _, err := api.get(&iampb.GetIamPolicyRequest{Resource: name + "-missing"}); status.Code(err) != codes.NotFound {
			t.Errorf("%s: GetIamPolicy of a missing resource = %v, want NotFound", name, err)
		}
	}
	if _, err := cl.Jobs.TestIamPermissions(ctx, &iampb.TestIamPermissionsRequest{Resource: job.Name, Permissions: []string{"pubsub.topics.publish"}}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("a Pub/Sub permission on a job = %v, want InvalidArgument", err)
	}
}
