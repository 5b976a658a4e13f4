package api

import (
	"net/http"
	"strconv"
	"sync"

	"github.com/labstack/echo/v4"

	"github.com/misybot/tenancy/internal/tenant"
)

// ProblemBusy is the type of a tenant request refused because the tenant already has its
// share of this process's concurrency.
const ProblemBusy = problemBase + "tenant-busy"

// DefaultTenantConcurrency is how many requests of one tenant an API process serves at once.
// Each answer is at most a page (internal/limits), so a tenant's share of memory is bounded
// too; other tenants' requests never wait behind it.
const DefaultTenantConcurrency = 8

// tenantSlots counts each tenant's requests in flight in this process.
type tenantSlots struct {
	mu   sync.Mutex
	busy map[string]int
	max  int
}

func newTenantSlots(max int) *tenantSlots { return &tenantSlots{busy: map[string]int{}, max: max} }

func (t *tenantSlots) acquire(id string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.busy[id] >= t.max {
		return false
	}
	t.busy[id]++
	return true
}

func (t *tenantSlots) release(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.busy[id]--; t.busy[id] <= 0 {
		delete(t.busy, id) // the map holds only tenants with requests in flight
	}
}

// limitTenant runs after the signature check, which names the tenant: a tenant past its
// concurrent requests gets 429 with Retry-After, and nothing runs (the requests counter's
// status 429 on the route counts them).
func (s *Server) limitTenant(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		id, err := tenant.IDFrom(c.Request().Context())
		if err != nil {
			return err
		}
		if !s.tenantSlots.acquire(id) {
			c.Response().Header().Set("Retry-After", "1")
			return newProblem(http.StatusTooManyRequests, ProblemBusy, "Too many concurrent requests",
				"this tenant already has "+strconv.Itoa(s.tenantSlots.max)+" requests in progress on this server; retry when one has answered")
		}
		defer s.tenantSlots.release(id)
		return next(c)
	}
}
