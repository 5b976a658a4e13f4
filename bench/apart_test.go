package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A probe process with a command name of its own (a copy of sleep), so that confining by name
// touches nothing else on the machine.
func startProbe(t *testing.T, name string) *exec.Cmd {
	t.Helper()
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep binary")
	}
	raw, err := os.ReadFile(sleep)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, raw, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(path, "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	// Wait until the kernel shows the new command name (after exec).
	for range 100 {
		if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", cmd.Process.Pid)); strings.TrimSpace(string(comm)) == name {
			return cmd
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("probe %s did not start", name)
	return nil
}

// allowedCPUs is a process's Cpus_allowed_list as the kernel reports it.
func allowedCPUs(t *testing.T, pid int) string {
	t.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "Cpus_allowed_list:"); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatal("no Cpus_allowed_list")
	return ""
}

func TestConfineAndRestoreCPUMasks(t *testing.T) {
	var all unix.CPUSet
	if err := unix.SchedGetaffinity(0, &all); err != nil {
		t.Fatal(err)
	}
	cpus := cpusOf(all)
	if len(cpus) < 2 {
		t.Skip("needs two CPUs")
	}
	name := "apartprobe" + strconv.Itoa(os.Getpid()%10000)
	probe := startProbe(t, name)
	before := allowedCPUs(t, probe.Process.Pid)

	var one unix.CPUSet
	one.Set(cpus[0])
	p := &pinned{saved: map[int]unix.CPUSet{}, fallback: all}
	if err := p.confine([]string{name}, false, one); err != nil {
		t.Fatal(err)
	}
	if got := allowedCPUs(t, probe.Process.Pid); got != strconv.Itoa(cpus[0]) {
		t.Fatalf("confined probe may use CPUs %s, want %d", got, cpus[0])
	}
	if got := allowedCPUs(t, os.Getpid()); got == strconv.Itoa(cpus[0]) {
		t.Fatal("confining the probe confined this process too")
	}

	// A process of the same name that began while the others were confined inherited the
	// confined mask (a PostgreSQL backend forked from a confined postmaster): restore frees it.
	late := startProbe(t, name)
	for _, tid := range threads(late.Process.Pid) {
		if err := unix.SchedSetaffinity(tid, &one); err != nil {
			t.Fatal(err)
		}
	}

	if err := p.restore(); err != nil {
		t.Fatal(err)
	}
	if got := allowedCPUs(t, probe.Process.Pid); got != before {
		t.Errorf("restored probe may use CPUs %s, want %s as before", got, before)
	}
	if got, want := allowedCPUs(t, late.Process.Pid), allowedCPUs(t, os.Getpid()); got != want {
		t.Errorf("probe started while confined may use CPUs %s after restore, want the fallback %s", got, want)
	}
}

func TestMedianRoundTakesTheMiddleRatios(t *testing.T) {
	round := func(floor, onb float64) pair {
		return pair{floor: phase{Throughput: floor, P50: 1000 / floor}, onb: phase{Throughput: onb, P50: 1000 / onb}}
	}
	// Ratios 0.9, 0.5, 0.8, 0.6: sorted 0.5, 0.6, 0.8, 0.9, so the median is (0.6+0.8)/2.
	pairs := []pair{round(20, 18), round(20, 10), round(10, 8), round(20, 12)}
	floor, onb, ratio := medianRound(pairs)
	if ratio < 0.699 || ratio > 0.701 {
		t.Errorf("median ratio %.3f, want 0.700", ratio)
	}
	if floor.Throughput != 15 || onb.Throughput != 10 {
		t.Errorf("median rounds' throughputs %.1f and %.1f, want the middle rounds' means 15 and 10", floor.Throughput, onb.Throughput)
	}
	if got := roundsRange(pairs); got != "rounds 0.50–0.90" {
		t.Errorf("range %q, want rounds 0.50–0.90", got)
	}
	// An odd count takes the middle round itself.
	if _, _, ratio := medianRound(pairs[:3]); ratio < 0.599 || ratio > 0.601 {
		t.Errorf("median of 0.5, 0.6, 0.8 is %.3f, want 0.6", ratio)
	}
}

func TestStoresApartRefusesOneCPU(t *testing.T) {
	// storesApart reads the calling thread's mask: confine this test's thread to one CPU.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var all unix.CPUSet
	if err := unix.SchedGetaffinity(0, &all); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = unix.SchedSetaffinity(0, &all) }()
	var one unix.CPUSet
	one.Set(cpusOf(all)[0])
	if err := unix.SchedSetaffinity(0, &one); err != nil {
		t.Fatal(err)
	}
	measured := false
	err := storesApart(func() error { measured = true; return nil })
	if !errors.Is(err, errApartUnavailable) {
		t.Errorf("on one CPU: %v, want errApartUnavailable", err)
	}
	if measured {
		t.Error("measured on one CPU")
	}
}
