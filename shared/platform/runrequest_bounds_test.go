package platform

import (
	"strings"
	"testing"
)

// TestDecodeRunRequestBounded: a run request body over the bounds is refused before
// encoding/json reads it.
func TestDecodeRunRequestBounded(t *testing.T) {
	tests := []struct {
		name string
		body string
		want string // fragment of the error; "" accepts
	}{
		{name: "deep args", body: `{"request_id":"r1","args":` + strings.Repeat("[", 65) + `}`, want: "run request body: JSON is nested more than 64 levels deep"},
		{name: "too large", body: `{"request_id":"r1","reason":"` + strings.Repeat("x", MaxRunRequestBody) + `"}`, want: "run request body: JSON is 262175 bytes; the limit is 262144"},
		{name: "many env entries", body: `{"request_id":"r1","env":{` + strings.Repeat(`"A":"b",`, 6000) + `"B":"c"}}`, want: "more than 4000 array elements and object members"},
		{name: "largest accepted env", body: `{"request_id":"r1","env":{"A":"` + strings.Repeat("x", MaxEnvValue) + `"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := DecodeRunRequest([]byte(tt.body))
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("DecodeRunRequest = %v, want no error", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("DecodeRunRequest = %v, want %q", err, tt.want)
			}
		})
	}
}
