package logging

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

func TestCloudLoggingShape(t *testing.T) {
	tests := []struct {
		name     string
		log      func(zerolog.Logger)
		severity string
		message  string
	}{
		{name: "info", log: func(l zerolog.Logger) { l.Info().Msg("reconciled") }, severity: "INFO", message: "reconciled"},
		{name: "warning", log: func(l zerolog.Logger) { l.Warn().Msg("late") }, severity: "WARNING", message: "late"},
		{name: "error", log: func(l zerolog.Logger) { l.Error().Msg("failed") }, severity: "ERROR", message: "failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			tt.log(New(&buf, "deploy", zerolog.DebugLevel))
			var got map[string]any
			if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
				t.Fatalf("not one JSON line: %q: %v", buf.String(), err)
			}
			if got["severity"] != tt.severity || got["message"] != tt.message || got["component"] != "deploy" {
				t.Errorf("got %v, want severity %s, message %s, component deploy", got, tt.severity, tt.message)
			}
			if _, err := time.Parse(time.RFC3339Nano, got["time"].(string)); err != nil {
				t.Errorf("time %v: %v", got["time"], err)
			}
			if len(got) != 4 {
				t.Errorf("fields %v, want only time, severity, message and component", got)
			}
		})
	}
}

func TestLevelFilters(t *testing.T) {
	var buf bytes.Buffer
	l := New(&buf, "monitor", zerolog.InfoLevel)
	l.Debug().Msg("hidden")
	if buf.Len() != 0 {
		t.Errorf("debug event written at info level: %q", buf.String())
	}
}

func TestForEvent(t *testing.T) {
	var buf bytes.Buffer
	l := ForEvent(New(&buf, "deploy", zerolog.InfoLevel), "proj", "abc123", "7", map[string]string{"workload": "nightly", "event_id": "e1", "empty": ""})
	l.Info().Msg("deploy applied")
	var got map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got[TraceField] != "projects/proj/traces/abc123" || got[SpanField] != "7" {
		t.Errorf("trace fields = %v, %v", got[TraceField], got[SpanField])
	}
	labels, _ := got[LabelsField].(map[string]any)
	if labels["workload"] != "nightly" || labels["event_id"] != "e1" || len(labels) != 2 {
		t.Errorf("labels = %v", got[LabelsField])
	}
	buf.Reset()
	bare := ForEvent(New(&buf, "deploy", zerolog.InfoLevel), "proj", "", "", nil)
	bare.Info().Msg("x")
	if bytes.Contains(buf.Bytes(), []byte("logging.googleapis.com")) {
		t.Errorf("empty trace and labels must be left out: %s", buf.String())
	}
}
