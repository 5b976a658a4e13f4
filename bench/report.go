package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// row is one figure of the report: a measurement, its baseline from the same run, their ratio
// and the target the issue set (empty: reported, no target).
type row struct {
	Name     string  `json:"name"`
	Value    float64 `json:"value"`
	Baseline float64 `json:"baseline"`
	Ratio    float64 `json:"ratio"`
	Target   string  `json:"target,omitempty"`
}

type report struct {
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	Machine  string    `json:"machine"`
	Tenants  int       `json:"tenants"`
	Rows     []row     `json:"rows"`
	Phases   []phase   `json:"phases"`
	// Loads are the tenant API load runs; Scale the memory and list/GET figures per size.
	Loads []loadResult `json:"loads,omitempty"`
	Scale []scalePoint `json:"scale,omitempty"`
}

func machine() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s, %d cores, %s %s/%s", host, runtime.NumCPU(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// write saves the report as onboarding.md and onboarding.json in dir, and prints the table.
func (r report) write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var md strings.Builder
	fmt.Fprintf(&md, "# Onboarding benchmark\n\n%s, %s to %s. Latencies in ms; throughput in runs/s.\n\n",
		r.Machine, r.Started.Format(time.RFC3339), r.Finished.Format(time.RFC3339))
	md.WriteString("| figure | value | baseline | ratio | target |\n|---|---:|---:|---:|---|\n")
	for _, x := range r.Rows {
		fmt.Fprintf(&md, "| %s | %.1f | %.1f | %.2f | %s |\n", x.Name, x.Value, x.Baseline, x.Ratio, x.Target)
	}
	md.WriteString("\n| phase | runs | concurrency | tenants after | p50 | p99 | runs/s |\n|---|---:|---:|---:|---:|---:|---:|\n")
	for _, p := range r.Phases {
		fmt.Fprintf(&md, "| %s | %d | %d | %d | %.1f | %.1f | %.2f |\n", p.Name, p.Runs, p.Concurrency, p.Tenants, p.P50, p.P99, p.Throughput)
	}
	md.WriteString("\nCPU per run (ms), by process, while each phase ran:\n\n| phase | bench (API, worker, shipper) | temporal | ferretdb | postgres | redis | total |\n|---|---:|---:|---:|---:|---:|---:|\n")
	for _, p := range r.Phases {
		c := p.CPUPerRunMs
		if len(c) == 0 {
			continue
		}
		total := c["bench"] + c["temporal"] + c["ferretdb"] + c["postgres"] + c["redis"]
		fmt.Fprintf(&md, "| %s | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f |\n", p.Name, c["bench"], c["temporal"], c["ferretdb"], c["postgres"], c["redis"], total)
	}
	if len(r.Scale) > 0 {
		md.WriteString("\n| tenants | RSS MiB | heap MiB | list p50 | list p99 | get p50 | get p99 |\n|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, p := range r.Scale {
			fmt.Fprintf(&md, "| %d | %.0f | %.0f | %.1f | %.1f | %.1f | %.1f |\n", p.Tenants, p.RSSMiB, p.HeapMiB, p.ListP50, p.ListP99, p.GetP50, p.GetP99)
		}
	}
	md.WriteString("\nLatency histograms: latency.svg.\n")
	if err := os.WriteFile(filepath.Join(dir, "onboarding.md"), []byte(md.String()), 0o644); err != nil {
		return err
	}
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "onboarding.json"), js, 0o644); err != nil {
		return err
	}
	fmt.Print(md.String())
	fmt.Fprintf(os.Stderr, "bench: report in %s\n", filepath.Join(dir, "onboarding.md"))
	return nil
}
