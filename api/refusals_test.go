package api

import (
	"testing"
	"time"
)

func TestRefusalLimiterCountsWhatItDoesNotRecord(t *testing.T) {
	t.Parallel()
	l := newRefusalLimiter(1, 3)
	now := time.Unix(1_700_000_000, 0)
	recorded := 0
	for range 10 {
		if ok, _ := l.allow("203.0.113.7", now); ok {
			recorded++
		}
	}
	if recorded != 3 {
		t.Fatalf("burst of 3 recorded %d", recorded)
	}
	if ok, _ := l.allow("198.51.100.1", now); !ok {
		t.Fatal("another client has its own budget")
	}
	ok, suppressed := l.allow("203.0.113.7", now.Add(2*time.Second))
	if !ok || suppressed != 7 {
		t.Fatalf("after the budget refills: ok=%v suppressed=%d, want true 7", ok, suppressed)
	}
}
