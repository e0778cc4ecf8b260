package runcontract

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestLabels(t *testing.T) {
	many := map[string]string{}
	for i := range MaxLabels + 1 {
		many["k"+strings.Repeat("a", i%50)+string(rune('a'+i/50))] = ""
	}
	tests := []struct {
		name    string
		labels  map[string]string
		wantErr string // substring; "" means valid
	}{
		{name: "empty", labels: nil},
		{name: "plain", labels: map[string]string{"tenant": "acme", "cost_center": "r-and-d", "empty": ""}},
		{name: "international", labels: map[string]string{"équipe": "données", "地域": "東京"}},
		{name: "key at the limit", labels: map[string]string{"k" + strings.Repeat("x", 62): "v"}},
		{name: "dotted key", labels: map[string]string{"Tenant.Scale": "x"}, wantErr: "Label key 'Tenant.Scale' violates format constraints"},
		{name: "space in key", labels: map[string]string{"bad key": "x"}, wantErr: "Label key 'bad key'"},
		{name: "capital key", labels: map[string]string{"Bad": "x"}, wantErr: "Label key 'Bad'"},
		{name: "digit first", labels: map[string]string{"1st": "x"}, wantErr: "Label key '1st'"},
		{name: "empty key", labels: map[string]string{"": "x"}, wantErr: "Label key ''"},
		{name: "key too long", labels: map[string]string{"k" + strings.Repeat("x", 63): "v"}, wantErr: "at most 63"},
		{name: "capital value", labels: map[string]string{"team": "Platform"}, wantErr: "Label value 'Platform'"},
		{name: "value too long", labels: map[string]string{"team": strings.Repeat("v", 64)}, wantErr: "Label value"},
		{name: "value with dot", labels: map[string]string{"v": "1.2"}, wantErr: "Label value '1.2'"},
		{name: "too many", labels: many, wantErr: "at most 64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := LabelsProblem(tt.labels)
			if tt.wantErr == "" && got != "" || tt.wantErr != "" && !strings.Contains(got, tt.wantErr) {
				t.Errorf("LabelsProblem(%v) = %q, want %q", tt.labels, got, tt.wantErr)
			}
		})
	}
}

func TestReservedEnv(t *testing.T) {
	for _, n := range []string{"PORT", "K_SERVICE", "CLOUD_RUN_JOB", "CLOUD_RUN_EXECUTION", "CLOUD_RUN_TASK_INDEX", "CLOUD_RUN_TASK_ATTEMPT", "CLOUD_RUN_TASK_COUNT"} {
		if !IsReservedEnv(n) {
			t.Errorf("%s is not reserved", n)
		}
	}
	for _, n := range []string{"PORTAL", "CLOUD_RUN_JOBS", "port", "HOME"} {
		if IsReservedEnv(n) {
			t.Errorf("%s is reserved", n)
		}
	}
	got := ReservedEnvMessage([]string{"A", "CLOUD_RUN_TASK_INDEX", "PORT", "CLOUD_RUN_TASK_INDEX"})
	want := "The following reserved env names were provided: CLOUD_RUN_TASK_INDEX, PORT. These values are automatically set by the system."
	if got != want {
		t.Errorf("ReservedEnvMessage = %q, want %q", got, want)
	}
	if m := ReservedEnvMessage([]string{"A"}); m != "" {
		t.Errorf("ReservedEnvMessage(A) = %q", m)
	}
}

func TestEnvAndContainer(t *testing.T) {
	tests := []struct {
		name, env, value string
		want             string
	}{
		{name: "ok", env: "A", value: "b"},
		{name: "empty", env: "", want: "must not be empty"},
		{name: "equals", env: "A=B", want: "must not contain"},
		{name: "long name", env: strings.Repeat("A", MaxEnvNameLen+1), want: "characters long"},
		{name: "long value", env: "A", value: strings.Repeat("v", MaxEnvValueBytes+1), want: "bytes long"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := EnvProblem(tt.env, tt.value)
			if tt.want == "" && got != "" || tt.want != "" && !strings.Contains(got, tt.want) {
				t.Errorf("EnvProblem = %q, want %q", got, tt.want)
			}
			if len(got) > 400 {
				t.Errorf("EnvProblem quotes %d bytes back", len(got))
			}
		})
	}
	for name, ok := range map[string]bool{"": true, "job": true, "worker-1": true, "Job": false, "-a": false, strings.Repeat("a", 64): false} {
		if got := ContainerNameProblem(name) == ""; got != ok {
			t.Errorf("ContainerNameProblem(%q) valid = %v, want %v", name, got, ok)
		}
	}
}

// FuzzLabel checks that a key or value is accepted exactly when it meets the documented rules,
// and that a refusal quotes a bounded, valid string.
func FuzzLabel(f *testing.F) {
	for _, s := range []string{"", "a", "Tenant.Scale", "bad key", "équipe", "k-1_2", strings.Repeat("a", 64), "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n := utf8.RuneCountInString(s)
		valid := utf8.ValidString(s)
		chars := true
		for _, r := range s {
			if !(r == '_' || r == '-' || r >= '0' && r <= '9' || strings.ToLower(string(r)) == string(r) && r > ' ' && r != '.' && r != '/' && r != ':' && r != '=' && r != '@') {
				chars = false
			}
		}
		if p := LabelValueProblem(s); p == "" && (!valid || n > MaxLabelValueLen || !chars) {
			t.Errorf("value %q accepted", s)
		} else if p != "" && (len(p) > 500 || !utf8.ValidString(p) && valid) {
			t.Errorf("value refusal %q", p)
		}
		if p := LabelKeyProblem(s); p == "" && (n == 0 || n > MaxLabelKeyLen || !valid) {
			t.Errorf("key %q accepted", s)
		}
	})
}
