package gcp_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"runwayjobs.dev/shared/emulator"
	"runwayjobs.dev/shared/emulator/clock"
	"runwayjobs.dev/shared/emulator/emulatortest"
	"runwayjobs.dev/shared/gcp"
)

func TestClockFollowsManualEmulator(t *testing.T) {
	start := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	e := emulatortest.Start(t, emulator.Options{Clock: clock.NewManual(start)})
	now := emulatortest.Config(e, "p").Clock()
	if got := now(); !got.Equal(start) {
		t.Fatalf("now = %v, want the emulator's %v", got, start)
	}
	resp, err := http.Post("http://"+e.Addr()+"/emulator/v1/clock:advance", "application/json", strings.NewReader(`{"duration":"90m"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := now(); !got.Equal(start.Add(90 * time.Minute)) {
		t.Fatalf("after advance now = %v, want %v", got, start.Add(90*time.Minute))
	}
}

func TestClockRealWorlds(t *testing.T) {
	e := emulatortest.Start(t, emulator.Options{})
	for name, now := range map[string]func() time.Time{
		"production":          gcp.Config{}.Clock(),
		"real-clock emulator": emulatortest.Config(e, "p").Clock(),
		"unreachable":         gcp.Config{EmulatorHost: "127.0.0.1:1"}.Clock(),
	} {
		if d := time.Since(now()); d < -time.Second || d > time.Second {
			t.Errorf("%s: now is %v away from time.Now", name, d)
		}
	}
}
