package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Stores apart: the concurrency-16 pairs again, with PostgreSQL, FerretDB and Redis confined to
// one core and Temporal with this process (API, worker, shipper) to the others. In production
// the stores run on machines of their own; on a two-core bench host they take CPU from
// Temporal, and the shared-cores ratio charges that to the onboarding. Both figures are in the
// report, from the same run, on the same dev server and worker.

// storeComms and temporalComms are the command names of the two sides' processes (as cpuGroups).
var (
	storeComms    = []string{"postgres", "ferretdb", "redis-server"}
	temporalComms = []string{"temporal"}
)

// errApartUnavailable: this machine cannot confine the stores (one CPU, the stores elsewhere,
// or no permission to change other processes' CPU masks); the bench goes on without the figure.
var errApartUnavailable = errors.New("stores apart unavailable")

// pinned records the CPU masks a confinement changed, so that restore puts every thread back.
type pinned struct {
	// saved is each changed thread's mask before, by thread id (unique across processes).
	saved map[int]unix.CPUSet
	// comms are the command names confined; threads of theirs started meanwhile (a PostgreSQL
	// backend forked from a confined postmaster) get fallback.
	comms    []string
	fallback unix.CPUSet
}

// confine sets the CPU mask of every thread of the processes named comms (and of this process
// when self) to set, remembering what each had. Processes that are gone meanwhile are skipped.
func (p *pinned) confine(comms []string, self bool, set unix.CPUSet) error {
	p.comms = append(p.comms, comms...)
	pids := processesNamed(comms)
	if self {
		pids = append(pids, os.Getpid())
	}
	for _, pid := range pids {
		for _, tid := range threads(pid) {
			var old unix.CPUSet
			if err := unix.SchedGetaffinity(tid, &old); err != nil {
				continue // the thread ended
			}
			if err := unix.SchedSetaffinity(tid, &set); err != nil {
				if errors.Is(err, unix.ESRCH) {
					continue
				}
				if errors.Is(err, unix.EPERM) {
					err = fmt.Errorf("%w: %w", errApartUnavailable, err)
				}
				return fmt.Errorf("confine %d/%d to CPUs %s: %w", pid, tid, cpuList(set), err)
			}
			p.saved[tid] = old
		}
	}
	return nil
}

// restore puts back every mask confine changed, and gives the fallback mask to threads of the
// confined processes that began after (they inherited the confined mask). It returns the
// errors joined, having tried every thread.
func (p *pinned) restore() error {
	var errs []error
	pids := append(processesNamed(p.comms), os.Getpid())
	for _, pid := range pids {
		for _, tid := range threads(pid) {
			set, ok := p.saved[tid]
			if !ok {
				set = p.fallback
			}
			if err := unix.SchedSetaffinity(tid, &set); err != nil && !errors.Is(err, unix.ESRCH) {
				errs = append(errs, fmt.Errorf("restore %d/%d: %w", pid, tid, err))
			}
		}
	}
	return errors.Join(errs...)
}

// storesApart confines the stores to the last CPU of this process's mask and Temporal and this
// process to the others, runs measure, and puts every mask back, also when interrupted. It
// refuses with fewer than two CPUs, or when no store process runs on this machine (the stores
// are elsewhere: the shared-cores figure is then already this one).
func storesApart(measure func() error) error {
	var all unix.CPUSet
	if err := unix.SchedGetaffinity(0, &all); err != nil {
		return err
	}
	cpus := cpusOf(all)
	if len(cpus) < 2 {
		return fmt.Errorf("%w: it needs two CPUs, this process may use %d", errApartUnavailable, len(cpus))
	}
	if len(processesNamed(storeComms)) == 0 {
		return fmt.Errorf("%w: no PostgreSQL, FerretDB or Redis process on this machine", errApartUnavailable)
	}
	var stores, rest unix.CPUSet
	stores.Set(cpus[len(cpus)-1])
	for _, c := range cpus[:len(cpus)-1] {
		rest.Set(c)
	}
	p := &pinned{saved: map[int]unix.CPUSet{}, fallback: all}
	// Ctrl-C or a kill during the rounds must not leave the machine's PostgreSQL on one core.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	defer func() {
		signal.Stop(sig)
		close(done)
	}()
	go func() {
		select {
		case s := <-sig:
			if err := p.restore(); err != nil {
				fmt.Fprintln(os.Stderr, "bench: CPU masks not all restored:", err)
			}
			fmt.Fprintln(os.Stderr, "bench: stopped by", s)
			os.Exit(1)
		case <-done:
		}
	}()
	err := p.confine(storeComms, false, stores)
	if err == nil {
		err = p.confine(temporalComms, true, rest)
	}
	if err == nil {
		say(fmt.Sprintf("stores on CPU %s, Temporal and this process on CPUs %s", cpuList(stores), cpuList(rest)))
		err = measure()
	}
	return errors.Join(err, p.restore())
}

// processesNamed lists the pids of the processes whose command name is one of comms, this
// process excepted.
func processesNamed(comms []string) []int {
	var pids []int
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil || pid == os.Getpid() {
			continue
		}
		comm, err := os.ReadFile(filepath.Join(d, "comm"))
		if err != nil {
			continue
		}
		for _, c := range comms {
			if strings.TrimSpace(string(comm)) == c {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// threads lists a process's thread ids (none when it is gone).
func threads(pid int) []int {
	entries, _ := os.ReadDir(filepath.Join("/proc", strconv.Itoa(pid), "task"))
	var tids []int
	for _, e := range entries {
		if tid, err := strconv.Atoi(e.Name()); err == nil {
			tids = append(tids, tid)
		}
	}
	return tids
}

// cpusOf lists the CPUs in set.
func cpusOf(set unix.CPUSet) []int {
	var cpus []int
	for c := range 1024 {
		if set.IsSet(c) {
			cpus = append(cpus, c)
		}
	}
	return cpus
}

// cpuList writes set as "0,1".
func cpuList(set unix.CPUSet) string {
	var parts []string
	for _, c := range cpusOf(set) {
		parts = append(parts, strconv.Itoa(c))
	}
	return strings.Join(parts, ",")
}
