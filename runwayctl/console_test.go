package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/run/apiv2/runpb"
	"github.com/chromedp/chromedp"

	"runwayjobs.dev/shared/detect"
	"runwayjobs.dev/shared/emulator"
	emuclock "runwayjobs.dev/shared/emulator/clock"
	"runwayjobs.dev/shared/emulator/emulatortest"
	"runwayjobs.dev/shared/gcp"
	"runwayjobs.dev/shared/gcp/allclients"
	"runwayjobs.dev/shared/notify"
	"runwayjobs.dev/shared/platform"
	"runwayjobs.dev/shared/state"
)

const consoleInventory = `inventory:
  - {name: hourly-sync, type: job, project_id: 1, gcp_project: proj-c, regions: [us-east1], artifact_repository: us-east1-docker.pkg.dev/proj-c/s}
  - {name: on-demand, type: job, project_id: 1, gcp_project: proj-c, regions: [us-east1], artifact_repository: us-east1-docker.pkg.dev/proj-c/o}
`

// consoleDay is the replayed day: 25 November 2026 in America/New_York (05:00 UTC is 00:00
// EST), one slot an hour.
var consoleDay = time.Date(2026, 11, 25, 5, 0, 0, 0, time.UTC)

// consoleWorld is a replayed day of an hourly job on the emulator, read by the console.
type consoleWorld struct {
	url    string
	failed string // the failed execution's id
	alerts string
}

// replayConsoleDay builds, with the official clients, a day of hourly-sync as the platform
// records it: executions for 20 slots, one of them failed (06:00 EST), a slot the trigger
// skipped (09:00), one it recorded missed (14:00), one that nothing ran (18:00); the monitor's
// open incident for the failure and the alert it sent. Then it serves the console on it.
func replayConsoleDay(t *testing.T) consoleWorld {
	ctx := context.Background()
	clk := emuclock.NewManual(consoleDay.Add(-time.Hour))
	emu := emulatortest.Start(t, emulator.Options{OpDelay: time.Millisecond, Clock: clk})
	cl, err := allclients.Dial(ctx, emulatortest.Config(emu, "proj-c"), gcp.All)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	dir := t.TempDir()
	inv := writeFile(t, dir, "inventory.yml", consoleInventory)
	store, err := state.NewDir(filepath.Join(dir, "state"))
	if err != nil {
		t.Fatal(err)
	}
	settings := platform.Settings{Workload: "hourly-sync", Schedule: "0 * * * *", TimeZone: "America/New_York", ConcurrencyPolicy: "Forbid",
		CreatedAt: consoleDay.Add(-30 * time.Minute), Timeout: 10 * time.Minute, Channels: []string{"team-sync"},
		Monitoring: platform.Monitoring{Enabled: true, Grace: 5 * time.Minute, ExpectedRuntime: 10 * time.Minute, FailureThreshold: 1, RecoveryThreshold: 1}}
	jobName := platform.JobName("proj-c", "us-east1", "hourly-sync")
	op, err := cl.Jobs.CreateJob(ctx, &runpb.CreateJobRequest{Parent: "projects/proj-c/locations/us-east1", JobId: "hourly-sync", Job: &runpb.Job{
		Labels: map[string]string{platform.LabelManagedBy: platform.ManagedByValue, platform.LabelWorkload: "hourly-sync"},
		Annotations: map[string]string{platform.AnnotationSettings: settings.Encode(), platform.AnnotationCommit: "0123456789abcdef0123456789abcdef01234567",
			platform.AnnotationPipelineID: "4242", platform.AnnotationPipelineURL: "https://gitlab.example.com/sync/-/pipelines/4242",
			platform.AnnotationImageTag: "us-east1-docker.pkg.dev/proj-c/s/sync:v3"},
		Template: &runpb.ExecutionTemplate{Template: &runpb.TaskTemplate{Containers: []*runpb.Container{{
			Image: "us-east1-docker.pkg.dev/proj-c/s/sync@sha256:" + strings.Repeat("ab", 32), Command: []string{"sh", "-c", `echo "synced slot $RUNWAY_SCHEDULED_TIME"; exit ${CODE:-0}`},
		}}, Retries: &runpb.TaskTemplate_MaxRetries{MaxRetries: 0}}},
	}})
	if err == nil {
		_, err = op.Wait(ctx)
	}
	if err != nil {
		t.Fatal(err)
	}
	record := func(slot time.Time, outcome, reason string) {
		b, _ := json.Marshal(platform.RunRecord{Workload: "hourly-sync", Trigger: platform.TriggerSchedule, Outcome: outcome, Reason: reason, ScheduledTime: slot, Time: slot})
		if _, err := store.Put(ctx, platform.SlotRecordKey("hourly-sync", slot), b, 0); err != nil {
			t.Fatal(err)
		}
	}
	clk.Advance(time.Hour)
	for h := range 24 {
		slot := consoleDay.Add(time.Duration(h) * time.Hour)
		switch h {
		case 9:
			record(slot, platform.RunSkipped, "previous run still active")
		case 14:
			record(slot, platform.RunMissed, "delivered after the starting deadline")
		case 18: // nothing: the trigger never heard of it
		default:
			env := []*runpb.EnvVar{
				{Name: platform.EnvTrigger, Values: &runpb.EnvVar_Value{Value: platform.TriggerSchedule}},
				{Name: platform.EnvScheduledTime, Values: &runpb.EnvVar_Value{Value: slot.Format(time.RFC3339)}},
			}
			if h == 6 {
				env = append(env, &runpb.EnvVar{Name: "CODE", Values: &runpb.EnvVar_Value{Value: "3"}})
			}
			op, err := cl.Jobs.RunJob(ctx, &runpb.RunJobRequest{Name: jobName, Overrides: &runpb.RunJobRequest_Overrides{
				ContainerOverrides: []*runpb.RunJobRequest_Overrides_ContainerOverride{{Env: env}}}})
			if err == nil {
				_, err = op.Wait(ctx)
			}
			if err != nil && h != 6 {
				t.Fatalf("RunJob %s: %v", slot, err)
			}
		}
		clk.Advance(time.Hour)
	}
	clk.Advance(5*time.Minute - time.Hour) // now: 00:05 EST on the 26th, the next slot not yet due

	var failed string
	it := cl.Executions.ListExecutions(ctx, &runpb.ListExecutionsRequest{Parent: jobName})
	for x, err := it.Next(); err == nil; x, err = it.Next() {
		if x.FailedCount > 0 {
			failed = x.Name
		}
	}
	if failed == "" {
		t.Fatal("the replay has no failed execution")
	}
	failedSlot := consoleDay.Add(6 * time.Hour)
	ms, _ := json.Marshal(detect.State{Watermark: clk.Now(), Jobs: map[string]*detect.JobState{"proj-c/us-east1/hourly-sync": {
		Workload: "hourly-sync", Incident: &detect.Incident{Key: "k", Kind: notify.KindFailed, Since: failedSlot.Add(time.Minute),
			LastAlert: failedSlot.Add(2 * time.Minute), Execution: failed, Slot: failedSlot}}}})
	if _, err := store.Put(ctx, platform.MonitorStateKey("proj-c"), ms, 0); err != nil {
		t.Fatal(err)
	}
	alerts := filepath.Join(dir, "alerts.jsonl")
	line, _ := json.Marshal(alertLogLine{Channel: "team-sync", Alert: notify.Alert{ID: "a1", IncidentKey: "k", Kind: notify.KindFailed, Action: notify.ActionOpen,
		Severity: notify.SeverityCritical, Workload: "hourly-sync", Summary: "hourly-sync failed", Execution: failed, Time: failedSlot.Add(2 * time.Minute)}})
	os.WriteFile(alerts, append(line, '\n'), 0o644)

	vars := map[string]string{gcp.EmulatorHostEnv: emu.Addr(), state.EnvVar: store.Root(), platform.EnvInventory: inv}
	e := newCmdEnv(io.Discard, io.Discard, func(k string) string { return vars[k] }, func() time.Time { return clock })
	srv, url, err := startConsole(e, consoleOptions{addr: "127.0.0.1:0", alerts: alerts})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close(); e.Close() })
	return consoleWorld{url: url, failed: failed[strings.LastIndexByte(failed, '/')+1:], alerts: alerts}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestConsolePages reads the replayed day's pages over HTTP: what the platform recorded, in
// the job's zone and UTC.
func TestConsolePages(t *testing.T) {
	w := replayConsoleDay(t)
	tests := []struct {
		name, path string
		code       int
		want       []string
	}{
		{name: "overview", path: "", code: 200, want: []string{
			`<a href="/workloads/hourly-sync">hourly-sync</a>`, "At minute 0 past every hour, every day", "America/New_York",
			`<time datetime="2026-11-26T06:00:00Z">2026-11-26 01:00 EST</time> <span class="utc">(2026-11-26 06:00 UTC)</span>`,
			"<strong>failed</strong> since", "not deployed"}},
		{name: "workload", path: "workloads/hourly-sync", code: 200, want: []string{
			"24 slots: 20 succeeded, 1 failed, 1 skipped, 2 missed", "1 slot: 1 due",
			`title="06:00 EST (11:00 UTC): failed"`, `title="09:00 EST (14:00 UTC): skipped: previous run still active"`,
			`title="14:00 EST (19:00 UTC): missed: delivered after the starting deadline"`,
			`title="18:00 EST (23:00 UTC): missed: no execution and no record of the trigger"`,
			"runwayctl run hourly-sync", "hourly-sync failed", "0123456789abcdef0123456789abcdef01234567",
			"sync@sha256:abab", "https://gitlab.example.com/sync/-/pipelines/4242"}},
		{name: "execution", path: "workloads/hourly-sync/executions/" + w.failed, code: 200, want: []string{
			"Execution " + w.failed, "synced slot 2026-11-25T11:00:00Z", "exit code 3", "06:00 EST"}},
		{name: "an unknown execution", path: "workloads/hourly-sync/executions/hourly-sync-zzzzz", code: 404},
		{name: "a workload not in the inventory", path: "workloads/nope", code: 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := get(t, w.url+tt.path)
			if code != tt.code {
				t.Fatalf("GET /%s: %d, want %d:\n%.2000s", tt.path, code, tt.code, body)
			}
			for _, s := range tt.want {
				if !strings.Contains(body, s) {
					t.Errorf("GET /%s lacks %q", tt.path, s)
				}
			}
		})
	}
}

// chromium finds the headless browser: Debian's chromium (which .ci/run installs), or
// another Chrome on PATH.
func chromium() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// TestConsoleInBrowser drives headless Chromium over the replayed day: the pages load with no
// console errors, the strip shows what the platform recorded, its links lead where they say.
// With RUNWAY_CONSOLE_SCREENSHOT=FILE it saves the workload page there (docs/console.png).
func TestConsoleInBrowser(t *testing.T) {
	bin := chromium()
	if bin == "" {
		if os.Getenv("RUNWAY_REQUIRE_BROWSER") != "" {
			t.Fatal("RUNWAY_REQUIRE_BROWSER is set and no chromium is on PATH (apt-get install chromium)")
		}
		t.Skip("no chromium on PATH: install Debian's chromium package (.ci/run does, and sets RUNWAY_REQUIRE_BROWSER=1)")
	}
	w := replayConsoleDay(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, chromedp.ExecPath(bin), chromedp.NoSandbox, chromedp.Headless, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck, chromedp.Flag("headless", "new"), chromedp.WindowSize(1280, 900))
	defer cancelAlloc()
	tab, cancelTab := chromedp.NewContext(actx)
	defer cancelTab()
	var mu sync.Mutex
	var problems []string
	messages := chromedp.Console(tab)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == "error" || m.IsException() || m.Type == "warning" {
				mu.Lock()
				problems = append(problems, m.String())
				mu.Unlock()
			}
		}
	}()
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(tab, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	eval := func(expr string) string {
		t.Helper()
		v, err := chromedp.Run(tab, chromedp.Evaluate[string](expr))
		if err != nil {
			t.Fatalf("evaluate %s: %v", expr, err)
		}
		return v
	}

	do("open the overview", chromedp.Navigate(w.url), chromedp.WaitVisible(`a[href="/workloads/hourly-sync"]`))
	do("follow the workload's link", chromedp.Click(`a[href="/workloads/hourly-sync"]`), chromedp.WaitVisible(`table.strip`))
	if got := eval(`document.querySelector("h1").textContent`); got != "hourly-sync" {
		t.Errorf("the workload link leads to %q", got)
	}
	counts := eval(`JSON.stringify(["succeeded","failed","skipped","missed","due","running"].map(o => o + " " + document.querySelectorAll(".strip .c.r-" + o).length))`)
	if want := `["succeeded 20","failed 1","skipped 1","missed 2","due 1","running 0"]`; counts != want {
		t.Errorf("the strip shows %s, want %s", counts, want)
	}
	if path := os.Getenv("RUNWAY_CONSOLE_SCREENSHOT"); path != "" {
		png, err := chromedp.Run(tab, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Every slot that got no execution links to its row in the table of slots that did not run.
	if bad := eval(`[...document.querySelectorAll(".strip a.c[href^='#']")].filter(a => !document.getElementById(a.getAttribute("href").slice(1))).map(a => a.getAttribute("href")).join(" ")`); bad != "" {
		t.Errorf("strip links to no row: %s", bad)
	}
	// Every other link of the page answers.
	links := eval(`[...new Set([...document.querySelectorAll("a[href^='/']")].map(a => a.href))].join(" ")`)
	for _, l := range strings.Fields(links) {
		if code, _ := get(t, l); code != 200 {
			t.Errorf("link %s: %d", l, code)
		}
	}
	do("follow the failed slot", chromedp.Click(`.strip a.c.r-failed`), chromedp.WaitVisible(`pre.log`))
	if loc := eval(`location.pathname`); loc != "/workloads/hourly-sync/executions/"+w.failed {
		t.Errorf("the failed slot leads to %s", loc)
	}
	if got := eval(`document.querySelector("pre.log").textContent`); !strings.Contains(got, "synced slot 2026-11-25T11:00:00Z") {
		t.Errorf("the failed execution's task log is %q", got)
	}
	if got := eval(`document.querySelector("h3").textContent`); !strings.Contains(got, "failed") {
		t.Errorf("the task heading is %q", got)
	}
	do("back to the workload", chromedp.Click(`nav a[href="/workloads/hourly-sync"]`), chromedp.WaitVisible(`table.strip`))
	do("follow the missed slot", chromedp.Click(`.strip a.c.r-missed`), chromedp.WaitVisible(`tr:target`))
	if got := eval(`document.querySelector("tr:target").textContent`); !strings.Contains(got, "missed") {
		t.Errorf("the missed slot leads to the row %q", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(problems) > 0 {
		t.Errorf("the browser's console reported:\n%s", strings.Join(problems, "\n"))
	}
}

// FuzzConsoleAlertLog: whatever the alert log holds, readAlertLog returns only the asked
// workload's alerts, at most consoleMaxAlerts, and never panics.
func FuzzConsoleAlertLog(f *testing.F) {
	line, _ := json.Marshal(alertLogLine{Channel: "c", Alert: notify.Alert{Workload: "w", Summary: "s"}})
	f.Add(append(line, '\n'))
	f.Add([]byte("{\"alert\":{\"workload\":\"w\"}}\nnot json\n{\"alert\":{\"workload\":\"x\"}}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "alerts.jsonl")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := readAlertLog(path, "w")
		if err != nil {
			return // a line over consoleMaxAlertLine
		}
		if len(got) > consoleMaxAlerts {
			t.Errorf("%d alerts kept", len(got))
		}
		for _, a := range got {
			if a.Alert.Workload != "w" {
				t.Errorf("an alert of %q", a.Alert.Workload)
			}
		}
	})
}

func TestConsoleCappedBuffer(t *testing.T) {
	tests := []struct {
		name       string
		writes     []string
		want       string
		wantCapped bool
	}{
		{name: "under the cap", writes: []string{"ab", "c"}, want: "abc"},
		{name: "at the cap", writes: []string{"abcd"}, want: "abcd"},
		{name: "over the cap", writes: []string{"ab", "cdef"}, want: "abcd", wantCapped: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := cappedBuffer{max: 4}
			for _, w := range tt.writes {
				b.Write([]byte(w))
			}
			if b.String() != tt.want || b.capped != tt.wantCapped {
				t.Errorf("kept %q (capped %v), want %q (capped %v)", b.String(), b.capped, tt.want, tt.wantCapped)
			}
		})
	}
}
