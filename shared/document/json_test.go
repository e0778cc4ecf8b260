package document

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestScanJSON(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		maxSize int
		want    string // error fragment; "" accepts
	}{
		{name: "object", in: `{"a":[1,2,{"b":"c"}],"d":"]]]]"}`, maxSize: 100},
		{name: "at the size limit", in: `"` + strings.Repeat("x", 98) + `"`, maxSize: 100},
		{name: "over the size limit", in: `"` + strings.Repeat("x", 99) + `"`, maxSize: 100, want: "JSON is 101 bytes; the limit is 100"},
		{name: "at the depth limit", in: strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth), maxSize: MaxSize},
		{name: "over the depth limit", in: strings.Repeat("[", MaxDepth+1), maxSize: MaxSize, want: "nested more than 64 levels deep at byte 64"},
		{name: "brackets in strings", in: `["` + strings.Repeat("[", 100) + `\"` + strings.Repeat("{", 100) + `"]`, maxSize: MaxSize},
		{name: "many members", in: "{" + strings.Repeat(`"a":1,`, MaxEntries) + `"b":2}`, maxSize: MaxSize, want: "more than 4000 array elements"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ScanJSON([]byte(tt.in), tt.maxSize)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("ScanJSON = %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("ScanJSON = %v, want %q", err, tt.want)
			}
		})
	}
}

// FuzzScanJSON: what ScanJSON accepts and encoding/json decodes is never deeper than MaxDepth.
func FuzzScanJSON(f *testing.F) {
	for _, s := range []string{`{"a":[1,{"b":"]"}]}`, strings.Repeat("[", MaxDepth+1), `"\"["`, `[1,2,3]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if ScanJSON(data, MaxSize) != nil {
			return
		}
		var v any
		if json.Unmarshal(data, &v) == nil && depthOf(v) > MaxDepth {
			t.Fatalf("ScanJSON accepted %q, %d levels deep", data, depthOf(v))
		}
	})
}

func depthOf(v any) int {
	d := 0
	switch v := v.(type) {
	case []any:
		for _, e := range v {
			d = max(d, depthOf(e))
		}
		return d + 1
	case map[string]any:
		for _, e := range v {
			d = max(d, depthOf(e))
		}
		return d + 1
	}
	return 0
}
