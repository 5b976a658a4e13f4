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
	p := scalePoint{Tenants: b.seq.Load(), RSSMiB: rssMiB(), HeapMiB: float64(ms.HeapInuse) / (1 << 20), ListPages: n}
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
		id := fmt.Sprintf("%st%05d", b.prefix, 1+rand.Int64N(max(b.seq.Load(), 1)))
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

// fillTo onboards tenants at concurrency 16 until the platform holds n.
func (b *bench) fillTo(n int) error {
	fill := n - int(b.seq.Load())
	if fill <= 0 {
		return nil
	}
	_, err := b.phase(fmt.Sprintf("filling to %d tenants, concurrency 16", n), fill, 16, b.onboard)
	return err
}

// sustained runs op at concurrency conc for d and reports its throughput.
func (b *bench) sustained(name string, conc int, d time.Duration, op func(context.Context) error) (phase, error) {
	say(fmt.Sprintf("%s: concurrency %d for %s", name, conc, d))
	before := sampleCPU()
	p, err := b.measureFor(d, conc, op)
	p.CPUPerRunMs = perRunMs(before, sampleCPU(), p.Runs)
	p.Name, p.Tenants = name, b.seq.Load()
	if err == nil {
		say(fmt.Sprintf("  %d runs, %.2f runs/s, p50 %.1f ms, p99 %.1f ms", p.Runs, p.Throughput, p.P50, p.P99))
	}
	return p, err
}
