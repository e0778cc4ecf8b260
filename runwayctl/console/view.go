package console

import (
	"fmt"
	"html"
	"html/template"
	"net/url"
	"strconv"
	"strings"
	"time"

	"runwayjobs.dev/shared/platform"
	"runwayjobs.dev/shared/schedule"
)

// stamp is a time as the pages show it: in the job's zone, and in UTC beside it unless the
// zone is UTC; ISO is the <time datetime> value.
type stamp struct {
	ISO, Local, UTC string
}

func stampOf(t time.Time, loc *time.Location) stamp {
	if t.IsZero() {
		return stamp{}
	}
	s := stamp{ISO: t.UTC().Format(time.RFC3339), Local: t.In(loc).Format("2006-01-02 15:04 MST")}
	if _, off := t.In(loc).Zone(); off != 0 || loc.String() != "UTC" && loc.String() != "Etc/UTC" {
		s.UTC = t.UTC().Format("2006-01-02 15:04 UTC")
	}
	return s
}

// glyphs are the strip's signals besides colour: each outcome has its own shape.
var glyphs = map[string]string{
	SlotSucceeded: "✓", SlotFailed: "✗", SlotCancelled: "⊗", SlotRunning: "▶",
	SlotSkipped: "⊘", SlotMissed: "!", SlotStarted: "?", SlotDue: "·",
}

// legendOrder is the order of the strip's legend and day counts.
var legendOrder = []string{SlotSucceeded, SlotFailed, SlotCancelled, SlotRunning, SlotSkipped, SlotMissed, SlotStarted, SlotDue}

type legendItem struct{ Outcome, Glyph string }

func legend() []legendItem {
	var l []legendItem
	for _, o := range legendOrder {
		l = append(l, legendItem{o, glyphs[o]})
	}
	return l
}

// day is one row of the strip: the slots of one day in the job's zone. Cells is the row's
// marks, written by stripOf with every value escaped: 8,640 marks through html/template's
// per-action escaping cost a 30-day page of a 5-minute job more than the whole budget.
type day struct {
	Label  string
	Counts string
	Cells  template.HTML
}

// notRun is a slot or request that got no execution, for the table the strip links to.
type notRun struct {
	Anchor  string
	When    stamp
	Slot    bool
	Outcome string
	Reason  string
	Trigger string
}

// stripOf groups slots by day in loc, newest day first, with the links of each slot.
func stripOf(workload string, slots []Slot, loc *time.Location) []day {
	var days []day
	counts := map[string]int{}
	flush := func(cells string, n int) {
		if len(days) == 0 {
			return
		}
		d := &days[len(days)-1]
		d.Cells = template.HTML(cells) // every value in it escaped by the loop below
		var parts []string
		for _, o := range legendOrder {
			if n := counts[o]; n > 0 {
				parts = append(parts, strconv.Itoa(n)+" "+o)
			}
		}
		d.Counts = fmt.Sprintf("%d slot%s: %s", n, plural(n), strings.Join(parts, ", "))
		clear(counts)
	}
	base := html.EscapeString(workloadURL(workload))
	var cur string
	var b strings.Builder
	n := 0
	for _, s := range slots {
		lt := s.Time.In(loc)
		label := lt.Format("Mon 2 Jan 2006")
		if label != cur {
			flush(b.String(), n)
			cur, n = label, 0
			b.Reset()
			days = append(days, day{Label: label})
		}
		n++
		counts[s.Outcome]++
		title := lt.Format("15:04 MST")
		if _, off := lt.Zone(); off != 0 {
			title += " (" + s.Time.UTC().Format("15:04 UTC") + ")"
		}
		title += ": " + s.Outcome
		if s.Reason != "" {
			title += ": " + s.Reason
		}
		tag := "span"
		switch {
		case s.Execution != "":
			tag = "a"
			b.WriteString(`<a href="` + base + "/executions/" + html.EscapeString(url.PathEscape(s.Execution)) + `"`)
		case s.Outcome != SlotDue:
			tag = "a"
			b.WriteString(`<a href="#` + slotAnchor(s.Time) + `"`)
		default:
			b.WriteString("<span")
		}
		b.WriteString(` class="c r-` + s.Outcome + `" title="` + html.EscapeString(title) + `">` + glyphs[s.Outcome] + "</" + tag + ">")
	}
	flush(b.String(), n)
	for i, j := 0, len(days)-1; i < j; i, j = i+1, j-1 {
		days[i], days[j] = days[j], days[i]
	}
	return days
}

func slotAnchor(t time.Time) string { return "slot-" + strconv.FormatInt(t.Unix(), 10) }

// notRunOf lists the strip's slots that got no execution (skipped, missed, started without a
// listed execution) and the refused requests of the window, newest first.
func notRunOf(slots []Slot, records []platform.RunRecord, from time.Time, loc *time.Location) []notRun {
	var out []notRun
	for _, r := range records {
		if r.ScheduledTime.IsZero() && !r.Time.Before(from) {
			out = append(out, notRun{When: stampOf(r.Time, loc), Outcome: r.Outcome, Reason: r.Reason, Trigger: r.Trigger})
		}
	}
	for i := len(slots) - 1; i >= 0; i-- {
		s := slots[i]
		if s.Execution != "" || s.Outcome == SlotDue {
			continue
		}
		out = append(out, notRun{Anchor: slotAnchor(s.Time), When: stampOf(s.Time, loc), Slot: true, Outcome: s.Outcome, Reason: s.Reason, Trigger: platform.TriggerSchedule})
	}
	return out
}

// zoneOf is the location of a workload's schedule zone (UTC when it has none or it is unknown).
func zoneOf(tz string) *time.Location {
	loc, err := schedule.LoadLocation(tz)
	if err != nil {
		return time.UTC
	}
	return loc
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
