// Command worker runs the Temporal worker: it polls TASK_QUEUE and executes the tenant
// lifecycle workflows and their activities until interrupted.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"go.temporal.io/sdk/worker"

	"github.com/misybot/tenancy/activities"
	"github.com/misybot/tenancy/api"
	"github.com/misybot/tenancy/internal/control/schedule"
	"github.com/misybot/tenancy/internal/domain/archives"
	"github.com/misybot/tenancy/internal/keys/keycheck"
	"github.com/misybot/tenancy/internal/keys/seal"
	"github.com/misybot/tenancy/internal/platform/clients"
	"github.com/misybot/tenancy/internal/platform/config"
	"github.com/misybot/tenancy/internal/platform/opsmetrics"
	"github.com/misybot/tenancy/internal/stores/rls"
	"github.com/misybot/tenancy/wiring"
)

func main() {
	cfg, err := config.FromEnv()
	if err != nil {
		for line := range strings.SplitSeq(err.Error(), "\n") {
			fmt.Fprintln(os.Stderr, "config: "+line)
		}
		os.Exit(2)
	}
	logger := cfg.NewLogger(os.Stderr)
	slog.SetDefault(logger) // packages that log without a logger of their own (audit chain repairs) log here
	if cfg.UsesDevMasterKey() {
		logger.Warn("using the public development master key: set TENANT_MASTER_KEY for anything but local development")
	}
	sealer, err := seal.NewKeyring(cfg.MasterKeys())
	if err != nil {
		logger.Error("worker: master key", "err", err)
		os.Exit(2)
	}

	// Metrics: the SDK's own and the lifecycle operation counters (through the Temporal
	// client's metrics handler), the audit shipper's progress and lag.
	m, err := opsmetrics.NewWorker()
	if err != nil {
		logger.Error("worker: metrics", "err", err)
		os.Exit(1)
	}
	// The operators' listener: /metrics and /healthz. An address already taken stops the
	// worker at once, as it stops the API: a worker nobody can watch is not run silently.
	opsListener, err := net.Listen("tcp", cfg.WorkerMetricsAddr)
	if err != nil {
		logger.Error("worker: refusing to start: WORKER_METRICS_ADDR", "err", err)
		os.Exit(1)
	}
	c, err := clients.Open(context.Background(), cfg, logger, clients.WithTemporalMetrics(m.TemporalHandler()))
	if err != nil {
		logger.Error("worker: open clients", "err", err)
		os.Exit(1)
	}
	defer func() { _ = c.Close(context.Background()) }()

	if err := rls.VerifyAtStart(context.Background(), c.Postgres, logger); err != nil {
		logger.Error("worker: refusing to start", "err", err)
		os.Exit(1)
	}
	if err := keycheck.VerifyAll(context.Background(), c.Postgres, sealer); err != nil {
		logger.Error("worker: refusing to start", "err", err)
		os.Exit(1)
	}

	acts := activities.New(activities.Deps{Clients: c, Sealer: sealer, ExportDir: cfg.ExportDir, Logger: logger})
	acts.ExportRecipients = cfg.ExportRecipients
	acts.ReconcileAutoRepair = cfg.ReconcileAutoRepair
	if len(acts.ExportRecipients) == 0 {
		if cfg.Env == config.EnvProduction {
			logger.Error("worker: refusing to start", "err", "EXPORT_RECIPIENT is not set: offboarding archives are written only encrypted to an operator's age key (starter export-keygen makes one)")
			os.Exit(2)
		}
		logger.Warn("EXPORT_RECIPIENT is not set: offboarding's export step will fail until it is")
	}
	if err := startAudit(acts, c, cfg.TaskQueue, logger); err != nil {
		logger.Error("worker: refusing to start", "err", err)
		os.Exit(1)
	}
	// The shipper moves audit events from the PostgreSQL outbox to MongoDB; while MongoDB is
	// down they wait there, and lifecycle changes go on.
	m.WatchAuditBacklog(acts.Audit.Backlog)
	m.WatchCells(acts.Cells.OpenCells)
	shipCtx, stopShipper := context.WithCancel(context.Background())
	shipped := make(chan struct{})
	shipper := wiring.Shipper(acts, logger)
	shipper.OnRound = m.ObserveShip
	go func() { defer close(shipped); shipper.Run(shipCtx) }()
	defer func() { stopShipper(); <-shipped }()
	// The relay brings the events of changes made in cells' PostgreSQL to that outbox.
	go wiring.Relay(acts, logger).Run(shipCtx)

	ops := api.NewHTTPServer(cfg.WorkerMetricsAddr, m.Handler(), api.DefaultTimeouts)
	opsErr := make(chan error, 1)
	go func() { opsErr <- ops.Serve(opsListener) }()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = ops.Shutdown(ctx)
		_ = m.Shutdown(ctx)
	}()
	go (&archives.Pruner{Dir: cfg.ExportDir, Keep: cfg.ExportRetention, Audit: acts.Audit}).Run(shipCtx, time.Hour, logger)

	// The interceptor writes one audit event per workflow step (activities.NewAuditInterceptor).
	w := wiring.Worker(c, acts, cfg.TaskQueue, wiring.StopTimeout(cfg.WorkerStopTimeout), wiring.Pollers(cfg.WorkerPollers))

	logger.Info("worker starting", "task_queue", cfg.TaskQueue, "temporal", cfg.TemporalAddress, "namespace", cfg.TemporalNamespace, "export_dir", cfg.ExportDir, "metrics_addr", opsListener.Addr().String(), "stop_timeout", cfg.WorkerStopTimeout, "pollers", cfg.WorkerPollers)
	if err := w.Run(stopOn(worker.InterruptCh(), opsErr, logger)); err != nil {
		logger.Error("worker stopped", "err", err)
		stopShipper()
		<-shipped
		os.Exit(1)
	}
	logger.Info("worker stopped")
}

// startAudit prepares what the audit trail needs before the worker takes tasks: the platform
// chain's indexes and the daily retention schedule of this task queue. Both are idempotent.
// MongoDB being down does not stop the worker (events wait in the outbox, and the shipper makes
// sure of the seq index before it writes); Temporal being down does.
func startAudit(acts *activities.Activities, c *clients.Clients, taskQueue string, logger *slog.Logger) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := acts.Audit.EnsurePlatformIndexes(ctx); err != nil {
		logger.Warn("platform audit indexes not checked; MongoDB may be down, audit events wait in the outbox", "err", err)
	}
	created, err := schedule.EnsureAuditRetention(ctx, c.Temporal, taskQueue)
	if err != nil {
		return err
	}
	logger.Info("audit retention schedule", "id", schedule.AuditRetentionID(taskQueue), "created", created)
	if created, err = schedule.EnsureReconciliation(ctx, c.Temporal, taskQueue); err != nil {
		return err
	}
	logger.Info("reconciliation schedule", "id", schedule.ReconciliationID(taskQueue), "created", created)
	return nil
}

// stopOn returns a channel that fires on an interrupt (SIGINT, SIGTERM) or when the
// operators' listener fails to serve (its address taken, say), which is logged.
func stopOn(interrupt <-chan any, opsErr <-chan error, logger *slog.Logger) <-chan any {
	stop := make(chan any, 1)
	go func() {
		select {
		case sig := <-interrupt:
			logger.Info("worker: stopping", "signal", sig)
		case err := <-opsErr:
			if errors.Is(err, http.ErrServerClosed) {
				return
			}
			logger.Error("worker: operators' listener stopped; stopping", "err", err)
		}
		stop <- struct{}{}
	}()
	return stop
}
