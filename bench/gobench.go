package main

import (
	"bufio"
	"os"
	"strconv"
	"strings"
)

// The package benchmarks (`go test -bench`, run by `make bench` before this program) folded
// into the report: each pair below is a measurement and its baseline from the same run.

// goBench is one benchmark line: its name without the GOMAXPROCS suffix and its metrics by unit.
type goBench struct {
	Name    string             `json:"name"`
	Metrics map[string]float64 `json:"metrics"`
}

// readGoBench parses the output of go test -bench; a missing file gives nothing.
func readGoBench(path string) []goBench {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []goBench
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 4 || !strings.HasPrefix(fields[0], "Benchmark") {
			continue
		}
		name := fields[0]
		if i := strings.LastIndex(name, "-"); i > 0 {
			name = name[:i]
		}
		b := goBench{Name: name, Metrics: map[string]float64{}}
		for i := 2; i+1 < len(fields); i += 2 {
			if v, err := strconv.ParseFloat(fields[i], 64); err == nil {
				b.Metrics[fields[i+1]] = v
			}
		}
		out = append(out, b)
	}
	return out
}

// goBenchRows are the report's rows from the package benchmarks: a value, its baseline of the
// same run, their ratio.
func goBenchRows(benches []goBench) []row {
	get := func(name, unit string) (float64, bool) {
		for _, b := range benches {
			if b.Name == name {
				v, ok := b.Metrics[unit]
				return v, ok
			}
		}
		return 0, false
	}
	var rows []row
	// compare adds a row of one benchmark's metric against a baseline metric, when both ran.
	compare := func(label, name, unit, baseName, baseUnit, target string) {
		v, ok1 := get(name, unit)
		bv, ok2 := get(baseName, baseUnit)
		if ok1 && ok2 {
			rows = append(rows, row{label, v, bv, ratio(v, bv), target})
		}
	}
	// pair compares two benchmarks by one unit; metricPair two metrics of one benchmark.
	pair := func(label, name, base, unit, target string) { compare(label, name, unit, base, unit, target) }
	metricPair := func(label, name, unit, baseUnit, target string) { compare(label, name, unit, name, baseUnit, target) }
	pair("RLS point read (ns/op), per-transaction tenant context vs the same transaction without RLS", "BenchmarkRLS/point/rls-tx", "BenchmarkRLS/point/explicit-tx", "ns/op", "")
	pair("RLS page of 100 (ns/op), with RLS vs without", "BenchmarkRLS/page100/rls-tx", "BenchmarkRLS/page100/explicit-tx", "ns/op", "")
	pair("Encrypt 1 KiB (ns/op), tenant keyring vs raw AES-256-GCM", "BenchmarkEncryption/encrypt/tenant-cached", "BenchmarkEncryption/encrypt/raw-aes-gcm", "ns/op", "")
	pair("Decrypt 1 KiB (ns/op), tenant keyring vs raw AES-256-GCM", "BenchmarkEncryption/decrypt/tenant-cached", "BenchmarkEncryption/decrypt/raw-aes-gcm", "ns/op", "")
	// Both sizes of an audit append are measured in one benchmark, interleaved (see BenchmarkAppend).
	metricPair("Audit append p50 (µs), chain of 100,000 vs 1,000 events (interleaved)", "BenchmarkAppend/append", "p50-µs-events=100000", "p50-µs-events=1000", "≤ 1.1")
	metricPair("Audit append and ship p50 (µs), 100,000 vs 1,000 events (interleaved)", "BenchmarkAppend/append+ship", "p50-µs-events=100000", "p50-µs-events=1000", "")
	pair("Signed tenant request in process (ns/op) vs the same read by an operator", "BenchmarkSignatureVerification/signed-request", "BenchmarkSignatureVerification/operator-request-same-read", "ns/op", "")
	metricPair("Redis purge of 100k keys (s), among 1M other tenants' keys vs alone", "BenchmarkPurge", "purge-among-1M-s", "purge-alone-s", "")
	metricPair("Tenant B's GET /me p99 (µs) while tenant A reads its largest pages 30 at once, vs A idle", "BenchmarkNoisyNeighbour", "p99-loaded-µs", "p99-idle-µs", "≤ 2")
	metricPair("A page of 40 messages (µs), among 3,000 in other conversations vs alone", "BenchmarkPageAmongOtherConversations", "p50-among-3000-µs", "p50-alone-µs", "")
	return rows
}
