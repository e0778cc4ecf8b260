// Package emulatortest starts the embedded emulator for tests: in-process, on a free loopback
// port, closed when the test ends. Tests then build the official clients with Config, exactly
// as production code does with RUNWAY_EMULATOR_HOST.
package emulatortest

import (
	"context"
	"testing"

	"runwayjobs.dev/shared/emulator"
	"runwayjobs.dev/shared/gcp"
)

// Start starts an emulator with opts and closes it when t ends.
func Start(t testing.TB, opts emulator.Options) *emulator.Emulator {
	t.Helper()
	if opts.LogDir == "" {
		opts.LogDir = t.TempDir()
	}
	e, err := emulator.Start(context.Background(), opts)
	if err != nil {
		t.Fatalf("emulator.Start: %v", err)
	}
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Errorf("emulator.Close: %v", err)
		}
	})
	return e
}

// Config returns the client configuration that reaches e for project.
func Config(e *emulator.Emulator, project string) gcp.Config {
	return gcp.Config{EmulatorHost: e.Addr(), Project: project}
}
