package schedule

import (
	"errors"
	"time"
)

// MaxMissed is the number of missed slots above which Kubernetes warns TooManyMissedTimes.
const MaxMissed = 100

// Due is the outcome of MostRecent.
type Due struct {
	Slot    time.Time // most recent slot in (earliest, now]; zero when nothing is due
	Missed  int64     // slots in (earliest, now]: exact when <= 100, otherwise the Kubernetes estimate
	TooMany bool      // Missed > 100 (Kubernetes' TooManyMissedTimes warning)
}

// MostRecent returns the latest slot in (earliest, now] and how many slots that range holds, like the Kubernetes CronJob controller.
//
// earliest is the last slot already served (or the job's creation time). A starting deadline
// is the caller's business: pass max(earliest, now-deadline), as the controller does.
//
// It follows mostRecentScheduleTime in pkg/controller/cronjob/utils.go: t1 = Next(earliest),
// t2 = Next(t1); nothing is due before t1; t1 alone is due before t2; beyond that the
// controller estimates the count as (now-t1)/(t2-t1)+1 and walks from
// t1+(estimate-2)*(t2-t1) to find the slot. That walk assumes evenly spaced slots. On an
// irregular schedule such as "30 6-16/4 * * 1-5" (06:30, 10:30, 14:30 on weekdays) t2-t1 can
// be 4h while the slots after it are sparser (a weekend is 64h), so the walk can start past
// the true last slot, find nothing before now, and report that nothing is due.
//
// This version is always exact about Slot and bounded in work: it walks at most 101 slots
// from t1, so Missed is exact up to 100. Beyond that Missed is the controller's estimate
// (raised to 101 if the estimate is lower, so that TooMany always means Missed > 100) and
// Slot is found by a verified guess or a binary search over Next, never by a long walk. Note
// that TooMany is exact, so for irregular schedules it can differ from the controller's
// warning, which is based on the estimate alone.
//
// The error is the controller's "less than 1 second between two slots", which a schedule
// accepted by Parse cannot produce. When Next finds no slot after earliest within five years
// (only possible for 29 February around 2100), nothing is due; when t1 is the last slot Next
// can find, t1 is due. Slot is in UTC.
func (s *Schedule) MostRecent(earliest, now time.Time) (Due, error) {
	t1 := s.Next(earliest)
	if t1.IsZero() || now.Before(t1) {
		return Due{}, nil
	}
	t2 := s.Next(t1)
	if t2.IsZero() || now.Before(t2) {
		return Due{Slot: t1, Missed: 1}, nil
	}
	if t2.Sub(t1) < time.Second {
		return Due{}, errors.New("time difference between two schedules is less than 1 second")
	}

	last, count := t2, int64(2)
	for next := s.Next(t2); !next.IsZero() && !next.After(now); next = s.Next(next) {
		if count == MaxMissed {
			return Due{Slot: s.latest(next, t2.Sub(t1), now), Missed: max(estimate(t1, t2, now), MaxMissed+1), TooMany: true}, nil
		}
		last, count = next, count+1
	}
	return Due{Slot: last, Missed: count}, nil
}

// estimate is the Kubernetes controller's count of slots in [t1, now], given t2 = Next(t1).
func estimate(t1, t2, now time.Time) int64 {
	between := int64(t2.Sub(t1).Round(time.Second).Seconds())
	elapsed := int64(now.Sub(t1).Seconds())
	return elapsed/between + 1
}

// latest returns the latest slot <= now, given a slot lo <= now and the typical gap between slots.
func (s *Schedule) latest(lo time.Time, gap time.Duration, now time.Time) time.Time {
	// Fast path for evenly spaced slots: the first slot after now-gap is the answer if it is
	// not after now and the slot after it is. Both conditions are checked, so it is exact
	// whatever the spacing.
	if guess := s.Next(now.Add(-gap)); !guess.IsZero() && !guess.After(now) && s.after(guess, now) {
		return guess
	}
	// Next is monotonic, so "Next(x) > now" is false for every x before the latest slot S <= now
	// and true from S on: the smallest whole second x in [lo, now] where it holds is S. Slots
	// fall on whole seconds, so searching seconds loses nothing. About 25 calls per year of range.
	a, b := lo.Unix(), now.Unix()
	for a < b {
		mid := a + (b-a)/2
		if s.after(time.Unix(mid, 0), now) {
			b = mid
		} else {
			a = mid + 1
		}
	}
	return time.Unix(a, 0).UTC()
}

// after reports whether the first slot after t is after now (or does not exist).
func (s *Schedule) after(t, now time.Time) bool {
	next := s.Next(t)
	return next.IsZero() || next.After(now)
}
