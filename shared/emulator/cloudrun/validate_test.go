package cloudrun

import (
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/run/apiv2/runpb"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"

	"runwayjobs.dev/shared/emulator/rest"
)

// wantBadRequest checks that err is Cloud Run's refusal of field: INVALID_ARGUMENT, a message
// "{field}: …" containing msg, and a google.rpc.BadRequest violation of the field.
func wantBadRequest(t *testing.T, err error, field, msg string) {
	t.Helper()
	st := rest.StatusOf(err) // over REST, from Google's JSON error body
	if st.Code() != codes.InvalidArgument {
		t.Fatalf("error = %v, want InvalidArgument", err)
	}
	if !strings.HasPrefix(st.Message(), field+": ") || !strings.Contains(st.Message(), msg) {
		t.Errorf("message = %q, want %q then %q", st.Message(), field+": ", msg)
	}
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			if v := br.GetFieldViolations(); len(v) == 1 && v[0].GetField() == field && strings.Contains(v[0].GetDescription(), msg) {
				return
			}
			t.Errorf("BadRequest = %v, want one violation of %s", br, field)
			return
		}
	}
	t.Errorf("details = %v, want a google.rpc.BadRequest", st.Details())
}

func envVars(kv ...string) []*runpb.EnvVar {
	var out []*runpb.EnvVar
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, &runpb.EnvVar{Name: kv[i], Values: &runpb.EnvVar_Value{Value: kv[i+1]}})
	}
	return out
}

// TestCloudRunRefusesJobs checks the refusals of runcontract's rules on CreateJob and UpdateJob.
func TestCloudRunRefusesJobs(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{OpDelay: time.Millisecond})
	mutate := func(f func(j *runpb.Job)) *runpb.Job {
		j := jobSpec("true")
		f(j)
		return j
	}
	tooMany := map[string]string{}
	for i := range 65 {
		tooMany["l"+strings.Repeat("x", i)] = ""
	}
	tests := []struct {
		name  string
		job   *runpb.Job
		field string // "" means accepted
		msg   string
	}{
		{name: "valid labels", job: mutate(func(j *runpb.Job) {
			j.Labels = map[string]string{"tenant": "acme", "équipe": "", "cost-center": "r_and_d"}
		})},
		{name: "reserved job env", job: mutate(func(j *runpb.Job) {
			j.Template.Template.Containers[0].Env = envVars("A", "1", "CLOUD_RUN_TASK_INDEX", "7", "PORT", "1")
		}), field: "template.template.containers[0].env", msg: "The following reserved env names were provided: CLOUD_RUN_TASK_INDEX, PORT. These values are automatically set by the system."},
		{name: "every job variable", job: mutate(func(j *runpb.Job) {
			j.Template.Template.Containers[0].Env = envVars("CLOUD_RUN_JOB", "", "CLOUD_RUN_EXECUTION", "", "CLOUD_RUN_TASK_ATTEMPT", "", "CLOUD_RUN_TASK_COUNT", "")
		}), field: "template.template.containers[0].env", msg: "CLOUD_RUN_JOB, CLOUD_RUN_EXECUTION, CLOUD_RUN_TASK_ATTEMPT, CLOUD_RUN_TASK_COUNT."},
		{name: "service variable", job: mutate(func(j *runpb.Job) {
			j.Template.Template.Containers[0].Env = envVars("K_SERVICE", "x")
		}), field: "template.template.containers[0].env", msg: "K_SERVICE"},
		{name: "dotted label key", job: mutate(func(j *runpb.Job) { j.Labels = map[string]string{"Tenant.Scale": "x"} }),
			field: "labels", msg: "Label key 'Tenant.Scale' violates format constraints"},
		{name: "label key with a space", job: mutate(func(j *runpb.Job) { j.Labels = map[string]string{"Bad Key": "x"} }),
			field: "labels", msg: "Label key 'Bad Key'"},
		{name: "label value", job: mutate(func(j *runpb.Job) { j.Template.Labels = map[string]string{"team": "Platform"} }),
			field: "template.labels", msg: "Label value 'Platform'"},
		{name: "too many labels", job: mutate(func(j *runpb.Job) { j.Labels = tooMany }), field: "labels", msg: "at most 64"},
		{name: "annotations too large", job: mutate(func(j *runpb.Job) {
			j.Annotations = map[string]string{"runway.dev/big": strings.Repeat("x", 256<<10)}
		}), field: "annotations", msg: "at most 262144 bytes"},
		{name: "container name", job: mutate(func(j *runpb.Job) { j.Template.Template.Containers[0].Name = "Main_1" }),
			field: "template.template.containers[0].name", msg: "not a valid DNS label"},
		{name: "empty env name", job: mutate(func(j *runpb.Job) { j.Template.Template.Containers[0].Env = envVars("", "x") }),
			field: "template.template.containers[0].env[0]", msg: "must not be empty"},
		{name: "env value too long", job: mutate(func(j *runpb.Job) {
			j.Template.Template.Containers[0].Env = envVars("A", "", "B", strings.Repeat("v", 32769))
		}), field: "template.template.containers[0].env[1]", msg: "at most 32768"},
		{name: "too many variables", job: mutate(func(j *runpb.Job) {
			for i := range 1001 {
				j.Template.Template.Containers[0].Env = append(j.Template.Template.Containers[0].Env, envVars("V"+strings.Repeat("X", i%10)+string(rune('A'+i/10%26))+string(rune('A'+i/260)), "")...)
			}
		}), field: "template.template.containers[0].env", msg: "at most 1000"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := ctxT(t)
			id := "refused-" + string(rune('a'+i))
			op, err := e.jobs.CreateJob(ctx, &runpb.CreateJobRequest{Parent: testParent, JobId: id, Job: tt.job})
			if tt.field == "" {
				if err != nil {
					t.Fatalf("CreateJob = %v, want it accepted", err)
				}
				if _, err := op.Wait(ctx); err != nil {
					t.Fatal(err)
				}
				return
			}
			wantBadRequest(t, err, tt.field, tt.msg)
			tt.job.Name = testParent + "/jobs/" + id
			_, err = e.jobs.UpdateJob(ctx, &runpb.UpdateJobRequest{Job: tt.job, AllowMissing: true})
			wantBadRequest(t, err, tt.field, tt.msg)
		})
	}
}

// TestCloudRunRefusesOverrides checks that RunJob's overrides follow the same rules, so the
// emulator's own CLOUD_RUN_* values never silently win over a requested one.
func TestCloudRunRefusesOverrides(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{OpDelay: time.Millisecond})
	j := jobSpec("true")
	for i := range 999 {
		j.Template.Template.Containers[0].Env = append(j.Template.Template.Containers[0].Env, envVars("J"+strings.Repeat("X", i%10)+string(rune('A'+i/10%26))+string(rune('A'+i/260)), "")...)
	}
	job := e.createJob(t, "overridden", j)
	tests := []struct {
		name       string
		env        []*runpb.EnvVar
		field, msg string
	}{
		{name: "task index", env: envVars("CLOUD_RUN_TASK_INDEX", "3"), field: "overrides.container_overrides[0].env", msg: "The following reserved env names were provided: CLOUD_RUN_TASK_INDEX."},
		{name: "execution and port", env: envVars("OK", "1", "CLOUD_RUN_EXECUTION", "x", "PORT", "80"), field: "overrides.container_overrides[0].env", msg: "CLOUD_RUN_EXECUTION, PORT."},
		{name: "name with =", env: envVars("A=B", "1"), field: "overrides.container_overrides[0].env[0]", msg: "must not contain '='"},
		{name: "over 1000 with the job's", env: envVars("NEW1", "", "NEW2", ""), field: "overrides.container_overrides", msg: "at most 1000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.jobs.RunJob(ctxT(t), &runpb.RunJobRequest{Name: job.Name, Overrides: &runpb.RunJobRequest_Overrides{
				ContainerOverrides: []*runpb.RunJobRequest_Overrides_ContainerOverride{{Env: tt.env}},
			}})
			wantBadRequest(t, err, tt.field, tt.msg)
		})
	}
	// Replacing one of the job's variables keeps the count: accepted.
	if _, err := e.runJob(t, job.Name, &runpb.RunJobRequest_Overrides{
		ContainerOverrides: []*runpb.RunJobRequest_Overrides_ContainerOverride{{Env: envVars("JXA"+"A", "v")}},
	}); err != nil {
		t.Errorf("RunJob with a replacing override = %v", err)
	}
}
