package e2e

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"runwayjobs.dev/shared/emulator"
	"runwayjobs.dev/shared/emulator/emulatortest"
	"runwayjobs.dev/shared/gcp"
	"runwayjobs.dev/shared/platform"
)

// BenchmarkDevReady is `make dev` after the first build: runwayctl dev from process start to
// its ready line (emulator, three function processes, wiring, the four example deploys
// applied). Target: under 3 s. Reported as the median of b.N starts.
func BenchmarkDevReady(b *testing.B) {
	bins := filepath.Dir(functionBinary(b, "deploy"))
	var times []time.Duration
	for b.Loop() {
		start := time.Now()
		cmd := exec.Command(binary, "dev", "--addr", "127.0.0.1:0", "--console", "", "--functions", bins, "--data", b.TempDir(),
			"--inventory", filepath.Join(repoRoot, "examples", "inventory.yml"), "--examples", filepath.Join(repoRoot, "examples"))
		cmd.Dir = repoRoot
		out, err := cmd.StdoutPipe()
		if err != nil {
			b.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		ready := false
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "runway dev ready: ") {
				ready = true
				break
			}
		}
		times = append(times, time.Since(start))
		cmd.Process.Signal(syscall.SIGINT)
		cmd.Wait()
		if !ready {
			b.Fatal("runwayctl dev exited before ready")
		}
	}
	b.ReportMetric(float64(median(times).Milliseconds()), "ms-to-ready")
}

// BenchmarkColdStart starts each function as Cloud Functions would (PORT, FUNCTION_TARGET,
// its environment pointing at an in-process emulator) and measures process start to its first
// event answered (which builds its clients), then its resident memory once idle. The baseline
// is a hello-world CloudEvent function on the same framework.
func BenchmarkColdStart(b *testing.B) {
	emu := emulatortest.Start(b, emulator.Options{})
	state := b.TempDir()
	hello := filepath.Join(b.TempDir(), "hellofn")
	// Built as the functions are built and released: linker flags, static.
	build := exec.Command("go", "build", "-ldflags="+platform.FunctionLDFlags, "-o", hello, "./hellofn")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("go build hellofn: %v\n%s", err, out)
	}
	env := []string{gcp.EmulatorHostEnv + "=" + emu.Addr(), "RUNWAY_STATE=" + state,
		platform.EnvInventory + "=" + filepath.Join(repoRoot, "examples", "inventory.yml")}
	for _, fn := range []struct{ name, bin, target string }{
		{"hello-world", hello, "Hello"},
		{"deploy", functionBinary(b, "deploy"), "Deploy"},
		{"trigger", functionBinary(b, "trigger"), "Trigger"},
		{"monitor", functionBinary(b, "monitor"), "Monitor"},
	} {
		b.Run(fn.name, func(b *testing.B) {
			var starts []time.Duration
			var rss []int64
			for b.Loop() {
				d, kb := coldStart(b, fn.bin, fn.target, env)
				starts, rss = append(starts, d), append(rss, kb)
			}
			b.ReportMetric(float64(median(starts).Microseconds())/1000, "ms-cold-start")
			slices.Sort(rss)
			b.ReportMetric(float64(rss[len(rss)/2])/1024, "MiB-idle-rss")
		})
	}
}

// coldStart runs one function process until it has answered one Pub/Sub CloudEvent (on a
// topic none of them acts on), and returns that time and its resident set afterwards.
func coldStart(b *testing.B, bin, target string, env []string) (time.Duration, int64) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	start := time.Now()
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), append(env, fmt.Sprintf("PORT=%d", port), "FUNCTION_TARGET="+target)...)
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	body := `{"message":{"data":"e30=","messageId":"1","publishTime":"2026-12-01T00:00:00Z"},"subscription":"projects/p/subscriptions/s"}`
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(time.Millisecond) {
		req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("ce-specversion", "1.0")
		req.Header.Set("ce-id", "1")
		req.Header.Set("ce-type", "google.cloud.pubsub.topic.v1.messagePublished")
		req.Header.Set("ce-source", "//pubsub.googleapis.com/projects/gitlab-runway-hello/topics/unrelated")
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s never answered", bin)
		}
	}
	took := time.Since(start)
	time.Sleep(200 * time.Millisecond) // idle
	return took, rssKiB(b, cmd.Process.Pid)
}

func rssKiB(b *testing.B, pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
