package main

import (
	"math"
	"testing"
)

func TestSplitCPUPredictsAndBoundsTheRatio(t *testing.T) {
	cpu := func(bench, temporal, ferretdb, postgres, redis float64) phase {
		return phase{CPUPerRunMs: map[string]float64{"bench": bench, "temporal": temporal, "ferretdb": ferretdb, "postgres": postgres, "redis": redis}}
	}
	near := func(got, want float64) bool { return math.Abs(got-want) < 1e-9 }

	// Floor 90.5 ms a run, of which 0.5 ms the stores'; onboarding 118 ms, of which 17 ms the
	// stores': predicted 90.5/118, ceiling 90.5/(90.5+16.5).
	one := pair{floor: cpu(10, 80, 0, 0.5, 0), onb: cpu(16, 85, 9, 7.5, 0.5)}
	s, ok := splitCPU([]pair{one})
	if !ok {
		t.Fatal("a round with CPU figures: not ok")
	}
	if !near(s.Floor, 90.5) || !near(s.Onboarding, 118) || !near(s.StoresExtra, 16.5) {
		t.Errorf("CPU per run: floor %.2f, onboarding %.2f, stores' extra %.2f; want 90.5, 118, 16.5", s.Floor, s.Onboarding, s.StoresExtra)
	}
	if !near(s.Predicted, 90.5/118) || !near(s.Ceiling, 90.5/107) {
		t.Errorf("predicted %.4f, ceiling %.4f; want %.4f and %.4f", s.Predicted, s.Ceiling, 90.5/118, 90.5/107)
	}
	// The rows read as the throughput row: value over baseline is the ratio.
	for _, r := range cpuRows([]pair{one}) {
		if !near(r.Value/r.Baseline, r.Ratio) {
			t.Errorf("%s: %.4f / %.4f is not its ratio %.4f", r.Name, r.Value, r.Baseline, r.Ratio)
		}
	}

	// Three rounds: each figure is the median of the rounds' own (here the second round's).
	low := pair{floor: cpu(10, 70, 0, 0, 0), onb: cpu(20, 90, 10, 10, 0)} // 80/130, 80/100
	high := pair{floor: cpu(10, 90, 0, 0, 0), onb: cpu(12, 92, 4, 2, 0)}  // 100/110, 100/106
	mid := pair{floor: cpu(10, 80, 0, 0, 0), onb: cpu(15, 85, 8, 7, 0)}   // 90/115, 90/105
	s, _ = splitCPU([]pair{low, high, mid})
	if !near(s.Predicted, 90.0/115) || !near(s.Ceiling, 90.0/105) || !near(s.StoresExtra, 15) {
		t.Errorf("median of three rounds: predicted %.4f, ceiling %.4f, stores' extra %.1f; want %.4f, %.4f, 15", s.Predicted, s.Ceiling, s.StoresExtra, 90.0/115, 90.0/105)
	}

	// Stores that used less during the onboarding than during the floor leave no ceiling below 1.
	less := pair{floor: cpu(10, 80, 0, 3, 0), onb: cpu(10, 80, 0, 1, 0)}
	if s, _ := splitCPU([]pair{less}); !near(s.Ceiling, 1) {
		t.Errorf("stores' extra below zero: ceiling %.4f, want 1", s.Ceiling)
	}

	// No CPU figures (unreadable /proc), or no rounds: no split, and no rows.
	if _, ok := splitCPU([]pair{one, {floor: phase{}, onb: phase{}}}); ok {
		t.Error("a round without CPU figures: ok")
	}
	if _, ok := splitCPU(nil); ok || cpuRows(nil) != nil {
		t.Error("no rounds: a split")
	}
}
