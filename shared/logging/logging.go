// Package logging builds the zerolog loggers of the Runway Jobs functions and runwayctl, writing
// JSON in the shape Cloud Logging reads from stdout: "severity", "message" and "time" fields,
// so severities and messages show up correctly in the Logs Explorer without an agent.
package logging

import (
	"io"
	"time"

	"github.com/rs/zerolog"
)

// New returns a logger that writes Cloud Logging structured JSON lines to w, tagged with the
// component (e.g. "deploy") and dropping events below level.
func New(w io.Writer, component string, level zerolog.Level) zerolog.Logger {
	return zerolog.New(w).
		Level(level).
		Hook(severityHook{}).
		With().
		Timestamp().
		Str("component", component).
		Logger()
}

func init() {
	zerolog.MessageFieldName = "message"
	zerolog.LevelFieldName = "" // replaced by "severity" below
	zerolog.TimestampFieldName = "time"
	zerolog.TimeFieldFormat = time.RFC3339Nano
}

// severityHook writes the Cloud Logging severity for zerolog's level.
type severityHook struct{}

// Run adds the severity field.
func (severityHook) Run(e *zerolog.Event, level zerolog.Level, _ string) {
	e.Str("severity", Severity(level))
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
