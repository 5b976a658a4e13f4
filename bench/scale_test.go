package main

import "testing"

func TestJoinHalvesWeighsCPUByRuns(t *testing.T) {
	a := phase{Concurrency: 16, Throughput: 20, Latencies: []float64{1, 2, 3}, CPUPerRunMs: map[string]float64{"temporal": 60}}
	b := phase{Concurrency: 16, Throughput: 10, Latencies: []float64{4}, CPUPerRunMs: map[string]float64{"temporal": 100}}
	a.summarize()
	b.summarize()
	p := joinHalves("floor", a, b)
	if p.Runs != 4 || p.Max != 4 {
		t.Errorf("joined %d runs (max %.0f), want 4 (max 4)", p.Runs, p.Max)
	}
	if p.Throughput != 15 {
		t.Errorf("throughput %.1f, want the mean of equal windows, 15", p.Throughput)
	}
	if got := p.CPUPerRunMs["temporal"]; got != 70 {
		t.Errorf("CPU per run %.1f, want (3×60 + 1×100)/4 = 70", got)
	}
}
