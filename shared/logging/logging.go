// Package logging builds the zerolog loggers of the Runway Jobs functions and runwayctl, writing
// JSON in the shape Cloud Logging reads from stdout: "severity", "message" and "time" fields,
// so severities and messages show up correctly in the Logs Explorer without an agent.
package logging

import (
	"bytes"
	"io"
	"time"

	"github.com/rs/zerolog"
)

// New returns a logger that writes Cloud Logging structured JSON lines to w, tagged with the
// component (e.g. "deploy") and dropping events below level. The field names are set on this
// logger alone: zerolog's package-level settings are left as they are.
func New(w io.Writer, component string, level zerolog.Level) zerolog.Logger {
	return zerolog.New(levelless{w}).
		Level(level).
		Hook(cloudHook{now: time.Now}).
		With().
		Str("component", component).
		Logger()
}

// cloudHook writes the Cloud Logging "time" (RFC 3339 with nanoseconds) and "severity" fields
// of an event ("message" is zerolog's default name already).
type cloudHook struct{ now func() time.Time }

// Run adds the time and severity fields.
func (h cloudHook) Run(e *zerolog.Event, level zerolog.Level, _ string) {
	e.Str("time", h.now().UTC().Format(time.RFC3339Nano)).Str("severity", Severity(level))
}

// levelless drops the "level" field zerolog writes first in every event (severity replaces
// it), so no process-wide zerolog.LevelFieldName needs changing.
type levelless struct{ w io.Writer }

var levelPrefix = []byte(`{"` + zerolog.LevelFieldName + `":"`)

// Write writes p without its leading level field, in one Write.
func (l levelless) Write(p []byte) (int, error) {
	if !bytes.HasPrefix(p, levelPrefix) {
		return l.w.Write(p)
	}
	end := bytes.IndexByte(p[len(levelPrefix):], '"')
	if end < 0 || bytes.IndexByte(p[len(levelPrefix):len(levelPrefix)+end], '\\') >= 0 {
		return l.w.Write(p) // not a level name zerolog wrote
	}
	rest := p[len(levelPrefix)+end+1:]
	if len(rest) > 0 && rest[0] == ',' {
		rest = rest[1:]
	}
	b := make([]byte, 0, 1+len(rest))
	b = append(append(b, '{'), rest...)
	if _, err := l.w.Write(b); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Severity maps a zerolog level to a Cloud Logging LogSeverity name.
func Severity(level zerolog.Level) string {
	switch level {
	case zerolog.TraceLevel, zerolog.DebugLevel:
		return "DEBUG"
	case zerolog.InfoLevel:
		return "INFO"
	case zerolog.WarnLevel:
		return "WARNING"
	case zerolog.ErrorLevel:
		return "ERROR"
	case zerolog.FatalLevel:
		return "CRITICAL"
	case zerolog.PanicLevel:
		return "ALERT"
	}
	return "DEFAULT"
}

// Fields Cloud Logging reads from a structured log line.
const (
	TraceField  = "logging.googleapis.com/trace"
	SpanField   = "logging.googleapis.com/spanId"
	LabelsField = "logging.googleapis.com/labels"
)

// ForEvent returns l with the request's trace (so the line joins the request in the Logs
// Explorer: projects/PROJECT/traces/TRACE_ID) and Cloud Logging labels such as the workload
// and the event id. Empty values are left out.
func ForEvent(l zerolog.Logger, project, traceID, spanID string, labels map[string]string) zerolog.Logger {
	c := l.With()
	if traceID != "" && project != "" {
		c = c.Str(TraceField, "projects/"+project+"/traces/"+traceID)
	}
	if spanID != "" {
		c = c.Str(SpanField, spanID)
	}
	d := zerolog.Dict()
	n := 0
	for k, v := range labels {
		if v != "" {
			d.Str(k, v)
			n++
		}
	}
	if n > 0 {
		c = c.Dict(LabelsField, d)
	}
	return c.Logger()
}
