// Package clock gives the emulator's services one notion of time: the real clock, or a manual
// clock that tests (and `runwayctl emulator --manual-clock`) move forward, so that a month of
// Cloud Scheduler slots can be replayed in seconds. Services that act on time (the scheduler
// firing slots, monitoring stamping points) register with OnAdvance to catch up synchronously
// when a manual clock jumps.
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
	// Manual reports whether the clock only moves when told to.
	Manual() bool
}

// Real is the wall clock.
type Real struct{}

// Now returns time.Now().
func (Real) Now() time.Time { return time.Now() }

// OnAdvance does nothing: the real clock is never advanced by hand.
func (Real) OnAdvance(func(time.Time)) {}

// Manual reports false.
func (Real) Manual() bool { return false }

// ManualClock is a clock that moves only when Set or Advance is called.
type ManualClock struct {
	mu        sync.Mutex
	now       time.Time
	listeners []func(time.Time)
	advancing sync.Mutex // serialises jumps so listeners see times in order
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

// Advance moves the clock forward by d (never backward) and runs the listeners.
func (m *ManualClock) Advance(d time.Duration) time.Time {
	if d < 0 {
		d = 0
	}
	m.advancing.Lock()
	defer m.advancing.Unlock()
	m.mu.Lock()
	m.now = m.now.Add(d)
	now, listeners := m.now, append([]func(time.Time){}, m.listeners...)
	m.mu.Unlock()
	for _, fn := range listeners {
		fn(now)
	}
	return now
}

// Set moves the clock to t if t is later than its time, and runs the listeners.
func (m *ManualClock) Set(t time.Time) time.Time {
	return m.Advance(t.Sub(m.Now()))
}
