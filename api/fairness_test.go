package api

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/require"

	"github.com/misybot/tenancy/internal/tenant"
)

// A tenant with its slots taken is answered 429 at once; another tenant is served meanwhile,
// and a slot given back serves the first again.
func TestLimitTenantRefusesOnlyTheBusyTenant(t *testing.T) {
	s := &Server{tenantSlots: newTenantSlots(2)}
	release := make(chan struct{})
	var started sync.WaitGroup
	handler := s.limitTenant(func(c echo.Context) error {
		if id, _ := tenant.IDFrom(c.Request().Context()); id == "busy" {
			started.Done()
			<-release
		}
		return c.NoContent(http.StatusNoContent)
	})
	e := echo.New()
	call := func(id string) (int, error) {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req = req.WithContext(tenant.WithID(req.Context(), id))
		rec := httptest.NewRecorder()
		err := handler(e.NewContext(req, rec))
		return rec.Code, err
	}

	var done sync.WaitGroup
	started.Add(2)
	for range 2 {
		done.Go(func() {
			code, err := call("busy")
			require.NoError(t, err)
			require.Equal(t, http.StatusNoContent, code)
		})
	}
	started.Wait()
	_, err := call("busy")
	var p *Problem
	require.ErrorAs(t, err, &p)
	require.Equal(t, http.StatusTooManyRequests, p.Status)
	require.Equal(t, ProblemBusy, p.Type)
	code, err := call("other")
	require.NoError(t, err)
	require.Equal(t, http.StatusNoContent, code, "another tenant is not held back")

	close(release)
	done.Wait()
	require.Empty(t, s.tenantSlots.busy, "every slot given back")
	started.Add(1)
	go func() { _, _ = call("busy") }()
	started.Wait() // served again
}
