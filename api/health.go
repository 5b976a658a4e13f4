package api

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
)

// Check probes one dependency for /readyz.
type Check struct {
	Name  string
	Probe func(context.Context) error
}

const probeTimeout = 2 * time.Second

// healthz answers as long as the process serves HTTP: a liveness probe.
func (s *Server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

type readiness struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks"`
}

// readyz probes every dependency concurrently, each with its own timeout, and names each one in
// the answer: 200 when all answer, 503 otherwise. Probe errors are logged in full but reported
// only as "unavailable", since they can carry connection details.
func (s *Server) readyz(c echo.Context) error {
	out := readiness{Status: "ok", Checks: make(map[string]string, len(s.checks))}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, chk := range s.checks {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(c.Request().Context(), probeTimeout)
			defer cancel()
			err := chk.Probe(ctx)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				s.logger.Warn("readiness probe failed", "dependency", chk.Name, "err", err)
				out.Checks[chk.Name] = "unavailable"
				out.Status = "unavailable"
				return
			}
			out.Checks[chk.Name] = "ok"
		})
	}
	wg.Wait()
	if out.Status != "ok" {
		return c.JSON(http.StatusServiceUnavailable, out)
	}
	return c.JSON(http.StatusOK, out)
}
