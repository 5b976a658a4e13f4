package api

import (
	"context"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/misybot/tenancy/internal/model/tenant"
)

// ProblemBusy is the type of a tenant request refused because the tenant already has its
// share of this process's concurrency, and a queue of requests waiting for it.
const ProblemBusy = problemBase + "tenant-busy"

// DefaultTenantConcurrency is how many requests of one tenant an API process serves at once:
// half the CPUs the process may use, at least 2. Each answer is at most a page
// (internal/model/limits), so a tenant's share of memory is bounded too. More requests of the tenant
// wait for a slot (tenantQueue of them, for at most tenantWait) instead of being refused at once,
// so a client that sends many at a time is slowed, not failed, and spends no CPU while it waits.
func DefaultTenantConcurrency() int { return max(1, runtime.GOMAXPROCS(0)/2) }

const (
	tenantQueue = 64
	tenantWait  = 2 * time.Second
)

// tenantSlots holds each tenant's semaphore while the tenant has requests in flight or waiting.
type tenantSlots struct {
	mu      sync.Mutex
	tenants map[string]*slot
	max     int
}

type slot struct {
	sem   chan struct{}
	users int // in flight and waiting
}

func newTenantSlots(max int) *tenantSlots { return &tenantSlots{tenants: map[string]*slot{}, max: max} }

// acquire takes one of the tenant's slots, waiting up to tenantWait; false when the tenant's
// queue is full, the wait ran out or ctx ended. release gives the slot back.
func (t *tenantSlots) acquire(ctx context.Context, id string) (release func(), ok bool) {
	t.mu.Lock()
	s := t.tenants[id]
	if s == nil {
		s = &slot{sem: make(chan struct{}, t.max)}
		t.tenants[id] = s
	}
	if s.users >= t.max+tenantQueue {
		t.mu.Unlock()
		return nil, false
	}
	s.users++
	t.mu.Unlock()
	release = func() { <-s.sem; t.leave(id, s) }
	select {
	case s.sem <- struct{}{}:
		return release, true
	default:
	}
	timer := time.NewTimer(tenantWait)
	defer timer.Stop()
	select {
	case s.sem <- struct{}{}:
		return release, true
	case <-timer.C:
	case <-ctx.Done():
	}
	t.leave(id, s)
	return nil, false
}

func (t *tenantSlots) leave(id string, s *slot) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if s.users--; s.users == 0 {
		delete(t.tenants, id) // the map holds only tenants with requests in flight or waiting
	}
}

// limitTenant runs after the signature check, which names the tenant: past its share of
// concurrency a request waits for a slot; past the queue or the wait it gets 429 with
// Retry-After, and nothing runs (the requests counter's status 429 on the route counts them).
func (s *Server) limitTenant(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		id, err := tenant.IDFrom(c.Request().Context())
		if err != nil {
			return err
		}
		release, ok := s.tenantSlots.acquire(c.Request().Context(), id)
		if !ok {
			c.Response().Header().Set("Retry-After", "1")
			return newProblem(http.StatusTooManyRequests, ProblemBusy, "Too many concurrent requests",
				"this tenant already has "+strconv.Itoa(s.tenantSlots.max)+" requests in progress and more waiting on this server; retry when some have answered")
		}
		defer release()
		return next(c)
	}
}
