package console

import (
	"cmp"
	"time"

	"runwayjobs.dev/shared/platform"
	"runwayjobs.dev/shared/schedule"
)

// Outcomes of a slot in the history strip.
const (
	SlotSucceeded = "succeeded"
	SlotFailed    = "failed"
	SlotCancelled = "cancelled"
	SlotRunning   = "running"
	SlotSkipped   = "skipped" // the trigger skipped it (Forbid with a run active, suspended)
	SlotMissed    = "missed"  // the trigger recorded it missed or refused, or nothing ran it by its deadline
	SlotStarted   = "started" // the trigger started it; its execution is not among those listed
	SlotDue       = "due"     // nothing yet, and its deadline has not passed
)

// maxSlots bounds the slots of one strip: 30 days of a job every minute.
const maxSlots = 30 * 24 * 60

// Slot is one scheduled slot of the history strip.
type Slot struct {
	Time    time.Time
	Outcome string
	// Execution is the id of the execution that served the slot ("" if none).
	Execution string
	// Reason is the trigger's reason for a skipped or missed slot.
	Reason string
}

// Slots returns the slots of sched in (from, to] with what became of each: the result of the
// execution that served it (the newest, if several did), else the trigger's record of it,
// else missed once to is past slot+deadline (the monitor's rule: expected runtime plus grace),
// else due. Slots before created (when the schedule first applied) are not expected and left
// out. At most maxSlots, the newest.
func Slots(sched *schedule.Schedule, from, to, created time.Time, execs []Execution, records []platform.RunRecord, deadline time.Duration) []Slot {
	from = later(from, created.Add(-time.Nanosecond))
	served := make(map[int64]*Execution, len(execs))
	for i := range execs {
		x := &execs[i]
		if x.Slot == nil {
			continue
		}
		k := x.Slot.Unix()
		if cur, ok := served[k]; !ok || x.Started.After(cur.Started) {
			served[k] = x
		}
	}
	recs := make(map[int64]platform.RunRecord, len(records))
	for _, r := range records {
		if !r.ScheduledTime.IsZero() {
			recs[r.ScheduledTime.Unix()] = r
		}
	}
	var slots []Slot
	for t := sched.Next(from); !t.IsZero() && !t.After(to); t = sched.Next(t) {
		s := Slot{Time: t}
		if x, ok := served[t.Unix()]; ok {
			s.Outcome, s.Execution = cmp.Or(slotResult(x.Result), SlotRunning), x.ID
		} else if r, ok := recs[t.Unix()]; ok {
			s.Reason = r.Reason
			switch r.Outcome {
			case platform.RunSkipped:
				s.Outcome = SlotSkipped
			case platform.RunStarted, platform.RunClaimed:
				s.Outcome = SlotStarted
			default: // missed, refused
				s.Outcome = SlotMissed
			}
		} else if to.Before(t.Add(deadline)) {
			s.Outcome = SlotDue
		} else {
			s.Outcome = SlotMissed
			s.Reason = "no execution and no record of the trigger"
		}
		slots = append(slots, s)
		if len(slots) > maxSlots {
			slots = slots[1:]
		}
	}
	return slots
}

// slotResult maps an execution's result to a slot outcome ("" for an unknown result).
func slotResult(result string) string {
	switch result {
	case "succeeded":
		return SlotSucceeded
	case "failed":
		return SlotFailed
	case "cancelled":
		return SlotCancelled
	case "running":
		return SlotRunning
	}
	return ""
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
