package main

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/misybot/tenancy/internal/testkit/seed"
)

// scalePoint is what the platform costs at one size: this process's memory (the API, the
// worker and the audit shipper run in it), and the management API's list and GET latencies.
type scalePoint struct {
	Tenants   int64   `json:"tenants"`
	RSSMiB    float64 `json:"rssMiB"`
	HeapMiB   float64 `json:"heapInUseMiB"`
	ListP50   float64 `json:"listP50Ms"`
	ListP99   float64 `json:"listP99Ms"`
	GetP50    float64 `json:"getP50Ms"`
	GetP99    float64 `json:"getP99Ms"`
	ListPages int     `json:"listSamples"`
}

// measureScale reads the process's memory after a collection, then times n list requests (the
// first page of 50, and a page further on by cursor) and n GETs of random bench tenants, at
// concurrency 1.
func (b *bench) measureScale(ctx context.Context, n int) (scalePoint, error) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	p := scalePoint{Tenants: b.tenants(), RSSMiB: rssMiB(), HeapMiB: float64(ms.HeapInuse) / (1 << 20), ListPages: n}
	say(fmt.Sprintf("scale point at %d tenants: RSS %.0f MiB, heap in use %.0f MiB", p.Tenants, p.RSSMiB, p.HeapMiB))
	var cursor string
	list, err := b.phase(fmt.Sprintf("list tenants (50 a page), %d tenants", p.Tenants), n, 1, func(ctx context.Context) error {
		var page struct {
			NextCursor string `json:"nextCursor"`
		}
		path := "/api/meta-agent/tenants?limit=50"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		if err := b.operatorDo(ctx, http.MethodGet, path, "", http.StatusOK, &page); err != nil {
			return err
		}
		cursor = page.NextCursor // walk on; wraps to the first page at the end
		return nil
	})
	if err != nil {
		return p, err
	}
	get, err := b.phase(fmt.Sprintf("get one tenant, %d tenants", p.Tenants), n, 1, func(ctx context.Context) error {
		id := b.randomTenant()
		return b.operatorDo(ctx, http.MethodGet, "/api/meta-agent/tenants/"+id, "", http.StatusOK, nil)
	})
	if err != nil {
		return p, err
	}
	p.ListP50, p.ListP99, p.GetP50, p.GetP99 = list.P50, list.P99, get.P50, get.P99
	return p, nil
}

// rssMiB is this process's resident set size, from /proc/self/status (0 where there is none).
func rssMiB() float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 64)
			return kb / 1024
		}
	}
	return 0
}

// tenants is how many tenants the platform holds: onboarded by the measurements, and seeded.
func (b *bench) tenants() int64 { return b.seq.Load() + b.seeded.Load() }

// randomTenant is the id of one of the platform's tenants, measured or seeded, at random.
func (b *bench) randomTenant() string {
	i := rand.Int64N(max(b.tenants(), 1))
	if i < b.seq.Load() {
		return fmt.Sprintf("%st%05d", b.prefix, i+1)
	}
	return seed.ID(b.seedPrefix(), int(i-b.seq.Load())+1)
}

func (b *bench) seedPrefix() string { return b.prefix + "seed" }

// fillTo brings the platform to n tenants with the scale seed (internal/testkit/seed): onboarded
// through the API and the real workflows at concurrency 16, each then given settings,
// conversations with encrypted messages and Redis keys, so the figures at each size are of a
// platform holding data, not only registrations.
func (b *bench) fillTo(n int) error {
	want := n - int(b.tenants())
	if want <= 0 {
		return nil
	}
	total := int(b.seeded.Load()) + want
	say(fmt.Sprintf("seeding to %d tenants: %d more, each with 5 settings, 2 conversations of 2 messages, 5 Redis keys", n, want))
	st, err := seed.Run(context.Background(), b.seedDeps, seed.Options{Tenants: total, Concurrency: 16, Prefix: b.seedPrefix(),
		Settings: 5, Conversations: 2, Messages: 2, RedisKeys: 5})
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	b.seeded.Store(int64(total))
	say(fmt.Sprintf("  seeded %d in %s (%.1f tenants/s)", st.Onboarded, st.Elapsed.Round(time.Second), float64(st.Onboarded)/st.Elapsed.Seconds()))
	return nil
}

// sustainedPair measures the floor for half of d, onboarding for d, and the floor again for
// the other half: the dev server slows as its file grows, and a phase measured second would
// always pay for the first one's runs (two full runs read 0.68 and 0.57 against a floor measured
// first, where their alternating rounds read 0.78 and 0.80). Split around it, the floor's mean
// moment is the onboarding's.
func (b *bench) sustainedPair(conc int, d time.Duration) (floor, onb phase, err error) {
	first, err := b.sustained("floor, concurrency 16, sustained, first half", conc, d/2, b.floor)
	if err != nil {
		return floor, onb, err
	}
	if onb, err = b.sustained("onboarding, concurrency 16, sustained", conc, d, b.onboard); err != nil {
		return floor, onb, err
	}
	second, err := b.sustained("floor, concurrency 16, sustained, second half", conc, d-d/2, b.floor)
	return joinHalves("floor, concurrency 16, sustained", first, second), onb, err
}

// joinHalves makes one phase of two measured for equal windows: their runs and latencies, the
// mean of their throughputs, their CPU per run weighted by runs.
func joinHalves(name string, a, b phase) phase {
	p := phase{Name: name, Concurrency: a.Concurrency, Tenants: b.Tenants, Elapsed: a.Elapsed + b.Elapsed,
		Latencies: append(append([]float64(nil), a.Latencies...), b.Latencies...), Throughput: (a.Throughput + b.Throughput) / 2}
	p.summarize()
	if p.Runs > 0 {
		p.CPUPerRunMs = map[string]float64{}
		for _, h := range []phase{a, b} {
			for k, v := range h.CPUPerRunMs {
				p.CPUPerRunMs[k] += v * float64(h.Runs) / float64(p.Runs)
			}
		}
	}
	return p
}

// sustained runs op at concurrency conc for d and reports its throughput.
func (b *bench) sustained(name string, conc int, d time.Duration, op func(context.Context) error) (phase, error) {
	say(fmt.Sprintf("%s: concurrency %d for %s", name, conc, d))
	before := sampleCPU()
	p, err := b.measureFor(d, conc, op)
	p.CPUPerRunMs = perRunMs(before, sampleCPU(), p.Runs)
	p.Name, p.Tenants = name, b.tenants()
	if err == nil {
		say(fmt.Sprintf("  %d runs, %.2f runs/s ended within %s, p50 %.1f ms, p99 %.1f ms", p.Runs, p.Throughput, d, p.P50, p.P99))
	}
	return p, err
}
