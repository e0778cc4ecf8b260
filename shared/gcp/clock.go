package gcp

import (
	"encoding/json"
	"net/http"
	"sync"
	"time"
)

// Clock returns the time source of Google Cloud as the configured world sees it: time.Now in
// production, and the emulator's clock when RUNWAY_EMULATOR_HOST is set, so that functions
// running on the local platform agree with the emulator when a test or a user drives its
// manual clock (GET /emulator/v1/clock). On the emulator's real clock it is time.Now too:
// the first reading says so and no further request is made. If the emulator can't be read,
// time.Now is used for that call.
func (c Config) Clock() func() time.Time {
	if c.EmulatorHost == "" {
		return time.Now
	}
	ec := &emulatorClock{url: "http://" + c.EmulatorHost + "/emulator/v1/clock", client: &http.Client{Timeout: 2 * time.Second}}
	return ec.now
}

type emulatorClock struct {
	url    string
	client *http.Client
	mu     sync.Mutex
	real   bool // the emulator runs on the real clock: use time.Now from now on
}

func (e *emulatorClock) now() time.Time {
	e.mu.Lock()
	real := e.real
	e.mu.Unlock()
	if real {
		return time.Now()
	}
	resp, err := e.client.Get(e.url)
	if err != nil {
		return time.Now()
	}
	defer resp.Body.Close()
	var v struct {
		Now    time.Time `json:"now"`
		Manual bool      `json:"manual"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&v) != nil || v.Now.IsZero() {
		return time.Now()
	}
	if !v.Manual {
		e.mu.Lock()
		e.real = true
		e.mu.Unlock()
	}
	return v.Now
}
