package main

import (
	"context"
	"fmt"
	"time"
)

// interleaved measures two operations at concurrency 1 in alternation (a b, b a, a b, …), n runs
// each, with each run's CPU charged to its own phase. Whatever the machine does meanwhile
// (another tenant of the host, a checkpoint, autovacuum) then falls on both alike, so their
// ratio is a same-moment comparison; measured one after the other, the host's noise alone moved
// the floor's p50 by 13% between the start and the end of one run.
func (b *bench) interleaved(n int, aName string, a func(context.Context) error, bName string, bOp func(context.Context) error) (pa, pb phase, err error) {
	say(fmt.Sprintf("%s and %s, interleaved: %d runs each", aName, bName, n))
	pa, pb = phase{Name: aName, Concurrency: 1}, phase{Name: bName, Concurrency: 1}
	cpuA, cpuB := map[string]float64{}, map[string]float64{}
	var elapsedA, elapsedB time.Duration
	run := func(p *phase, cpu map[string]float64, elapsed *time.Duration, op func(context.Context) error) error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		before := sampleCPU()
		t0 := time.Now()
		err := op(ctx)
		d := time.Since(t0)
		for k, v := range perRunMs(before, sampleCPU(), 1) {
			cpu[k] += v
		}
		*elapsed += d
		p.Latencies = append(p.Latencies, float64(d.Microseconds())/1000)
		return err
	}
	for i := range n {
		first, second := func() error { return run(&pa, cpuA, &elapsedA, a) }, func() error { return run(&pb, cpuB, &elapsedB, bOp) }
		if i%2 == 1 {
			first, second = second, first
		}
		if err = first(); err != nil {
			return
		}
		if err = second(); err != nil {
			return
		}
	}
	for _, x := range []struct {
		p       *phase
		cpu     map[string]float64
		elapsed time.Duration
	}{{&pa, cpuA, elapsedA}, {&pb, cpuB, elapsedB}} {
		x.p.summarize()
		x.p.Elapsed, x.p.Throughput, x.p.Tenants = x.elapsed, float64(n)/x.elapsed.Seconds(), b.tenants()
		x.p.CPUPerRunMs = map[string]float64{}
		for k, v := range x.cpu {
			x.p.CPUPerRunMs[k] = v / float64(n)
		}
		say(fmt.Sprintf("  %s: p50 %.1f ms, p99 %.1f ms, max %.1f ms", x.p.Name, x.p.P50, x.p.P99, x.p.Max))
	}
	return
}
