package notify

import (
	"cmp"
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

// Field is one fact of an alert; Link marks a URL (Slack and PagerDuty show it as a link).
type Field struct {
	Label, Value string
	Link         bool
}

// Fields are the alert's facts in reading order, empty ones left out: what it concerns, the
// times (the event's, then the detection's), the links, then the owner.
func (a Alert) Fields() []Field {
	var out []Field
	add := func(k, v string) {
		if v != "" {
			out = append(out, Field{Label: k, Value: v})
		}
	}
	date := func(k string, t time.Time) {
		if !t.IsZero() {
			add(k, t.UTC().Format(time.RFC3339))
		}
	}
	add("Workload", a.Workload)
	add("Job", a.Job)
	add("Execution", a.Execution)
	date("Slot", a.Slot)
	date("Since", a.Since)
	if a.Duration > 0 {
		label := "Open for"
		if a.Action == ActionResolve {
			label = "Lasted"
		}
		add(label, a.Duration.Round(time.Second).String())
	}
	date("At", a.Time)
	date("Detected", a.DetectedAt)
	if a.LogURL != "" {
		out = append(out, Field{Label: "Logs", Value: a.LogURL, Link: true})
	}
	for _, l := range a.Links {
		if l.Href != "" {
			out = append(out, Field{Label: cmp.Or(l.Text, "Link"), Value: l.Href, Link: true})
		}
	}
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
		fmt.Fprintf(&b, "%-10s %s\n", f.Label+":", f.Value)
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
