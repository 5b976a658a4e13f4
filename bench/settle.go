package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// settle waits, before a concurrency-1 pair or a scale measurement, for the aftermath of what
// ran before it to end: the audit shipper's backlog empty, and the machine quiet (below
// quietBusy of its CPU over a second) or maxSettle passed. Filling 2,000 tenants leaves autovacuum, checkpoints and the
// shipper busy for a while; a pair measured in that wake measured the wake (the floor alone ran
// 1.6 times slower than at the start), not what 2,000 tenants cost an onboarding.
func (b *bench) settle(ctx context.Context) {
	const (
		quietBusy = 0.25
		maxSettle = 2 * time.Minute
	)
	start := time.Now()
	backlog, busy := int64(-1), 1.0
	for time.Since(start) < maxSettle {
		if err := b.c.Postgres.QueryRow(ctx, `SELECT count(*) FROM audit_backlog`).Scan(&backlog); err != nil {
			say("settle: audit backlog: " + err.Error())
			return
		}
		busy = machineBusy(time.Second)
		if backlog == 0 && busy < quietBusy {
			break
		}
	}
	say(fmt.Sprintf("settled in %s: audit backlog %d, machine %.0f%% busy", time.Since(start).Round(time.Second), backlog, busy*100))
}

// machineBusy is the share of all cores' time spent busy over d, from /proc/stat (1 when it
// cannot be read, so settle waits its full time rather than measure on a busy machine).
func machineBusy(d time.Duration) float64 {
	busy0, total0, ok0 := cpuTimes()
	time.Sleep(d)
	busy1, total1, ok1 := cpuTimes()
	if !ok0 || !ok1 || total1 <= total0 {
		return 1
	}
	return float64(busy1-busy0) / float64(total1-total0)
}

// cpuTimes reads the machine's busy and total CPU ticks from /proc/stat (see cpuLine).
func cpuTimes() (busy, total uint64, ok bool) {
	raw, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, false
	}
	line, _, _ := strings.Cut(string(raw), "\n")
	return cpuLine(line)
}

// cpuLine parses the "cpu" line of /proc/stat: of user, nice, system, idle, iowait, irq,
// softirq and steal, all but idle and steal (the hypervisor's, not this machine's work) count
// as busy: iowait too, since a checkpoint writing out a bulk load slows every commit measured
// meanwhile. Guest time, after steal, is within user already.
func cpuLine(line string) (busy, total uint64, ok bool) {
	f := strings.Fields(line)
	if len(f) < 6 || f[0] != "cpu" {
		return 0, 0, false
	}
	for i, s := range f[1:min(len(f), 9)] {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, 0, false
		}
		total += v
		if i != 3 && i != 7 { // idle, steal
			busy += v
		}
	}
	return busy, total, true
}
