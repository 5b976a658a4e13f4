package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// CPU accounting per phase: the CPU time each server process used while a phase ran, read
// from /proc, so the report says where an onboarding's cost goes (this process: the API, the
// worker and the shipper; the Temporal dev server; FerretDB; PostgreSQL; Redis). Processes
// are told apart by their command name; every process of that name counts (all PostgreSQL
// backends), whoever else uses it at the time, so run the bench on a quiet machine.

// cpuGroups maps a report name to the command names of its processes.
var cpuGroups = []struct {
	name  string
	comms []string
}{
	{"temporal", []string{"temporal"}},
	{"ferretdb", []string{"ferretdb"}},
	{"postgres", []string{"postgres"}},
	{"redis", []string{"redis-server"}},
}

// cpuSample is the CPU seconds used so far, by group ("bench" is this process).
type cpuSample map[string]float64

// clockTicks is USER_HZ, 100 on Linux.
const clockTicks = 100

func sampleCPU() cpuSample {
	s := cpuSample{"bench": procCPU("self")}
	procs, _ := filepath.Glob("/proc/[0-9]*")
	self := strconv.Itoa(os.Getpid())
	for _, p := range procs {
		pid := filepath.Base(p)
		if pid == self {
			continue
		}
		comm, err := os.ReadFile(filepath.Join(p, "comm"))
		if err != nil {
			continue
		}
		c := strings.TrimSpace(string(comm))
		for _, g := range cpuGroups {
			for _, want := range g.comms {
				if c == want {
					s[g.name] += procCPU(pid)
				}
			}
		}
	}
	return s
}

// procCPU is a process's user plus system CPU seconds (0 if it is gone).
func procCPU(pid string) float64 {
	raw, err := os.ReadFile(filepath.Join("/proc", pid, "stat"))
	if err != nil {
		return 0
	}
	// The command name may hold spaces: fields start after its closing parenthesis.
	i := strings.LastIndexByte(string(raw), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(raw[i+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / clockTicks
}

// perRunMs turns two samples around a phase of n runs into CPU milliseconds per run, by group.
func perRunMs(before, after cpuSample, n int) map[string]float64 {
	out := map[string]float64{}
	if n == 0 {
		return out
	}
	for k, v := range after {
		out[k] = (v - before[k]) * 1000 / float64(n)
	}
	return out
}
