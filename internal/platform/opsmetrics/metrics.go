// Package opsmetrics holds the Prometheus metrics that more than one process exports, and the
// worker's metrics endpoint: the Temporal SDK's own metrics (task latencies, activity
// failures, sticky cache, requests to the frontend), the lifecycle operation counters the
// workflows record through the SDK's metrics handler, and the audit shipper's progress and lag.
//
// The SDK reports through its OpenTelemetry handler (go.temporal.io/sdk/contrib/opentelemetry)
// into an OpenTelemetry meter whose reader is the Prometheus exporter
// (go.opentelemetry.io/otel/exporters/prometheus), registered on the same
// prometheus/client_golang registry as our own collectors: one /metrics page, one library for
// the exposition, as the API's.
package opsmetrics

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.temporal.io/sdk/client"
	temporalotel "go.temporal.io/sdk/contrib/opentelemetry"

	"github.com/misybot/tenancy/internal/domain/audit"
)

// LatencyBuckets are the histogram bounds, in seconds, of every SDK timer (schedule-to-start,
// execution and end-to-end latencies of tasks, request latencies). OpenTelemetry's default
// bounds (0 to 10,000) are meant for milliseconds; SDK timers are recorded in seconds.
var LatencyBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300}

// probeTimeout bounds the outbox read at each scrape.
const probeTimeout = 2 * time.Second

// Worker is a worker process's metrics: a registry, the Temporal SDK handler writing into it,
// and the audit shipper's counters.
type Worker struct {
	registry *prometheus.Registry
	provider *sdkmetric.MeterProvider
	handler  client.MetricsHandler

	shipped     prometheus.Counter
	shipErrors  prometheus.Counter
	lastShipped prometheus.Gauge
}

// NewWorker builds the worker's registry.
func NewWorker() (*Worker, error) {
	reg := prometheus.NewRegistry()
	exporter, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo(), otelprom.WithoutTargetInfo())
	if err != nil {
		return nil, fmt.Errorf("metrics: prometheus exporter: %w", err)
	}
	provider := sdkmetric.NewMeterProvider(
		sdkmetric.WithReader(exporter),
		sdkmetric.WithView(sdkmetric.NewView(
			sdkmetric.Instrument{Kind: sdkmetric.InstrumentKindHistogram},
			sdkmetric.Stream{Aggregation: sdkmetric.AggregationExplicitBucketHistogram{Boundaries: LatencyBuckets}},
		)),
	)
	w := &Worker{
		registry: reg,
		provider: provider,
		handler: temporalotel.NewMetricsHandler(temporalotel.MetricsHandlerOptions{
			Meter: provider.Meter("temporal-sdk-go"),
			// Counters as monotonic sums, so they are exported as Prometheus counters (_total).
			UseMonotonicCounters: true,
			// A broken instrument must not panic the worker (the default): lose the metric.
			OnError: func(error) {},
		}),
		shipped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tenancy_audit_shipped_events_total",
			Help: "Audit events this worker's shipper moved from the PostgreSQL outbox to MongoDB.",
		}),
		shipErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tenancy_audit_ship_errors_total",
			Help: "Shipping rounds of this worker's shipper that failed (MongoDB or PostgreSQL unreachable); events wait in the outbox meanwhile.",
		}),
		lastShipped: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tenancy_audit_ship_last_success_timestamp_seconds",
			Help: "Unix time of this worker's last shipping round that ended without error.",
		}),
	}
	reg.MustRegister(w.shipped, w.shipErrors, w.lastShipped,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return w, nil
}

// WatchAuditBacklog exports the audit outbox backlog, read by backlog at scrape time: the lag
// of the shipper this worker runs (NewAuditBacklog).
func (w *Worker) WatchAuditBacklog(backlog func(context.Context) (audit.Backlog, error)) {
	w.registry.MustRegister(NewAuditBacklog(backlog))
}

// WatchCells exports how many cells other than the default one the worker holds clients to
// (tenancy_cell_clients_open, as the API does): each costs it a PostgreSQL pool, a MongoDB and
// a Redis client.
func (w *Worker) WatchCells(open func() int) {
	w.registry.MustRegister(CellClientsOpen(open))
}

// CellClientsOpen is the gauge of the cells a process holds clients to.
func CellClientsOpen(open func() int) prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "tenancy_cell_clients_open",
		Help: "Cells other than the default this process holds clients to (each: a PostgreSQL pool of at most clients.MaxCellPostgresConns connections, a MongoDB pool of at most clients.MaxCellPool, a Redis client).",
	}, func() float64 { return float64(open()) })
}

// TemporalHandler is the handler to pass as client.Options.MetricsHandler: the SDK's metrics,
// and whatever workflows record with workflow.GetMetricsHandler, land in this registry.
func (w *Worker) TemporalHandler() client.MetricsHandler { return w.handler }

// Registry is where the worker's metrics are registered.
func (w *Worker) Registry() *prometheus.Registry { return w.registry }

// ObserveShip records one round of the audit shipper (audit.Shipper.OnRound).
func (w *Worker) ObserveShip(events int, err error) {
	w.shipped.Add(float64(events))
	if err != nil {
		w.shipErrors.Inc()
		return
	}
	w.lastShipped.SetToCurrentTime()
}

// Handler serves the worker's operators' listener: /metrics in the Prometheus text format and
// /healthz (the process runs; for container health checks).
func (w *Worker) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(w.registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(rw http.ResponseWriter, _ *http.Request) {
		rw.Header().Set("Content-Type", "application/json")
		_, _ = rw.Write([]byte(`{"status":"ok"}` + "\n"))
	})
	return mux
}

// Shutdown flushes and stops the meter provider.
func (w *Worker) Shutdown(ctx context.Context) error {
	if err := w.provider.Shutdown(ctx); err != nil && !errors.Is(err, sdkmetric.ErrReaderShutdown) {
		return err
	}
	return nil
}

// auditBacklog exports what waits in the audit outbox, read at scrape time (one aggregate
// over the backlog table, which holds only waiting events).
type auditBacklog struct {
	read   func(context.Context) (audit.Backlog, error)
	events *prometheus.Desc
	oldest *prometheus.Desc
	up     *prometheus.Desc
	// quarantined and quarantinedOldest: events the audit store refused for good, set aside
	// until an operator repairs them (audit/quarantine.go).
	quarantined       *prometheus.Desc
	quarantinedOldest *prometheus.Desc
}

// NewAuditBacklog is the collector of the audit outbox backlog: how many events wait to ship
// and how long the oldest has waited (the shipping lag). The API and the worker both export
// it; the readings are the same table's.
func NewAuditBacklog(read func(context.Context) (audit.Backlog, error)) prometheus.Collector {
	return &auditBacklog{
		read:   read,
		events: prometheus.NewDesc("tenancy_audit_outbox_waiting_events", "Audit events in the PostgreSQL outbox not yet shipped to MongoDB.", nil, nil),
		oldest: prometheus.NewDesc("tenancy_audit_outbox_oldest_age_seconds", "Age of the oldest audit event waiting to ship (0 when none waits).", nil, nil),
		up:     prometheus.NewDesc("tenancy_audit_outbox_read_ok", "1 when the outbox backlog could be read at this scrape.", nil, nil),
		quarantined: prometheus.NewDesc("tenancy_audit_quarantined_events",
			"Audit events the audit store refused for good, set aside (kept in the outbox) until an operator re-ships or redacts them (starter audit-quarantine).", nil, nil),
		quarantinedOldest: prometheus.NewDesc("tenancy_audit_quarantined_oldest_age_seconds",
			"How long the oldest quarantined audit event has been set aside (0 when none is).", nil, nil),
	}
}

func (a *auditBacklog) Describe(ch chan<- *prometheus.Desc) {
	ch <- a.events
	ch <- a.oldest
	ch <- a.up
	ch <- a.quarantined
	ch <- a.quarantinedOldest
}

func (a *auditBacklog) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	defer cancel()
	b, err := a.read(ctx)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(a.up, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(a.up, prometheus.GaugeValue, 1)
	ch <- prometheus.MustNewConstMetric(a.events, prometheus.GaugeValue, float64(b.Events))
	ch <- prometheus.MustNewConstMetric(a.oldest, prometheus.GaugeValue, b.Oldest.Seconds())
	ch <- prometheus.MustNewConstMetric(a.quarantined, prometheus.GaugeValue, float64(b.Quarantined))
	ch <- prometheus.MustNewConstMetric(a.quarantinedOldest, prometheus.GaugeValue, b.QuarantinedOldest.Seconds())
}
