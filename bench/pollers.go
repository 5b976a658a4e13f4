package main

import "fmt"

// pollerPairs measures what WORKER_POLLERS buys: onboardings at concurrency 16 on a worker
// with the SDK's default pollers (2 of each kind) against the same on a worker with the
// configured number, rounds pairs in alternating order (the dev server slows as its history
// grows), the worker restarted between phases. It returns the two sides' means (throughput and
// p50) and every phase, and leaves the configured worker running.
func (b *bench) pollerPairs(rounds, burst int) (tuned, sdk phase, phases []phase, err error) {
	configured := b.pollers
	defer func() {
		if b.pollers != configured {
			b.pollers = configured
			if rerr := b.restartWorker(); err == nil {
				err = rerr
			}
		}
	}()
	measure := func(pollers int, name string) (phase, error) {
		if b.pollers != pollers {
			b.pollers = pollers
			if err := b.restartWorker(); err != nil {
				return phase{}, err
			}
		}
		return b.phase(name, burst, 16, b.onboard)
	}
	for i := range rounds {
		sides := []struct {
			pollers int
			name    string
			sum     *phase
		}{
			{configured, fmt.Sprintf("onboarding, concurrency 16, %d pollers, round %d", configured, i+1), &tuned},
			{0, fmt.Sprintf("onboarding, concurrency 16, the SDK's default pollers, round %d", i+1), &sdk},
		}
		if i%2 == 1 {
			sides[0], sides[1] = sides[1], sides[0]
		}
		for _, s := range sides {
			p, err := measure(s.pollers, s.name)
			if err != nil {
				return tuned, sdk, phases, err
			}
			phases = append(phases, p)
			s.sum.Throughput += p.Throughput / float64(rounds)
			s.sum.P50 += p.P50 / float64(rounds)
		}
	}
	return tuned, sdk, phases, nil
}

// restartWorker stops the worker and starts a new one with b.pollers.
func (b *bench) restartWorker() error {
	b.worker.Stop()
	return b.startWorker()
}
