package api_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/misybot/tenancy/internal/model/limits"
)

// BenchmarkNoisyNeighbour is the review's attack on fairness, bounded now: tenant A fills
// itself to its bounds (settings up to the byte total, a conversation of full-size messages)
// and reads its largest pages 30 at once without pause, while tenant B reads GET /me one at a
// time. B's p99 under A's load is reported against B's p99 with A idle, measured in alternate
// windows of the same run, and the process's peak RSS during A's load. Before the bounds, one
// such answer was 59 MB and B's GET /me went from about 1 ms to 7.9 s.
func BenchmarkNoisyNeighbour(b *testing.B) {
	bb := setup(b)
	a := bb.provision(b, "noisy", allPerms, nil)
	quiet := bb.provision(b, "quiet", allPerms, nil)
	bounds := limits.Default()

	value := fmt.Sprintf(`{"value":"%s"}`, strings.Repeat("v", bounds.MaxSettingBytes-8))
	for i := 0; ; i++ {
		r := bb.send(b, a.req("PUT", fmt.Sprintf("/settings/big%03d", i), value))
		if r.Code == http.StatusForbidden {
			break // the tenant's byte total
		}
		if r.Code != http.StatusOK {
			b.Fatalf("fill settings: %d %s", r.Code, r.Raw)
		}
	}
	conv := bb.send(b, a.req("POST", "/conversations", `{"title":"big"}`))
	cid := conv.Body["id"].(string)
	text := fmt.Sprintf(`{"role":"user","text":"%s"}`, strings.Repeat("m", bounds.MaxMessageBytes))
	for range limits.MaxPage {
		if r := bb.send(b, a.req("POST", "/conversations/"+cid+"/messages", text)); r.Code != http.StatusCreated {
			b.Fatalf("fill messages: %d %s", r.Code, r.Raw)
		}
	}
	largest := "limit=" + strconv.Itoa(limits.MaxPage)
	heavy := []signedReq{signedQuery(a, "/settings", largest), signedQuery(a, "/conversations/"+cid, largest)}

	const rounds, samples, attackers = 5, 300, 30
	var idle, loaded []time.Duration
	var peakRSS int64
	var refused, served int
	for range rounds {
		idle = append(idle, bb.timeMe(b, quiet, samples)...)

		ctx, stop := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		var mu sync.Mutex
		for i := range attackers {
			wg.Go(func() {
				for n := 0; ctx.Err() == nil; n++ {
					// The body is dropped as it is written: a client in another process would
					// read it there, and its buffering is not the server's cost.
					rec := &discard{header: http.Header{}}
					bb.e.ServeHTTP(rec, heavy[(i+n)%len(heavy)].build())
					mu.Lock()
					if rec.code == http.StatusTooManyRequests {
						refused++
					} else {
						served++
					}
					mu.Unlock()
				}
			})
		}
		wg.Go(func() {
			for ctx.Err() == nil {
				peakRSS = max(peakRSS, rssBytes())
				time.Sleep(20 * time.Millisecond)
			}
		})
		time.Sleep(200 * time.Millisecond) // A's load under way
		loaded = append(loaded, bb.timeMe(b, quiet, samples)...)
		stop()
		wg.Wait()
	}
	b.ReportMetric(float64(p99(idle).Microseconds()), "p99-idle-µs")
	b.ReportMetric(float64(p99(loaded).Microseconds()), "p99-loaded-µs")
	b.ReportMetric(float64(peakRSS)/(1<<20), "rss-peak-MiB")
	b.ReportMetric(float64(served), "heavy-served")
	b.ReportMetric(float64(refused), "heavy-refused-429")
}

// discard is a ResponseWriter that keeps the status and drops the body.
type discard struct {
	header http.Header
	code   int
}

func (d *discard) Header() http.Header         { return d.header }
func (d *discard) Write(p []byte) (int, error) { return len(p), nil }
func (d *discard) WriteHeader(code int)        { d.code = code }

// timeMe times n sequential signed GET /me of st.
func (bb bundle) timeMe(b *testing.B, st signedTenant, n int) []time.Duration {
	out := make([]time.Duration, 0, n)
	for range n {
		start := time.Now()
		if r := bb.send(b, st.req("GET", "/me", "")); r.Code != http.StatusOK {
			b.Fatalf("GET /me: %d %s", r.Code, r.Raw)
		}
		out = append(out, time.Since(start))
	}
	return out
}

func p99(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)*99/100]
}

// rssBytes is this process's resident set size now (0 where /proc is absent).
func rssBytes() int64 {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}
