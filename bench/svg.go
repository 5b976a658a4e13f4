package main

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
)

// writeHistogram draws the latency distributions of the given phases as one SVG image: a
// histogram per phase on a shared logarithmic time axis, so the floor and the onboarding at the
// same concurrency can be compared at a glance. No external resources.
func writeHistogram(path string, phases []phase) error {
	const (
		width, rowH, left, right, top = 900, 110, 260, 20, 30
		bins                          = 60
	)
	lo, hi := math.Inf(1), 0.0
	for _, p := range phases {
		for _, l := range p.Latencies {
			if l > 0 {
				lo, hi = math.Min(lo, l), math.Max(hi, l)
			}
		}
	}
	if hi == 0 {
		return nil
	}
	lo, hi = math.Log10(lo), math.Log10(hi*1.0001)
	plotW := float64(width - left - right)
	var svg strings.Builder
	height := top + rowH*len(phases) + 40
	fmt.Fprintf(&svg, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", width, height)
	fmt.Fprintf(&svg, `<rect width="100%%" height="100%%" fill="white"/><text x="10" y="18" font-size="14">Latency per run (ms, log scale)</text>`+"\n")
	colors := []string{"#888888", "#1f77b4", "#aaaaaa", "#ff7f0e", "#bbbbbb", "#2ca02c"}
	for i, p := range phases {
		counts := make([]int, bins)
		peak := 1
		for _, l := range p.Latencies {
			if l <= 0 {
				continue
			}
			b := int((math.Log10(l) - lo) / (hi - lo) * bins)
			b = min(max(b, 0), bins-1)
			counts[b]++
			peak = max(peak, counts[b])
		}
		y0 := top + rowH*i
		fmt.Fprintf(&svg, `<text x="10" y="%d">%s</text><text x="10" y="%d" fill="#555">p50 %.0f, p99 %.0f, n=%d</text>`+"\n",
			y0+rowH/2-6, escape(p.Name), y0+rowH/2+10, p.P50, p.P99, len(p.Latencies))
		barW := plotW / bins
		for b, c := range counts {
			if c == 0 {
				continue
			}
			h := float64(rowH-20) * float64(c) / float64(peak)
			fmt.Fprintf(&svg, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>`+"\n",
				float64(left)+float64(b)*barW, float64(y0+rowH-10)-h, barW-1, h, colors[i%len(colors)])
		}
		fmt.Fprintf(&svg, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#ccc"/>`+"\n", left, y0+rowH-10, width-right, y0+rowH-10)
	}
	axisY := top + rowH*len(phases) + 5
	for e := math.Floor(lo); e <= math.Ceil(hi); e++ {
		for _, m := range []float64{1, 2, 5} {
			v := math.Log10(m) + e
			if v < lo || v > hi {
				continue
			}
			x := float64(left) + (v-lo)/(hi-lo)*plotW
			fmt.Fprintf(&svg, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#999"/><text x="%.1f" y="%d" text-anchor="middle">%g</text>`+"\n",
				x, axisY, x, axisY+5, x, axisY+18, math.Pow(10, v))
		}
	}
	svg.WriteString("</svg>\n")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(svg.String()), 0o644)
}

func escape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
