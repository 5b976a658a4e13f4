package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Temporal's own work per run, from the bench's dev server's Prometheus counters: how many
// persistence requests (by operation) and task dispatches a phase cost per run, and how many
// tasks matched a waiting poller at once ("sync": no write to the task queue's backlog, no read
// back). The CPU figures say how much more an onboarding costs Temporal than its floor; these
// say which work that is.

// temporalCounters is a scrape of selected counters, keyed "metric{operation}".
type temporalCounters map[string]float64

// temporalCounted are the counters read; each is summed by its operation label.
var temporalCounted = []string{"persistence_requests", "poll_success", "poll_success_sync"}

// scrapeTemporal reads the counters from the dev server's metrics endpoint.
func scrapeTemporal(addr string) (temporalCounters, error) {
	hc := http.Client{Timeout: 5 * time.Second}
	resp, err := hc.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("temporal metrics: %s", resp.Status)
	}
	return parseTemporalCounters(resp.Body)
}

// parseTemporalCounters sums the selected counters of a Prometheus text exposition by their
// operation label.
func parseTemporalCounters(r io.Reader) (temporalCounters, error) {
	out := temporalCounters{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest, _ := strings.Cut(line, "{")
		labels, value, ok := strings.Cut(rest, "} ")
		if !ok {
			continue
		}
		for _, metric := range temporalCounted {
			if name != metric && name != metric+"_total" {
				continue
			}
			v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
			if err != nil {
				return nil, fmt.Errorf("temporal metrics: %q: %w", line, err)
			}
			out[metric+"{"+labelValue(labels, "operation")+"}"] += v
		}
	}
	return out, sc.Err()
}

// labelValue is the value of label in a Prometheus label list (a="x",b="y").
func labelValue(labels, label string) string {
	for part := range strings.SplitSeq(labels, ",") {
		k, v, ok := strings.Cut(part, "=")
		if ok && k == label {
			return strings.Trim(v, `"`)
		}
	}
	return ""
}

// summary says per run, between two scrapes: persistence requests (all, and the task queue
// backlog's writes), and how many tasks were handed to a waiting poll out of all polls that got
// one.
func (after temporalCounters) summary(before temporalCounters, runs int) string {
	per := func(k string) float64 { return (after[k] - before[k]) / float64(runs) }
	var persistence float64
	for k := range after {
		if strings.HasPrefix(k, "persistence_requests{") {
			persistence += per(k)
		}
	}
	const tq = "TaskQueueMgr"
	return fmt.Sprintf("%.0f persistence requests (%.1f task backlog writes), %.1f of %.1f tasks handed to a waiting poll",
		persistence, per("persistence_requests{CreateTasks}"), per("poll_success_sync{"+tq+"}"), per("poll_success{"+tq+"}"))
}

// temporalWork scrapes the bench's own dev server (nil without one, or when it does not answer).
func (b *bench) temporalWork() temporalCounters {
	if b.dev == nil {
		return nil
	}
	c, err := scrapeTemporal(b.dev.metricsAddr)
	if err != nil {
		say("  (Temporal's metrics: " + err.Error() + ")")
		return nil
	}
	return c
}
