package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/misybot/tenancy/internal/domain/audit"
)

// metrics are the API's Prometheus metrics, on a registry of their own (one per server, so
// tests can build several servers in one process).
type metrics struct {
	registry *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	// Failed authentications (see throttle.Guard), by API: "management" or "tenant".
	authFailures *prometheus.CounterVec
	// Budgets spent: a (claim, address) pair of an API, or an address's "preflight" budget.
	authLockouts *prometheus.CounterVec
	// Ceilings of failures reached, by scope ("address", "tenant"): alerts, nothing refused.
	authCeilings *prometheus.CounterVec
}

func newMetrics() *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tenancy_http_requests_total",
			Help: "HTTP requests by method, route template and status code.",
		}, []string{"method", "route", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tenancy_http_request_duration_seconds",
			Help:    "HTTP request latency by method and route template.",
			Buckets: prometheus.DefBuckets,
		}, []string{"method", "route"}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tenancy_auth_failures_total",
			Help: "Failed authentications by API (management, tenant).",
		}, []string{"api"}),
		authLockouts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tenancy_auth_lockouts_total",
			Help: "Budgets spent, refused with 429 until their window ends: a claim from one address, by API (management, tenant), or an address's preflights (preflight).",
		}, []string{"api"}),
		authCeilings: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tenancy_auth_failure_ceilings_total",
			Help: "Windows in which one address, or one tenant id, reached its ceiling of failed authentications (scope address, tenant); an alert, nothing is refused for it.",
		}, []string{"scope"}),
	}
	m.registry.MustRegister(m.requests, m.latency, m.authFailures, m.authLockouts, m.authCeilings,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// AuditShippingCheck is a soft readiness check: degraded while audit events have waited in the
// outbox longer than lag (the shipper cannot reach MongoDB, or no worker runs).
func AuditShippingCheck(w *audit.Writer, lag time.Duration) Check {
	return Check{Name: "audit-shipping", Soft: true, Probe: func(ctx context.Context) error {
		b, err := w.Backlog(ctx)
		if err != nil {
			return errors.New("outbox backlog unreadable")
		}
		if b.Oldest > lag {
			return fmt.Errorf("%d audit events waiting to ship, oldest %s", b.Events, b.Oldest.Round(time.Second))
		}
		return nil
	}}
}

// middleware records every request under its route template (never the raw path: tenant ids
// would make the label set unbounded).
func (m *metrics) middleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err) // the status is final only once the error handler has answered
		}
		route := c.Path()
		if route == "" {
			route = "unmatched"
		}
		method := methodLabel(c.Request().Method)
		m.requests.WithLabelValues(method, route, strconv.Itoa(c.Response().Status)).Inc()
		m.latency.WithLabelValues(method, route).Observe(time.Since(start).Seconds())
		return err // the error handler does not answer twice (the response is committed)
	}
}

// methodLabel is the method as a label value: the standard ones as they are, anything else
// "other", so made-up methods cannot add series without bound.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "other"
}

// handler serves /metrics in the Prometheus text format.
func (m *metrics) handler() echo.HandlerFunc {
	h := promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
	return func(c echo.Context) error {
		h.ServeHTTP(c.Response(), c.Request())
		return nil
	}
}
