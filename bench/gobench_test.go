package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestGoBenchRowsPairMetricsOfOneBenchmarkAndOfTwo(t *testing.T) {
	out := filepath.Join(t.TempDir(), "go-bench.txt")
	lines := "BenchmarkAppend/append-2         	    1500	   3425217 ns/op	      1000 p50-µs-events=1000	      1100 p50-µs-events=100000\n" +
		"BenchmarkPurge-2 	1	 9 ns/op	 1.8 purge-among-1M-s	 0.2 purge-alone-s\n" +
		"BenchmarkRLS/point/rls-tx-2 	 1545	 760 ns/op	 758 B/op\n" +
		"BenchmarkRLS/point/explicit-tx-2 	 2085	 380 ns/op	 805 B/op\n"
	if err := os.WriteFile(out, []byte(lines), 0o600); err != nil {
		t.Fatal(err)
	}
	got := map[string]row{}
	for _, r := range goBenchRows(readGoBench(out)) {
		got[r.Name] = r
	}
	appended := got["Audit append p50 (µs), chain of 100,000 vs 1,000 events (interleaved)"]
	if appended.Value != 1100 || appended.Baseline != 1000 || appended.Ratio != 1.1 {
		t.Errorf("audit append row = %+v, want 1100 against 1000, ratio 1.1", appended)
	}
	purge := got["Redis purge of 100k keys (s), among 1M other tenants' keys vs alone"]
	if purge.Value != 1.8 || purge.Baseline != 0.2 {
		t.Errorf("purge row = %+v, want 1.8 against 0.2", purge)
	}
	rls := got["RLS point read (ns/op), per-transaction tenant context vs the same transaction without RLS"]
	if rls.Value != 760 || rls.Baseline != 380 || rls.Ratio != 2 {
		t.Errorf("RLS row (two benchmarks by one unit) = %+v, want 760 against 380", rls)
	}
}
