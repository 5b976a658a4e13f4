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
