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
	type side struct {
		p       phase
		op      func(context.Context) error
		cpu     map[string]float64 // CPU ms summed over the side's runs, by group
		elapsed time.Duration
	}
	sides := [2]*side{
		{p: phase{Name: aName, Concurrency: 1}, op: a, cpu: map[string]float64{}},
		{p: phase{Name: bName, Concurrency: 1}, op: bOp, cpu: map[string]float64{}},
	}
	run := func(s *side) error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		before := sampleCPU()
		t0 := time.Now()
		err := s.op(ctx)
		d := time.Since(t0)
		for k, v := range perRunMs(before, sampleCPU(), 1) {
			s.cpu[k] += v
		}
		s.elapsed += d
		s.p.Latencies = append(s.p.Latencies, float64(d.Microseconds())/1000)
		return err
	}
	for i := range n {
		for k := range sides {
			if err = run(sides[(k+i)%2]); err != nil { // odd rounds start with b
				return sides[0].p, sides[1].p, err
			}
		}
	}
	for _, s := range sides {
		s.p.summarize()
		s.p.Elapsed, s.p.Throughput, s.p.Tenants = s.elapsed, float64(n)/s.elapsed.Seconds(), b.tenants()
		s.p.CPUPerRunMs = map[string]float64{}
		for k, v := range s.cpu {
			s.p.CPUPerRunMs[k] = v / float64(n)
		}
		say(fmt.Sprintf("  %s: p50 %.1f ms, p99 %.1f ms, max %.1f ms", s.p.Name, s.p.P50, s.p.P99, s.p.Max))
	}
	return sides[0].p, sides[1].p, nil
}
