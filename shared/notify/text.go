package notify

import (
	"fmt"
	"strings"
	"time"
)

// Title is the alert's first line: a tag saying the change, then the summary.
func (a Alert) Title() string {
	return "[" + a.Tag() + "] " + a.Summary
}

// Tag is the short upper-case name of the change: FAILED, MISSED, RECOVERED, STILL FAILED…
func (a Alert) Tag() string {
	tag := strings.ToUpper(string(a.Kind))
	if a.Action == ActionRealert {
		tag = "STILL " + tag
	}
	return tag
}

// Fields are the alert's facts as label/value pairs, in reading order, empty ones left out.
func (a Alert) Fields() [][2]string {
	var out [][2]string
	add := func(k, v string) {
		if v != "" {
			out = append(out, [2]string{k, v})
		}
	}
	add("Workload", a.Workload)
	add("Job", a.Job)
	add("Execution", a.Execution)
	if !a.Slot.IsZero() {
		add("Slot", a.Slot.UTC().Format(time.RFC3339))
	}
	if !a.Since.IsZero() {
		add("Since", a.Since.UTC().Format(time.RFC3339))
	}
	if a.Duration > 0 {
		label := "Open for"
		if a.Action == ActionResolve {
			label = "Lasted"
		}
		add(label, a.Duration.Round(time.Second).String())
	}
	add("Logs", a.LogURL)
	add("Owner", a.Owner)
	add("Team", a.Team)
	return out
}

// Text is the alert as plain text: the title, the detail, then one "Label: value" line per
// fact. It reads well in a mail client and in a terminal.
func (a Alert) Text() string {
	var b strings.Builder
	b.WriteString(a.Title())
	b.WriteString("\n")
	if a.Detail != "" {
		b.WriteString("\n")
		b.WriteString(a.Detail)
		b.WriteString("\n")
	}
	b.WriteString("\n")
	for _, f := range a.Fields() {
		fmt.Fprintf(&b, "%-10s %s\n", f[0]+":", f[1])
	}
	return b.String()
}

// emoji marks the change in Slack.
func (a Alert) emoji() string {
	switch {
	case a.Action == ActionResolve:
		return ":white_check_mark:"
	case a.Severity == SeverityWarning:
		return ":warning:"
	case a.Kind == KindUnknown:
		return ":grey_question:"
	}
	return ":rotating_light:"
}
