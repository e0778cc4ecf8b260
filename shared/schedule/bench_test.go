package schedule

import (
	"testing"
	"time"
)

func BenchmarkParse(b *testing.B) {
	for b.Loop() {
		if _, err := Parse("30 6-16/4 * * 1-5", "Europe/Berlin"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkNextN(b *testing.B) {
	s, err := Parse("30 6-16/4 * * 1-5", "Europe/Berlin")
	if err != nil {
		b.Fatal(err)
	}
	from := time.Date(2025, time.January, 1, 0, 0, 0, 0, time.UTC)
	for b.Loop() {
		if got := s.NextN(from, 10); len(got) != 10 {
			b.Fatalf("NextN gave %d slots", len(got))
		}
	}
}

// BenchmarkMostRecent measures the bounded path: an irregular schedule a year behind, so
// more than 100 slots are missed and the latest is found by binary search.
func BenchmarkMostRecent(b *testing.B) {
	s, err := Parse("30 6-16/4 * * 1-5", "Europe/Berlin")
	if err != nil {
		b.Fatal(err)
	}
	earliest := time.Date(2024, time.January, 1, 0, 0, 0, 0, time.UTC)
	now := time.Date(2025, time.March, 1, 12, 0, 0, 0, time.UTC) // a Saturday
	for b.Loop() {
		if due, err := s.MostRecent(earliest, now); err != nil || !due.TooMany {
			b.Fatalf("MostRecent = %+v, %v", due, err)
		}
	}
}

// BenchmarkMostRecentRegular measures the fast path: a regular schedule far behind.
func BenchmarkMostRecentRegular(b *testing.B) {
	s, err := Parse("*/5 * * * *", "")
	if err != nil {
		b.Fatal(err)
	}
	earliest := time.Date(2024, time.January, 1, 0, 0, 0, 0, time.UTC)
	now := time.Date(2025, time.March, 1, 12, 0, 0, 0, time.UTC)
	for b.Loop() {
		if due, err := s.MostRecent(earliest, now); err != nil || !due.TooMany {
			b.Fatalf("MostRecent = %+v, %v", due, err)
		}
	}
}
