package logging

import (
	"bytes"
	"encoding/json"
	"io"
	"reflect"
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

// TestProcessSettingsUntouched: New sets the Cloud Logging names on its own logger only, so
// another zerolog logger in the process keeps zerolog's defaults.
func TestProcessSettingsUntouched(t *testing.T) {
	l := New(io.Discard, "deploy", zerolog.InfoLevel)
	l.Info().Msg("x")
	if zerolog.LevelFieldName != "level" || zerolog.TimestampFieldName != "time" || zerolog.TimeFieldFormat != time.RFC3339 {
		t.Errorf("zerolog globals changed: level %q, time %q, format %q", zerolog.LevelFieldName, zerolog.TimestampFieldName, zerolog.TimeFieldFormat)
	}
	var buf bytes.Buffer
	plain := zerolog.New(&buf)
	plain.Info().Msg("plain")
	if !bytes.Contains(buf.Bytes(), []byte(`"level":"info"`)) {
		t.Errorf("a plain zerolog logger lost its level field: %s", buf.String())
	}
}

// FuzzLevelless: dropping the level field keeps a JSON object a JSON object with every other
// field.
func FuzzLevelless(f *testing.F) {
	f.Add([]byte(`{"level":"info","message":"x"}` + "\n"))
	f.Add([]byte(`{"level":"warn"}`))
	f.Add([]byte(`{"level":"a\"b","x":1}`))
	f.Add([]byte(`{"level":"`))
	f.Add([]byte(`{"message":"no level"}`))
	f.Fuzz(func(t *testing.T, p []byte) {
		var buf bytes.Buffer
		n, err := levelless{&buf}.Write(p)
		if err != nil || n != len(p) {
			t.Fatalf("Write = %d, %v; want %d, nil", n, err, len(p))
		}
		var in map[string]any
		if json.Unmarshal(p, &in) != nil {
			return
		}
		var out map[string]any
		if err := json.Unmarshal(buf.Bytes(), &out); err != nil {
			t.Fatalf("%q became %q, not JSON: %v", p, buf.Bytes(), err)
		}
		delete(in, "level")
		delete(out, "level")
		if !reflect.DeepEqual(in, out) {
			t.Errorf("%q became %q", p, buf.Bytes())
		}
	})
}
