package platform

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestSplitEventSource(t *testing.T) {
	tests := []struct {
		name, source, project, topic string
		wantErr                      bool
	}{
		{name: "topic", source: "//pubsub.googleapis.com/projects/p1/topics/runway-deploy-x", project: "p1", topic: "runway-deploy-x"},
		{name: "other service", source: "//storage.googleapis.com/projects/p1/buckets/b", wantErr: true},
		{name: "subscription", source: "//pubsub.googleapis.com/projects/p1/subscriptions/s", wantErr: true},
		{name: "empty topic", source: "//pubsub.googleapis.com/projects/p1/topics/", wantErr: true},
		{name: "extra segment", source: "//pubsub.googleapis.com/projects/p1/topics/t/x", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, topic, err := SplitEventSource(tt.source)
			if (err != nil) != tt.wantErr || p != tt.project || topic != tt.topic {
				t.Fatalf("SplitEventSource(%q) = %q, %q, %v; want %q, %q, error %v", tt.source, p, topic, err, tt.project, tt.topic, tt.wantErr)
			}
		})
	}
}

func TestWorkloadOfTopic(t *testing.T) {
	for topic, want := range map[string]string{
		DeployTopic("job-a"):  "job-a",
		TriggerTopic("job-b"): "job-b",
		"runway-deploy-":      "",
		"gcr":                 "",
	} {
		got, ok := WorkloadOfTopic(topic)
		if got != want || ok != (want != "") {
			t.Errorf("WorkloadOfTopic(%q) = %q, %v; want %q", topic, got, ok, want)
		}
	}
}

func TestSettingsRoundTrip(t *testing.T) {
	s := Settings{Workload: "w", Schedule: "0 3 * * *", TimeZone: "Europe/Berlin", ConcurrencyPolicy: "Forbid",
		StartingDeadline: 5 * time.Minute, CreatedAt: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), Timeout: time.Hour, MaxRetries: 3,
		Monitoring: Monitoring{Enabled: true, Grace: 10 * time.Minute, FailureThreshold: 2, RecoveryThreshold: 1}, Channels: []string{"slack"}}
	got, err := SettingsOf(map[string]string{AnnotationSettings: s.Encode()})
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(s, got); d != "" {
		t.Fatalf("round trip (-want +got):\n%s", d)
	}
	if _, err := SettingsOf(nil); err == nil {
		t.Fatal("SettingsOf(no annotation) succeeded")
	}
	if _, err := SettingsOf(map[string]string{AnnotationSettings: "{"}); err == nil {
		t.Fatal("SettingsOf(bad JSON) succeeded")
	}
}

func TestRecordKeys(t *testing.T) {
	if got := RunRecordKey("w", "pipeline-1-job-2"); got != "runs/w/pipeline-1-job-2" {
		t.Errorf("plain id key = %q", got)
	}
	for _, id := range []string{"../x", "a/b", "", strings.Repeat("x", 200), ".."} {
		k := RunRecordKey("w", id)
		if strings.Count(k, "/") != 2 || !strings.HasPrefix(k, "runs/w/h-") {
			t.Errorf("RunRecordKey(%q) = %q: want a hashed, single-segment name", id, k)
		}
	}
	slot := time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)
	if got, want := SlotRecordKey("w", slot), "runs/w/slot-29934900"; got != want {
		t.Errorf("SlotRecordKey = %q, want %q", got, want)
	}
	// Reserved names are hashed: a request cannot take a slot's claim, nor another id's hash.
	for _, id := range []string{"slot-29934900", "slot-", "h-" + strings.Repeat("0", 32)} {
		if k := RunRecordKey("w", id); k == "runs/w/"+id || !strings.HasPrefix(k, "runs/w/h-") {
			t.Errorf("RunRecordKey(%q) = %q: want it hashed", id, k)
		}
	}
	if k := RunRecordKey("w", "slot.1"); k != "runs/w/slot.1" {
		t.Errorf("RunRecordKey(slot.1) = %q: only slot- is reserved", k)
	}
}

// FuzzRunRecordKey checks that distinct request ids get distinct keys, each one plain segment
// that is no slot's claim and sorts outside the slot claims (status reads around them).
func FuzzRunRecordKey(f *testing.F) {
	f.Add("ci-1-2", "slot-29934900")
	f.Add("h-0123", "x/y")
	f.Add("slot.", "slot-")
	f.Fuzz(func(t *testing.T, a, b string) {
		ka, kb := RunRecordKey("w", a), RunRecordKey("w", b)
		if a != b && ka == kb {
			t.Fatalf("RunRecordKey(%q) = RunRecordKey(%q) = %q", a, b, ka)
		}
		if strings.Count(ka, "/") != 2 || !strings.HasPrefix(ka, "runs/w/") {
			t.Fatalf("RunRecordKey(%q) = %q: not one segment under runs/w/", a, ka)
		}
		if _, ok := SlotOfKey(ka); ok {
			t.Fatalf("RunRecordKey(%q) = %q: a slot's claim", a, ka)
		}
		if ka >= SlotRecordPrefix("w") && ka <= AfterSlotRecords("w") {
			t.Fatalf("RunRecordKey(%q) = %q sorts among the slot claims [%q, %q]", a, ka, SlotRecordPrefix("w"), AfterSlotRecords("w"))
		}
	})
}

func TestSlotOfKey(t *testing.T) {
	slot := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		key  string
		want time.Time
		ok   bool
	}{
		{name: "slot record", key: SlotRecordKey("w", slot), want: slot, ok: true},
		{name: "run record", key: RunRecordKey("w", "pipeline-1"), ok: false},
		{name: "request id that looks like a slot", key: RunRecordKey("w", "slot-x"), ok: false},
		{name: "request id that is a slot's name", key: RunRecordKey("w", "slot-29934900"), ok: false},
		{name: "deploy record", key: DeployRecordKey("w", "slot-5"), ok: false},
		{name: "deeper key", key: "runs/w/x/slot-5", ok: false},
		{name: "negative", key: "runs/w/slot--5", ok: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := SlotOfKey(tt.key)
			if ok != tt.ok || !got.Equal(tt.want) {
				t.Fatalf("SlotOfKey(%q) = %v, %v; want %v, %v", tt.key, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestRecordTime(t *testing.T) {
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		data    string
		want    time.Time
		wantErr bool
	}{
		{name: "run record", data: `{"request_id":"r","outcome":"started","time":"2026-12-01T10:00:00Z"}`, want: at},
		{name: "no time", data: `{"request_id":"r"}`, wantErr: true},
		{name: "not json", data: `x`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := RecordTime([]byte(tt.data))
			if (err != nil) != tt.wantErr || !got.Equal(tt.want) {
				t.Fatalf("RecordTime(%s) = %v, %v; want %v, error %v", tt.data, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

// FuzzSlotOfKey checks that SlotOfKey accepts exactly the keys SlotRecordKey makes, and finds
// their slot again.
func FuzzSlotOfKey(f *testing.F) {
	f.Add("runs/w/slot-29934900")
	f.Add("runs/w/slot-")
	f.Add("runs/w/x/slot-1")
	f.Add("deploys/w/slot-1")
	f.Fuzz(func(t *testing.T, key string) {
		slot, ok := SlotOfKey(key)
		if !ok {
			return
		}
		w := strings.TrimPrefix(key[:strings.LastIndex(key, "/slot-")], "runs/")
		if again := SlotRecordKey(w, slot); again != key {
			t.Fatalf("SlotOfKey(%q) = %v, which SlotRecordKey writes as %q", key, slot, again)
		}
		if slot.Unix()%60 != 0 {
			t.Fatalf("SlotOfKey(%q) = %v: not a whole minute", key, slot)
		}
	})
}
