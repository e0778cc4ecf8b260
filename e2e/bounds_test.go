package e2e

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"runwayjobs.dev/shared/document"
	"runwayjobs.dev/shared/platform"
)

// Per input up to document.MaxSize, runwayctl validate and the deploy function stay below these
// (issue 13: before the bounds, a 20 KB file took 206 MB and a 1 MB one 240 s).
const (
	maxPeakRSS = 64 << 20
	maxCPU     = time.Second
)

// boundShape is one adversarial manifest. want is a fragment of the problem it must be refused
// with, or "" for a shape just within every bound, which the YAML library reads.
type boundShape struct {
	name string
	data string
	want string
}

// boundShapes are the adversarial shapes, each filling (or nearly) the 1 MiB limit, and the
// largest shapes the bounds let through to the parser.
func boundShapes() []boundShape {
	fill := func(unit string) string { return strings.Repeat(unit, (document.MaxSize-16)/len(unit)) }
	var keys, block, wide, scalars, mix strings.Builder
	for i := 0; keys.Len() < document.MaxSize-16; i++ {
		fmt.Fprintf(&keys, "k%06d: v\n", i)
	}
	for i := 0; block.Len()+i+3 < document.MaxSize; i++ {
		fmt.Fprintf(&block, "%sa:\n", strings.Repeat(" ", i))
	}
	for m := range document.MaxEntries / document.MaxMappingEntries {
		fmt.Fprintf(&wide, "m%d:\n", m)
		for k := range document.MaxMappingEntries - 1 {
			fmt.Fprintf(&wide, "  k%04d: v\n", k)
		}
	}
	for i := range 15 {
		fmt.Fprintf(&scalars, "s%d: %s\n", i, strings.Repeat("x", document.MaxScalar-8))
	}
	for i := 0; mix.Len() < document.MaxSize-200; i++ {
		fmt.Fprintf(&mix, "m%06d: {a: [1, \"x\", &a%d y], b: *a%d, c: [[{d: e}]]}\n- |\n  text [{\n", i, i, i)
	}
	deep := document.MaxDepth
	return []boundShape{
		{name: "deep flow 25,000", data: strings.Repeat("[", 25000) + strings.Repeat("]", 25000) + "\n", want: "nested more than 64 levels deep"},
		{name: "deep flow 1 MiB", data: fill("["), want: "nested more than 64 levels deep"},
		{name: "deep block", data: block.String(), want: "nested more than 64 levels deep"},
		{name: "many keys", data: keys.String(), want: "mapping has more than 500 entries"},
		{name: "many items", data: fill("- x\n"), want: "more than 4000 mapping entries and sequence items"},
		{name: "long scalar", data: "a: " + fill("x"), want: "scalar is longer than 65536 bytes"},
		{name: "many aliases", data: "a: &a x\nb: [" + fill("*a, ") + "*a]\n", want: "more than 1000 aliases"},
		{name: "many documents", data: fill("---\na: 1\n"), want: "YAML documents; put one per file"},
		{name: "many comments", data: fill("#\n"), want: "more than 40000 YAML tokens"},
		{name: "1 MiB mix", data: mix.String(), want: "more than"},
		{name: "accepted: deepest", data: strings.Repeat("- ", deep/2) + strings.Repeat("[", deep/2) + strings.Repeat("]", deep/2) + "\n"},
		{name: "accepted: widest", data: wide.String()},
		{name: "accepted: longest scalars", data: scalars.String()},
		{name: "accepted: most aliases", data: "a: &a [1, 2, 3, 4, 5, 6, 7, 8]\nb: [" + strings.Repeat("*a, ", document.MaxAliases-1) + "*a]\n"},
		{name: "accepted: widest alias expansion", data: "a: &a [" + strings.Repeat("1, ", document.MaxEntries-document.MaxAliases-100) + "1]\nb: [" + strings.Repeat("*a, ", document.MaxAliases-1) + "*a]\n", want: "expands to more than 40000 values"},
		{name: "accepted: most tokens", data: "a: 1\n" + strings.Repeat("#\n", document.MaxTokens-10)},
	}
}

// usage is what one process cost: its peak resident memory and CPU time (user and system).
type usage struct {
	peak int64 // bytes
	cpu  time.Duration
	wall time.Duration
}

func (u usage) String() string {
	return fmt.Sprintf("peak %.1f MiB, CPU %v, wall %v", float64(u.peak)/(1<<20), u.cpu.Round(time.Millisecond), u.wall.Round(time.Millisecond))
}

var (
	buildPeakRSS sync.Once
	peakRSSBin   string
	peakRSSErr   error
)

// peakRSSBinary builds the peakrss launcher once per test binary.
func peakRSSBinary(t *testing.T) string {
	t.Helper()
	buildPeakRSS.Do(func() {
		peakRSSBin = filepath.Join(filepath.Dir(binary), "peakrss")
		cmd := exec.Command("go", "build", "-o", peakRSSBin, "./peakrss")
		cmd.Dir = filepath.Join(repoRoot, "e2e")
		if out, err := cmd.CombinedOutput(); err != nil {
			peakRSSErr = fmt.Errorf("go build peakrss: %v\n%s", err, out)
		}
	})
	if peakRSSErr != nil {
		t.Fatal(peakRSSErr)
	}
	return peakRSSBin
}

// startMeasured starts cmd through the peakrss launcher (not by this test process, which holds
// every shape in memory and may be built with -race: see peakrss); wait returns what it cost.
func startMeasured(t *testing.T, cmd *exec.Cmd) (wait func() usage) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	launcher := peakRSSBinary(t)
	cmd.Args = append([]string{launcher}, append([]string{cmd.Path}, cmd.Args[1:]...)...)
	cmd.Path = launcher
	cmd.ExtraFiles = []*os.File{w}
	start := time.Now()
	err = cmd.Start()
	w.Close()
	if err != nil {
		r.Close()
		t.Fatal(err)
	}
	return func() usage {
		t.Helper()
		defer r.Close()
		var ru struct{ MaxRSSKiB, UserNS, SysNS int64 }
		jerr := json.NewDecoder(r).Decode(&ru)
		cmd.Wait()
		if jerr != nil {
			t.Fatalf("launcher reported no usage: %v", jerr)
		}
		return usage{peak: ru.MaxRSSKiB << 10, cpu: time.Duration(ru.UserNS + ru.SysNS), wall: time.Since(start)}
	}
}

var problemLine = regexp.MustCompile(`^(.*):(\d+):(\d+): `)

// TestBoundsValidate: runwayctl validate, a process per shape, refuses each adversarial shape
// with FILE:LINE:COL and stays within maxPeakRSS and maxCPU for every shape.
func TestBoundsValidate(t *testing.T) {
	dir := t.TempDir()
	for _, s := range boundShapes() {
		t.Run(s.name, func(t *testing.T) {
			if len(s.data) > document.MaxSize {
				t.Fatalf("shape is %d bytes, over the limit", len(s.data))
			}
			path := filepath.Join(dir, strings.ReplaceAll(s.name, " ", "-")+".yml")
			if err := os.WriteFile(path, []byte(s.data), 0o644); err != nil {
				t.Fatal(err)
			}
			var stderr bytes.Buffer
			cmd := exec.CommandContext(t.Context(), binary, "validate", path)
			cmd.Stderr = &stderr
			u := startMeasured(t, cmd)()
			t.Logf("%s (%d bytes): %s", s.name, len(s.data), u)
			if cmd.ProcessState.ExitCode() != 1 {
				t.Fatalf("exit %d, want 1 (no shape is a manifest); stderr:\n%.500s", cmd.ProcessState.ExitCode(), stderr.String())
			}
			first, _, _ := strings.Cut(stderr.String(), "\n")
			if m := problemLine.FindStringSubmatch(first); m == nil || m[1] != path {
				t.Errorf("first problem %q is not %s:LINE:COL: …", first, path)
			}
			if s.want != "" && !strings.Contains(stderr.String(), s.want) {
				t.Errorf("problems %.500q, want one with %q", stderr.String(), s.want)
			}
			if u.peak > maxPeakRSS || u.cpu > maxCPU {
				t.Errorf("%s: over the bounds (%d MiB, %v)", u, maxPeakRSS>>20, maxCPU)
			}
		})
	}
}

// TestBoundsDeployFunction: the deploy function, a process per shape, refuses each adversarial
// manifest (recorded as refused, acknowledged) and stays within maxPeakRSS and maxCPU.
func TestBoundsDeployFunction(t *testing.T) {
	const (
		project  = "gitlab-runway-topo-svc"
		workload = "topology-migrate"
	)
	p := startPlatform(t, project)
	bin := functionBinary(t, "deploy")
	shapes := append([]boundShape{{name: "idle"}}, boundShapes()...)
	for i, s := range shapes {
		t.Run(s.name, func(t *testing.T) {
			var body []byte
			if s.name != "idle" {
				req, err := json.Marshal(platform.DeployRequest{
					RequestID: fmt.Sprintf("bounds-%d", i), Workload: workload,
					Manifest: platform.File{Path: ".runway/runway.yml", Content: s.data},
				})
				if err != nil {
					t.Fatal(err)
				}
				body, err = json.Marshal(map[string]any{"message": map[string]any{
					"data": base64.StdEncoding.EncodeToString(req), "messageId": fmt.Sprintf("m-%d", i),
				}})
				if err != nil {
					t.Fatal(err)
				}
			}
			u, logs := deployOnce(t, bin, p.env, project, platform.DeployTopic(workload), body)
			t.Logf("%s (%d bytes): %s", s.name, len(s.data), u)
			if s.want != "" && !strings.Contains(logs, s.want) {
				t.Errorf("function logs do not contain %q:\n%.2000s", s.want, logs)
			}
			if u.peak > maxPeakRSS || u.cpu > maxCPU+startupCPU {
				t.Errorf("%s: over the bounds (%d MiB, %v and start-up)", u, maxPeakRSS>>20, maxCPU)
			}
		})
	}
}

// startupCPU is what the function spends starting (measured: ~0.1 s), on top of maxCPU.
const startupCPU = 500 * time.Millisecond

// deployOnce starts the deploy function, posts body (if any) to it as a Pub/Sub CloudEvent
// from topic, stops it and returns what the whole process cost and its logs.
func deployOnce(t *testing.T, bin string, env []string, project, topic string, body []byte) (usage, string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	var logs bytes.Buffer // read only after Wait
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), append(env, fmt.Sprintf("PORT=%d", port), "FUNCTION_TARGET=Deploy")...)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	wait := startMeasured(t, cmd)
	var u *usage
	stop := func() string {
		if u == nil {
			cmd.Process.Signal(syscall.SIGTERM)
			v := wait()
			u = &v
		}
		return logs.String()
	}
	defer stop()
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("deploy function did not listen on %d:\n%s", port, stop())
		}
	}
	if body != nil {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Ce-Specversion", "1.0")
		req.Header.Set("Ce-Id", "bounds")
		req.Header.Set("Ce-Type", "google.cloud.pubsub.topic.v1.messagePublished")
		req.Header.Set("Ce-Source", "//pubsub.googleapis.com/"+platform.TopicPath(project, topic))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("POST the event: %v\n%s", err, stop())
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("function answered %s, want 200 (a refused manifest is acknowledged, not redelivered)", resp.Status)
		}
	}
	out := stop()
	return *u, out
}
