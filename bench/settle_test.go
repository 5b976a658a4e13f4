package main

import "testing"

func TestCPULineCountsIowaitAsBusyAndStealAndGuestNot(t *testing.T) {
	// user nice system idle iowait irq softirq steal guest guest_nice
	busy, total, ok := cpuLine("cpu  100 0 50 800 30 0 20 500 100 0")
	if !ok {
		t.Fatal("a well-formed cpu line was not parsed")
	}
	if busy != 200 || total != 1500 {
		t.Errorf("busy %d of %d, want 200 (user, system, iowait, softirq) of 1500 (guest is within user)", busy, total)
	}
	for _, bad := range []string{"", "cpu0 1 2 3 4 5 6", "cpu 1 2 x 4 5 6"} {
		if _, _, ok := cpuLine(bad); ok {
			t.Errorf("cpuLine(%q) parsed", bad)
		}
	}
}
