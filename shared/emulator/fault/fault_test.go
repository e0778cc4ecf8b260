package fault

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestCheck(t *testing.T) {
	const run = "/google.cloud.run.v2.Jobs/RunJob"
	tests := []struct {
		name  string
		rule  Rule
		calls int
		fails int // how many of the calls fail
	}{
		{name: "full method", rule: Rule{Method: run, Code: codes.Unavailable}, calls: 3, fails: 3},
		{name: "last element", rule: Rule{Method: "RunJob", Code: codes.Unavailable}, calls: 3, fails: 3},
		{name: "service prefix", rule: Rule{Method: "/google.cloud.run.v2.Jobs/", Code: codes.Internal}, calls: 2, fails: 2},
		{name: "other method", rule: Rule{Method: "GetJob", Code: codes.Unavailable}, calls: 3, fails: 0},
		{name: "times", rule: Rule{Method: "*", Code: codes.Aborted, Times: 2}, calls: 5, fails: 2},
		{name: "delay only", rule: Rule{Method: "*", Delay: Duration(time.Millisecond)}, calls: 2, fails: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := New(1)
			if err := in.Add(tt.rule); err != nil {
				t.Fatal(err)
			}
			fails := 0
			for i := 0; i < tt.calls; i++ {
				if err := in.Check(context.Background(), run); err != nil {
					if status.Code(err) != tt.rule.Code {
						t.Errorf("code = %v, want %v", status.Code(err), tt.rule.Code)
					}
					fails++
				}
			}
			if fails != tt.fails {
				t.Errorf("%d of %d calls failed, want %d", fails, tt.calls, tt.fails)
			}
		})
	}
}

func TestRate(t *testing.T) {
	in := New(42)
	if err := in.Add(Rule{Method: "*", Code: codes.Unavailable, Rate: 0.3}); err != nil {
		t.Fatal(err)
	}
	fails := 0
	for i := 0; i < 10000; i++ {
		if in.Check(context.Background(), "/x/Y") != nil {
			fails++
		}
	}
	if fails < 2700 || fails > 3300 {
		t.Errorf("%d of 10000 failed at rate 0.3", fails)
	}
}

func TestDelayHonoursContext(t *testing.T) {
	in := New(1)
	_ = in.Add(Rule{Method: "*", Delay: Duration(time.Hour)})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := in.Check(ctx, "/x/Y"); status.Code(err) != codes.DeadlineExceeded {
		t.Errorf("Check = %v, want DeadlineExceeded", err)
	}
}

func TestAddRefusesBadRules(t *testing.T) {
	in := New(1)
	if err := in.Add(Rule{}); err == nil {
		t.Error("empty method accepted")
	}
	if err := in.Add(Rule{Method: "*", Rate: 2}); err == nil {
		t.Error("rate 2 accepted")
	}
}

// TestLoseResponse: a lose_response rule lets the call run, then returns its code instead of
// the response; Check (streams, HTTP routes) ignores such rules; rules without it fail first.
func TestLoseResponse(t *testing.T) {
	const method = "/google.cloud.run.v2.Jobs/CreateJob"
	tests := []struct {
		name    string
		rule    Rule
		wantRan bool
		want    codes.Code
	}{
		{name: "lost after running", rule: Rule{Method: "CreateJob", Code: codes.DeadlineExceeded, LoseResponse: true}, wantRan: true, want: codes.DeadlineExceeded},
		{name: "failed before running", rule: Rule{Method: "CreateJob", Code: codes.Unavailable}, wantRan: false, want: codes.Unavailable},
		{name: "other method", rule: Rule{Method: "GetJob", Code: codes.DeadlineExceeded, LoseResponse: true}, wantRan: true, want: codes.OK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := New(1)
			if err := in.Add(tt.rule); err != nil {
				t.Fatal(err)
			}
			ran := false
			handler := func(ctx context.Context, req any) (any, error) { ran = true; return "response", nil }
			resp, err := in.UnaryInterceptor()(context.Background(), "request", &grpc.UnaryServerInfo{FullMethod: method}, handler)
			if ran != tt.wantRan || status.Code(err) != tt.want {
				t.Fatalf("ran = %v, err = %v; want ran %v, code %v", ran, err, tt.wantRan, tt.want)
			}
			if err != nil && resp != nil {
				t.Errorf("response %v returned with error %v", resp, err)
			}
			if err := in.Check(context.Background(), method); tt.rule.LoseResponse && err != nil {
				t.Errorf("Check applied a lose_response rule: %v", err)
			}
		})
	}
}

// TestLoseResponseOverHTTP: the admin endpoint accepts lose_response and refuses it without a code.
func TestLoseResponseOverHTTP(t *testing.T) {
	in := New(1)
	srv := httptest.NewServer(in.Handler())
	defer srv.Close()
	for _, tt := range []struct {
		body string
		want int
	}{
		{body: `{"method":"RunJob","code":4,"lose_response":true,"times":1}`, want: http.StatusCreated},
		{body: `{"method":"RunJob","lose_response":true}`, want: http.StatusBadRequest},
	} {
		resp, err := http.Post(srv.URL+"/emulator/v1/faults", "application/json", strings.NewReader(tt.body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("POST %s = %d, want %d", tt.body, resp.StatusCode, tt.want)
		}
	}
	if rs := in.Rules(); len(rs) != 1 || !rs[0].LoseResponse || rs[0].Times != 1 {
		t.Errorf("rules = %+v", rs)
	}
}

// TestRulesShowWhatIsLeft: GET lists each rule with the calls it affected and those it still will.
func TestRulesShowWhatIsLeft(t *testing.T) {
	in := New(1)
	srv := httptest.NewServer(in.Handler())
	defer srv.Close()
	for _, r := range []Rule{{Method: "RunJob", Code: codes.Unavailable, Times: 2}, {Method: "GetJob", Code: codes.Internal}} {
		if err := in.Add(r); err != nil {
			t.Fatal(err)
		}
	}
	get := func() []RuleState {
		t.Helper()
		resp, err := http.Get(srv.URL + "/emulator/v1/faults")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body struct{ Rules []RuleState }
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatal(err)
		}
		return body.Rules
	}
	tests := []struct {
		name             string
		calls            int
		runLeft, runUsed int
		getLeft          int
	}{
		{name: "fresh", calls: 0, runLeft: 2, runUsed: 0, getLeft: -1},
		{name: "one use", calls: 1, runLeft: 1, runUsed: 1, getLeft: -1},
		{name: "both uses", calls: 1, runLeft: 0, runUsed: 2, getLeft: -1},
		{name: "spent", calls: 1, runLeft: 0, runUsed: 2, getLeft: -1},
	}
	for _, tt := range tests {
		for range tt.calls {
			_ = in.Check(context.Background(), "/google.cloud.run.v2.Jobs/RunJob")
		}
		rs := get()
		if len(rs) != 2 || rs[0].Left != tt.runLeft || rs[0].Used != tt.runUsed || rs[0].Times != 2 || rs[1].Left != tt.getLeft {
			t.Errorf("%s: rules = %+v, want RunJob used %d left %d, GetJob left %d", tt.name, rs, tt.runUsed, tt.runLeft, tt.getLeft)
		}
	}
	if err := in.Check(context.Background(), "/google.cloud.run.v2.Jobs/RunJob"); err != nil {
		t.Errorf("a spent rule still fails calls: %v", err)
	}
}
