// Package clock gives the emulator's services one notion of time: the real clock, or a manual
// clock that tests (and `runwayctl emulator --manual-clock`) move forward, so that a month of
// Cloud Scheduler slots can be replayed in seconds. Services that act on time (the scheduler
// firing slots, monitoring stamping points) register with OnAdvance to catch up synchronously
// when a manual clock jumps; those that wait for a time (Cloud Run's task timeouts) take a
// NewTimer, which a manual clock fires when a jump reaches it.
package clock

import (
	"sync"
	"time"
)

// Clock tells the emulator's time.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// OnAdvance registers fn to run, synchronously and in registration order, after each manual
	// jump of the clock with the new time. The real clock never calls it.
	OnAdvance(fn func(now time.Time))
	// OnWake registers next, which returns the earliest time after which something is due (a
	// Cloud Scheduler slot, say): a manual jump stops at each such time on its way, runs the
	// OnAdvance listeners there, and goes on, so that what fires at a slot sees the clock at the
	// slot (as a published message's publish_time does on Google Cloud). The real clock never
	// calls it.
	OnWake(next func() (time.Time, bool))
	// Manual reports whether the clock only moves when told to.
	Manual() bool
}

// Real is the wall clock.
type Real struct{}

// Now returns time.Now().
func (Real) Now() time.Time { return time.Now() }

// OnAdvance does nothing: the real clock is never advanced by hand.
func (Real) OnAdvance(func(time.Time)) {}

// OnWake does nothing: the real clock is never told to jump.
func (Real) OnWake(func() (time.Time, bool)) {}

// Manual reports false.
func (Real) Manual() bool { return false }

// ManualClock is a clock that moves only when Set or Advance is called.
type ManualClock struct {
	mu        sync.Mutex
	now       time.Time
	listeners []func(time.Time)
	wakers    []func() (time.Time, bool)
	timers    []*manualTimer
	advancing sync.Mutex // serialises jumps so listeners see times in order
}

// manualTimer is a Timer of a ManualClock.
type manualTimer struct {
	at time.Time
	c  chan time.Time
}

// NewManual returns a manual clock reading start.
func NewManual(start time.Time) *ManualClock { return &ManualClock{now: start} }

// Now returns the clock's time.
func (m *ManualClock) Now() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.now
}

// Manual reports true.
func (m *ManualClock) Manual() bool { return true }

// OnAdvance registers fn to run after each jump.
func (m *ManualClock) OnAdvance(fn func(time.Time)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.listeners = append(m.listeners, fn)
}

// OnWake registers next; Advance stops at each time it returns on the way to its target.
func (m *ManualClock) OnWake(next func() (time.Time, bool)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.wakers = append(m.wakers, next)
}

// Advance moves the clock forward by d (never backward) and runs the listeners: first at each
// wake time (OnWake) on the way, in order, then at the target.
func (m *ManualClock) Advance(d time.Duration) time.Time {
	if d < 0 {
		d = 0
	}
	m.advancing.Lock()
	defer m.advancing.Unlock()
	m.mu.Lock()
	target := m.now.Add(d)
	m.mu.Unlock()
	for {
		m.mu.Lock()
		now, wakers := m.now, append([]func() (time.Time, bool){}, m.wakers...)
		m.mu.Unlock()
		stop := target
		for _, w := range wakers { // called without m.mu: a waker may read the clock
			if t, ok := w(); ok && t.After(now) && t.Before(stop) {
				stop = t
			}
		}
		m.mu.Lock()
		for _, t := range m.timers {
			if t.at.After(now) && t.at.Before(stop) {
				stop = t.at
			}
		}
		m.now = stop
		m.fireTimers()
		listeners := append([]func(time.Time){}, m.listeners...)
		m.mu.Unlock()
		for _, fn := range listeners {
			fn(stop)
		}
		if !stop.Before(target) {
			return stop
		}
	}
}

// Set moves the clock to t if t is later than its time, and runs the listeners.
func (m *ManualClock) Set(t time.Time) time.Time {
	return m.Advance(t.Sub(m.Now()))
}

// Timer fires once, on C, when its clock reaches a deadline.
type Timer struct {
	// C receives the clock's time when the timer fires.
	C    <-chan time.Time
	stop func() bool
}

// Stop prevents the timer from firing. It reports whether it did (false: it had fired).
func (t *Timer) Stop() bool { return t.stop() }

// NewTimer returns a timer that fires after d of c's time. On a *ManualClock it fires when a
// jump reaches its deadline (the jump stops there, as it does at a wake time, so what the timer
// starts sees the clock at the deadline); on any other clock it is a real timer.
func NewTimer(c Clock, d time.Duration) *Timer {
	if m, ok := c.(*ManualClock); ok {
		return m.newTimer(d)
	}
	t := time.NewTimer(d)
	return &Timer{C: t.C, stop: t.Stop}
}

func (m *ManualClock) newTimer(d time.Duration) *Timer {
	m.mu.Lock()
	defer m.mu.Unlock()
	t := &manualTimer{at: m.now.Add(d), c: make(chan time.Time, 1)}
	m.timers = append(m.timers, t)
	m.fireTimers()
	return &Timer{C: t.c, stop: func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		for i, x := range m.timers {
			if x == t {
				m.timers = append(m.timers[:i], m.timers[i+1:]...)
				return true
			}
		}
		return false
	}}
}

// fireTimers fires and forgets the timers whose deadline has come. m.mu held.
func (m *ManualClock) fireTimers() {
	kept := m.timers[:0]
	for _, t := range m.timers {
		if t.at.After(m.now) {
			kept = append(kept, t)
			continue
		}
		t.c <- m.now // buffered, fired once
	}
	clear(m.timers[len(kept):])
	m.timers = kept
}
