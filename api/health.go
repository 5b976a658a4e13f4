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
	// Soft checks report trouble the service works through (the audit outbox waiting on
	// MongoDB): their failure makes the answer "degraded", still 200, with the probe's message,
	// which must carry no connection details.
	Soft bool
}

const probeTimeout = 2 * time.Second

// healthz answers as long as the process serves HTTP: a liveness probe.
func (s *Server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

type readiness struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks,omitempty"`
}

// readyz probes every dependency concurrently, each with its own timeout, and names each one in
// the answer: 200 when all answer (status "degraded" when a soft check fails), 503 otherwise. Probe errors are logged in full but reported
// only as "unavailable", since they can carry connection details.
//
// The public listener answers the status only (detailed false): which dependency is down, and
// how far behind the audit is, is for operators (the ops listener).
func (s *Server) readyz(detailed bool) echo.HandlerFunc {
	return func(c echo.Context) error { return s.ready(c, detailed) }
}

func (s *Server) ready(c echo.Context, detailed bool) error {
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
			if err != nil && chk.Soft {
				s.logger.Warn("readiness: degraded", "check", chk.Name, "err", err)
				out.Checks[chk.Name] = "degraded: " + err.Error()
				if out.Status == "ok" {
					out.Status = "degraded"
				}
				return
			}
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
	if !detailed {
		out.Checks = nil
	}
	if out.Status == "unavailable" {
		return c.JSON(http.StatusServiceUnavailable, out)
	}
	return c.JSON(http.StatusOK, out)
}
