package main

import (
	"cmp"
	"fmt"
	"slices"
)

// pair is one round at concurrency 16: the floor's phase and the onboarding's.
type pair struct{ floor, onb phase }

// ratio is the round's onboarding throughput over the floor's.
func (p pair) ratio() float64 { return p.onb.Throughput / p.floor.Throughput }

// roundPairs measures rounds pairs of burst floor runs and burst onboardings at concurrency 16.
// A dev server on two cores has stalls of its own (a run now and then waits seconds for a
// task), which decide a single round's throughput, hence several rounds. The dev server slows
// as its history grows, so whichever runs second in a pair is at a disadvantage: the order
// alternates (floor first in odd rounds, onboarding first in even). label ends each phase's
// name part before the round ("", or ", stores apart").
func (b *bench) roundPairs(label string, rounds, burst int) ([]pair, error) {
	var pairs []pair
	for i := range rounds {
		var p pair
		measureFloor := func() (err error) {
			p.floor, err = b.phase(fmt.Sprintf("floor, concurrency 16%s, round %d", label, i+1), burst, 16, b.floor)
			return err
		}
		measureOnboard := func() (err error) {
			p.onb, err = b.phase(fmt.Sprintf("onboarding, concurrency 16%s, round %d", label, i+1), burst, 16, b.onboard)
			return err
		}
		order := []func() error{measureFloor, measureOnboard}
		if i%2 == 1 {
			order[0], order[1] = order[1], order[0]
		}
		for _, m := range order {
			if err := m(); err != nil {
				return pairs, err
			}
		}
		say(fmt.Sprintf("  round %d: throughput %.2f of the floor's", i+1, p.ratio()))
		pairs = append(pairs, p)
	}
	return pairs, nil
}

// medianRound sorts pairs by their throughput ratio and returns the median round (for an even
// count, the two middle rounds averaged: throughput, p50 and p99 of each side) and the median
// of the rounds' ratios.
func medianRound(pairs []pair) (floor, onb phase, ratio float64) {
	slices.SortFunc(pairs, func(x, y pair) int { return cmp.Compare(x.ratio(), y.ratio()) })
	lo, hi := pairs[(len(pairs)-1)/2], pairs[len(pairs)/2]
	floor, onb = lo.floor, lo.onb
	floor.Throughput, onb.Throughput = (lo.floor.Throughput+hi.floor.Throughput)/2, (lo.onb.Throughput+hi.onb.Throughput)/2
	floor.P50, onb.P50 = (lo.floor.P50+hi.floor.P50)/2, (lo.onb.P50+hi.onb.P50)/2
	floor.P99, onb.P99 = (lo.floor.P99+hi.floor.P99)/2, (lo.onb.P99+hi.onb.P99)/2
	return floor, onb, (lo.ratio() + hi.ratio()) / 2
}

// roundsRange says the lowest and highest round ratio of sorted pairs ("rounds 0.70–0.86").
func roundsRange(pairs []pair) string {
	return fmt.Sprintf("rounds %.2f–%.2f", pairs[0].ratio(), pairs[len(pairs)-1].ratio())
}

// storeGroups are the stores among the CPU groups: the processes an onboarding needs and the
// floor does not, and that, on this machine, share the cores with Temporal.
var storeGroups = []string{"ferretdb", "postgres", "redis"}

// cpuOf sums a phase's CPU per run over the named groups; no name sums every group.
func cpuOf(p phase, groups ...string) float64 {
	sum := 0.0
	for g, ms := range p.CPUPerRunMs {
		if len(groups) == 0 || slices.Contains(groups, g) {
			sum += ms
		}
	}
	return sum
}

// cpuSplit is what the rounds' CPU per run says of their throughput ratio, when the cores are
// what limits it (the machine has next to no idle time during the rounds). Each field is the
// median over the rounds.
type cpuSplit struct {
	// Floor and Onboarding are the CPU per run of every process; StoresExtra is the stores'
	// CPU per onboarding above theirs per floor run.
	Floor, Onboarding, StoresExtra float64
	// Predicted is the floor's CPU per run over the onboarding's: it should read close to the
	// measured ratio, or something other than CPU limits the rounds.
	Predicted float64
	// Ceiling is the floor's CPU over the floor's plus the stores' extra alone: the ratio if
	// this process and Temporal spent nothing more on an onboarding than on a floor run. On
	// cores shared with the stores, no change to our code can take the ratio above it.
	Ceiling float64
}

// splitCPU computes the cpuSplit of rounds; ok is false when a round lacks CPU figures
// (/proc unreadable) or there is none.
func splitCPU(pairs []pair) (s cpuSplit, ok bool) {
	var floor, onb, extra, predicted, ceiling []float64
	for _, p := range pairs {
		f, o := cpuOf(p.floor), cpuOf(p.onb)
		if f <= 0 || o <= 0 {
			return cpuSplit{}, false
		}
		x := max(cpuOf(p.onb, storeGroups...)-cpuOf(p.floor, storeGroups...), 0)
		floor, onb, extra = append(floor, f), append(onb, o), append(extra, x)
		predicted, ceiling = append(predicted, f/o), append(ceiling, f/(f+x))
	}
	if len(pairs) == 0 {
		return cpuSplit{}, false
	}
	return cpuSplit{Floor: median(floor), Onboarding: median(onb), StoresExtra: median(extra),
		Predicted: median(predicted), Ceiling: median(ceiling)}, true
}

// median of xs (the mean of the middle two for an even count); xs is sorted in place.
func median(xs []float64) float64 {
	slices.Sort(xs)
	return (xs[(len(xs)-1)/2] + xs[len(xs)/2]) / 2
}

// cpuRows are the report's rows of the rounds' cpuSplit, as throughputs per CPU-second (runs
// per second of one core), so that each ratio reads as the throughput row's does: none
// without CPU figures.
func cpuRows(pairs []pair) []row {
	s, ok := splitCPU(pairs)
	if !ok {
		return nil
	}
	perCPUSecond := func(ms float64) float64 { return 1000 / ms }
	return []row{
		{"Same, predicted from CPU per run (runs per CPU-second, every process; median of rounds)",
			perCPUSecond(s.Onboarding), perCPUSecond(s.Floor), s.Predicted, ""},
		{fmt.Sprintf("Ceiling the stores leave on shared cores: onboarding costing the floor's CPU plus only the stores' extra, %.1f ms of PostgreSQL, FerretDB and Redis (runs per CPU-second; median of rounds)", s.StoresExtra),
			perCPUSecond(s.Floor + s.StoresExtra), perCPUSecond(s.Floor), s.Ceiling, ""},
	}
}
