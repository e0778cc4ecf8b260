package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	storagev1 "google.golang.org/api/storage/v1"

	"runwayjobs.dev/shared/emulator"
	emuclock "runwayjobs.dev/shared/emulator/clock"
	"runwayjobs.dev/shared/emulator/emulatortest"
	"runwayjobs.dev/shared/gcp"
	"runwayjobs.dev/shared/platform"
	"runwayjobs.dev/shared/state"
)

// TestUnknownWorkload: every command that takes a workload says, in the functions' words,
// that it is not a job of the inventory, and exits with its documented status, before
// anything is published or dialled.
func TestUnknownWorkload(t *testing.T) {
	e := newRunEnv(t, "true")
	dir := t.TempDir()
	manifest := writeFile(t, dir, ".runway/runway.yml", withName("ghost"))
	webManifest := writeFile(t, dir, "web/.runway/runway.yml", withName("web"))
	tests := []struct {
		name     string
		args     []string
		wantCode int
		want     string
	}{
		{name: "run", args: []string{"run", "ghost"}, wantCode: runNotRun, want: `workload "ghost" is not in the inventory`},
		{name: "run a service", args: []string{"run", "web"}, wantCode: runNotRun, want: `workload "web" is a service, not a job`},
		{name: "deploy", args: []string{"deploy", manifest}, wantCode: exitFailed, want: `workload "ghost" is not in the inventory`},
		{name: "deploy a service", args: []string{"deploy", webManifest}, wantCode: exitFailed, want: `workload "web" is a service, not a job`},
		{name: "deploy --delete", args: []string{"deploy", "--workload", "ghost", "--delete"}, wantCode: exitFailed, want: `workload "ghost" is not in the inventory`},
		{name: "plan", args: []string{"plan", manifest}, wantCode: exitFailed, want: `workload "ghost" is not in the inventory`},
		{name: "status", args: []string{"status", "ghost"}, wantCode: exitFailed, want: `workload "ghost" is not in the inventory`},
		{name: "logs", args: []string{"logs", "ghost"}, wantCode: exitFailed, want: `workload "ghost" is not in the inventory`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := execute(t, tt.args...)
			want := "runwayctl: " + tt.want + " (" + os.Getenv(platform.EnvInventory) + ")\n"
			if code != tt.wantCode || stderr != want || stdout != "" {
				t.Errorf("exit %d, stdout %q, stderr %q; want %d and %q", code, stdout, stderr, tt.wantCode, want)
			}
		})
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.received) != 0 {
		t.Errorf("%d run requests published, want none", len(e.received))
	}
}

// TestDeployDeleteReadsNoManifest: offboarding deletes a workload whose manifest is gone or
// broken: deploy --delete needs only the workload and the inventory.
func TestDeployDeleteReadsNoManifest(t *testing.T) {
	e := newRunEnv(t, "true")
	ctx := context.Background()
	topic := platform.TopicPath(runProject, platform.DeployTopic("nightly"))
	if _, err := e.cl.PubSub.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: topic}); err != nil {
		t.Fatal(err)
	}
	sub := "projects/" + runProject + "/subscriptions/deploy-nightly"
	if _, err := e.cl.PubSub.SubscriptionAdminClient.CreateSubscription(ctx, &pubsubpb.Subscription{Name: sub, Topic: topic, AckDeadlineSeconds: 30}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeFile(t, dir, ".runway/runway.yml", "this: [is not a manifest\n")
	t.Chdir(dir)

	stdout, stderr, code := execute(t, "deploy", "--workload", "nightly", "--delete")
	if code != 0 {
		t.Fatalf("deploy --delete: exit %d, stderr %q", code, stderr)
	}
	if !strings.HasPrefix(stdout, "deploy request cli-") || !strings.HasSuffix(stdout, " published for nightly\n") {
		t.Errorf("stdout %q", stdout)
	}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var got platform.DeployRequest
	err := e.cl.PubSub.Subscriber("deploy-nightly").Receive(rctx, func(_ context.Context, m *pubsub.Message) {
		m.Ack()
		if err := json.Unmarshal(m.Data, &got); err != nil {
			t.Errorf("request: %v", err)
		}
		cancel()
	})
	if err != nil {
		t.Fatal(err)
	}
	if got.Action != platform.ActionDelete || got.Workload != "nightly" || got.Manifest.Content != "" || got.RequestID == "" {
		t.Errorf("published %+v, want a delete of nightly without a manifest", got)
	}

	for _, args := range [][]string{{"deploy", "--delete"}, {"deploy", ".runway/runway.yml", "--workload", "nightly", "--delete"}} {
		if _, stderr, code := execute(t, args...); code != exitNotDone || !strings.Contains(stderr, "--delete takes the workload (--workload W)") {
			t.Errorf("%v: exit %d, stderr %q; want a usage error", args, code, stderr)
		}
	}
}

// TestCommandsReadTheInjectedEnvironment: the environment comes from cmdEnv's getenv, not the
// process (which has no RUNWAY_* here), and an inventory may be a Cloud Storage object.
func TestCommandsReadTheInjectedEnvironment(t *testing.T) {
	newRunEnv(t, "true")
	env := map[string]string{}
	for _, k := range []string{gcp.EmulatorHostEnv, state.EnvVar, platform.EnvInventory} {
		env[k] = os.Getenv(k)
		t.Setenv(k, "")
	}
	inv, err := os.ReadFile(env[platform.EnvInventory])
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	client, err := gcp.NewStorageAPI(ctx, gcp.Config{EmulatorHost: env[gcp.EmulatorHostEnv]})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.Objects.Insert("runway-config", &storagev1.Object{Name: "inventory.yml"}).Media(bytes.NewReader(inv)).Context(ctx).Do(); err != nil {
		t.Fatal(err)
	}
	env[platform.EnvInventory] = "gs://runway-config/inventory.yml"
	getenv := func(k string) string { return env[k] }

	stdout, stderr, code := executeWith(t, getenv, "status")
	if code != 0 || !strings.Contains(stdout, "nightly") {
		t.Fatalf("status with the inventory in Cloud Storage: exit %d\n%s\n%s", code, stdout, stderr)
	}

	env[state.EnvVar] = "ftp://example.com/state"
	if _, stderr, code := executeWith(t, getenv, "status"); code != exitNotDone || !strings.Contains(stderr, "RUNWAY_STATE: state.Open ftp://example.com/state: unknown scheme") {
		t.Errorf("status with a broken RUNWAY_STATE: exit %d, stderr %q; want the store's error", code, stderr)
	}
	env[platform.EnvInventory] = "gs://runway-config/missing.yml"
	if _, stderr, code := executeWith(t, getenv, "status"); code != exitNotDone || !strings.Contains(stderr, "inventory.Open gs://runway-config/missing.yml: storage: object doesn't exist") {
		t.Errorf("status with a missing inventory object: exit %d, stderr %q", code, stderr)
	}
}

func TestClientsAreDialledOncePerProject(t *testing.T) {
	env := map[string]string{gcp.EmulatorHostEnv: "127.0.0.1:1"} // clients connect lazily
	e := newCmdEnv(nil, nil, func(k string) string { return env[k] }, time.Now)
	defer e.Close()
	ctx := context.Background()
	a, err := e.gcpClients(ctx, "p1")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := e.gcpClients(ctx, "p1")
	c, _ := e.gcpClients(ctx, "p2")
	if a != b || a == c {
		t.Errorf("clients of p1 = %p then %p, of p2 %p: want one set per project", a, b, c)
	}
}

func TestDeployTimeoutIsDeprecated(t *testing.T) {
	newRunEnv(t, "true")
	_, stderr, _ := execute(t, "deploy", "--workload", "ghost", "--delete", "--timeout", "1s")
	if !strings.Contains(stderr, "runwayctl: deploy --timeout is deprecated: use --answer-timeout") {
		t.Errorf("stderr %q does not say --timeout is deprecated", stderr)
	}
}

func TestBuildVersion(t *testing.T) {
	withRev := &debug.BuildInfo{Main: debug.Module{Version: "v1.4.0"}, Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "abc123"}}}
	tests := []struct {
		name                string
		ldVersion, ldCommit string
		info                *debug.BuildInfo
		ok                  bool
		wantV, wantC        string
	}{
		{name: "no build info", ldVersion: "dev", ldCommit: "unknown", wantV: "dev", wantC: "unknown"},
		{name: "a devel build", ldVersion: "dev", ldCommit: "unknown", info: &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, ok: true, wantV: "dev", wantC: "unknown"},
		{name: "build info", ldVersion: "dev", ldCommit: "unknown", info: withRev, ok: true, wantV: "v1.4.0", wantC: "abc123"},
		{name: "ldflags win", ldVersion: "v2.0.0", ldCommit: "fff", info: withRev, ok: true, wantV: "v2.0.0", wantC: "fff"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func(v, c string) { version, commit = v, c }(version, commit)
			version, commit = tt.ldVersion, tt.ldCommit
			if v, c := buildVersion(tt.info, tt.ok); v != tt.wantV || c != tt.wantC {
				t.Errorf("buildVersion = %s, %s; want %s, %s", v, c, tt.wantV, tt.wantC)
			}
		})
	}
	stdout, _, code := execute(t, "version")
	if code != 0 || !strings.HasPrefix(stdout, "runwayctl ") || !strings.Contains(stdout, "(commit ") || !strings.Contains(stdout, ", go1.") {
		t.Errorf("version: exit %d, %q", code, stdout)
	}
}

// TestPlatformClock: with RUNWAY_EMULATOR_HOST set, commands reason on the emulator's clock
// (here a manual one, a day after the host's), without it on the host's.
func TestPlatformClock(t *testing.T) {
	emu := emulatortest.Start(t, emulator.Options{Clock: emuclock.NewManual(clock.Add(24 * time.Hour))})
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{name: "host", env: map[string]string{}, want: "2026-11-26T17:00:00Z"},
		{name: "emulator", env: map[string]string{gcp.EmulatorHostEnv: emu.Addr()}, want: "2026-11-27T17:00:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := executeWith(t, func(k string) string { return tt.env[k] }, "schedule", "0 * * * *", "--count", "1")
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			assertLines(t, "stdout", stdout, []string{"At minute 0 past every hour, every day", tt.want})
		})
	}
}
