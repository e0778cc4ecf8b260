// Package fault makes the emulator fail on purpose: any gRPC method (or HTTP route) can return a
// chosen status code at a chosen rate, or be slowed down; a unary gRPC call can also run to
// completion and then lose its response (the client sees an error for a change that was made);
// and Pub/Sub deliveries can be duplicated or reordered. Tests use it to prove that the functions converge despite the
// failures production brings; `runwayctl emulator` exposes it over HTTP (see Handler).
package fault

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Rule makes matching calls fail or slow down.
type Rule struct {
	// Method matches a full gRPC method ("/google.cloud.run.v2.Jobs/RunJob"), its last element
	// ("RunJob"), a service prefix ending in "/" ("/google.cloud.run.v2.Jobs/") or "*".
	Method string `json:"method"`
	// Code is returned by failing calls (OK means "only delay").
	Code codes.Code `json:"code"`
	// Rate is the share of matching calls affected, 0 < Rate <= 1 (0 means 1).
	Rate float64 `json:"rate"`
	// Delay is added before matching calls run (failing or not).
	Delay Duration `json:"delay"`
	// Times limits how many calls the rule affects; 0 means no limit.
	Times int `json:"times"`
	// LoseResponse lets the call run to completion and then replaces its response with Code,
	// as a connection lost after the server acted does: the client cannot tell that the call
	// took effect. Unary gRPC calls only (streams and HTTP routes ignore such rules).
	LoseResponse bool `json:"lose_response,omitempty"`
}

// Duration is a time.Duration that reads and writes as a Go duration string in JSON.
type Duration time.Duration

// UnmarshalJSON reads "250ms".
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration: %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration %q: %w", s, err)
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// Delivery makes push deliveries misbehave as Pub/Sub may.
type Delivery struct {
	DuplicateRate float64 `json:"duplicate_rate"` // share of deliveries sent twice
	ReorderRate   float64 `json:"reorder_rate"`   // share of deliveries held back behind later ones
}

// Injector holds the active rules. The zero value injects nothing; it is safe for concurrent use.
type Injector struct {
	mu       sync.Mutex
	rules    []*active
	delivery Delivery
	rand     *rand.Rand
}

type active struct {
	Rule
	used int
}

// New returns an injector drawing from a fixed seed, so a failing test can be replayed.
func New(seed uint64) *Injector {
	return &Injector{rand: rand.New(rand.NewPCG(seed, seed))}
}

// Add activates r.
func (in *Injector) Add(r Rule) error {
	if r.Method == "" {
		return fmt.Errorf("fault rule: method is required (a gRPC method, its last element, a service prefix or *)")
	}
	if r.Rate < 0 || r.Rate > 1 {
		return fmt.Errorf("fault rule %s: rate %v is not between 0 and 1", r.Method, r.Rate)
	}
	if r.LoseResponse && r.Code == codes.OK {
		return fmt.Errorf("fault rule %s: lose_response needs a code (the error the client sees instead of the response)", r.Method)
	}
	if r.Rate == 0 {
		r.Rate = 1
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	in.rules = append(in.rules, &active{Rule: r})
	return nil
}

// SetDelivery sets the delivery misbehaviour.
func (in *Injector) SetDelivery(d Delivery) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.delivery = d
}

// Clear removes every rule and delivery misbehaviour.
func (in *Injector) Clear() {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.rules, in.delivery = nil, Delivery{}
}

// RuleState is a rule as it stands: how many calls it affected, and how many it still will.
type RuleState struct {
	Rule
	// Used counts the calls the rule affected.
	Used int `json:"used"`
	// Left is how many calls it will still affect: Times - Used, or -1 without a limit.
	Left int `json:"left"`
}

// Rules returns the rules in the order they were added, spent ones (Left 0) included.
func (in *Injector) Rules() []RuleState {
	in.mu.Lock()
	defer in.mu.Unlock()
	out := make([]RuleState, len(in.rules))
	for i, r := range in.rules {
		left := -1
		if r.Times > 0 {
			left = max(r.Times-r.used, 0)
		}
		out[i] = RuleState{Rule: r.Rule, Used: r.used, Left: left}
	}
	return out
}

func (in *Injector) chance(rate float64) bool {
	if in.rand == nil {
		in.rand = rand.New(rand.NewPCG(1, 1))
	}
	return rate >= 1 || in.rand.Float64() < rate
}

// Duplicate reports whether the next delivery should be sent twice.
func (in *Injector) Duplicate() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.delivery.DuplicateRate > 0 && in.chance(in.delivery.DuplicateRate)
}

// Reorder reports whether the next delivery should be held back behind later ones.
func (in *Injector) Reorder() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.delivery.ReorderRate > 0 && in.chance(in.delivery.ReorderRate)
}

// Check applies the rules for method, except those losing responses: it sleeps for any delay
// (or until ctx ends) and returns the status error of a failing rule, or nil.
func (in *Injector) Check(ctx context.Context, method string) error {
	fail, _ := in.check(ctx, method, false)
	return fail
}

// check applies the rules for method. fail is the error to return before the call runs; lost,
// when canLose, the error to return in place of the response of a call that ran.
func (in *Injector) check(ctx context.Context, method string, canLose bool) (fail, lost error) {
	in.mu.Lock()
	var delay time.Duration
	for _, r := range in.rules {
		if !matches(r.Method, method) || (r.LoseResponse && !canLose) || (r.Times > 0 && r.used >= r.Times) || !in.chance(r.Rate) {
			continue
		}
		r.used++
		delay += time.Duration(r.Delay)
		switch {
		case r.Code == codes.OK:
		case r.LoseResponse && lost == nil:
			lost = status.Errorf(r.Code, "injected fault on %s: the call ran, its response was lost", method)
		case !r.LoseResponse && fail == nil:
			fail = status.Errorf(r.Code, "injected fault on %s", method)
		}
	}
	in.mu.Unlock()
	if delay > 0 {
		t := time.NewTimer(delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err(), nil
		}
	}
	return fail, lost
}

func matches(pattern, method string) bool {
	switch {
	case pattern == "*":
		return true
	case strings.HasSuffix(pattern, "/"):
		return strings.HasPrefix(method, pattern)
	case strings.HasPrefix(pattern, "/"):
		return pattern == method
	}
	return method[strings.LastIndexByte(method, '/')+1:] == pattern
}

// UnaryInterceptor applies the rules to unary gRPC calls, losing responses included.
func (in *Injector) UnaryInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		fail, lost := in.check(ctx, info.FullMethod, true)
		if fail != nil {
			return nil, fail
		}
		resp, err := handler(ctx, req)
		if err == nil && lost != nil {
			return nil, lost
		}
		return resp, err
	}
}

// StreamInterceptor applies the rules when a gRPC stream opens.
func (in *Injector) StreamInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if err := in.Check(ss.Context(), info.FullMethod); err != nil {
			return err
		}
		return handler(srv, ss)
	}
}

// Handler serves the injector over HTTP:
//
//	GET    /emulator/v1/faults            the rules (each with used and left) and delivery settings
//	POST   /emulator/v1/faults            add a Rule (JSON)
//	PUT    /emulator/v1/faults/delivery   set Delivery (JSON)
//	DELETE /emulator/v1/faults            clear everything
func (in *Injector) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /emulator/v1/faults", func(w http.ResponseWriter, r *http.Request) {
		in.mu.Lock()
		d := in.delivery
		in.mu.Unlock()
		writeJSON(w, map[string]any{"rules": in.Rules(), "delivery": d})
	})
	mux.HandleFunc("POST /emulator/v1/faults", func(w http.ResponseWriter, r *http.Request) {
		var rule Rule
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&rule); err != nil {
			http.Error(w, "fault rule: "+err.Error(), http.StatusBadRequest)
			return
		}
		if err := in.Add(rule); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusCreated)
	})
	mux.HandleFunc("PUT /emulator/v1/faults/delivery", func(w http.ResponseWriter, r *http.Request) {
		var d Delivery
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&d); err != nil {
			http.Error(w, "delivery: "+err.Error(), http.StatusBadRequest)
			return
		}
		in.SetDelivery(d)
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("DELETE /emulator/v1/faults", func(w http.ResponseWriter, r *http.Request) {
		in.Clear()
		w.WriteHeader(http.StatusNoContent)
	})
	return mux
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
