package api

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// refusalLimiter bounds how many unauthenticated refusals per client address are recorded one
// by one. Anyone can cause these, so an anonymous flood must not turn into a flood of audit
// writes: past the budget, refusals are counted, and the next one recorded carries the count
// of those it stands for ("suppressedBefore"), so nothing goes unaccounted.
type refusalLimiter struct {
	mu      sync.Mutex
	clients map[string]*refusalBudget
	every   rate.Limit
	burst   int
}

type refusalBudget struct {
	limiter    *rate.Limiter
	suppressed int
	seen       time.Time
}

// maxTrackedClients caps the map; past it, budgets idle for idleAfter are dropped.
const (
	maxTrackedClients = 10000
	idleAfter         = 10 * time.Minute
)

func newRefusalLimiter(perSecond float64, burst int) *refusalLimiter {
	return &refusalLimiter{clients: map[string]*refusalBudget{}, every: rate.Limit(perSecond), burst: burst}
}

// allow reports whether a refusal from client should be recorded now, and how many refusals
// from it were counted but not recorded since the last one that was.
func (l *refusalLimiter) allow(client string, now time.Time) (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.clients[client]
	if !ok {
		if len(l.clients) >= maxTrackedClients {
			for k, v := range l.clients {
				if now.Sub(v.seen) > idleAfter {
					delete(l.clients, k)
				}
			}
		}
		b = &refusalBudget{limiter: rate.NewLimiter(l.every, l.burst)}
		l.clients[client] = b
	}
	b.seen = now
	if !b.limiter.AllowN(now, 1) {
		b.suppressed++
		return false, 0
	}
	n := b.suppressed
	b.suppressed = 0
	return true, n
}
