// Package wiring wires the application from its parts, once for every process that needs
// it: the API server (starter serve), the worker, and the end-to-end benchmark, which runs both
// in one process. Connections come from internal/platform/clients; this package only decides which
// store gets which connection.
package wiring

import (
	"log/slog"
	"time"

	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/worker"

	"github.com/misybot/tenancy/activities"
	"github.com/misybot/tenancy/api"
	"github.com/misybot/tenancy/internal/control/lifecycle"
	"github.com/misybot/tenancy/internal/domain/audit"
	"github.com/misybot/tenancy/internal/domain/conversations"
	"github.com/misybot/tenancy/internal/domain/decision"
	"github.com/misybot/tenancy/internal/domain/reconcile"
	"github.com/misybot/tenancy/internal/domain/registry"
	"github.com/misybot/tenancy/internal/keys/keyring"
	"github.com/misybot/tenancy/internal/keys/seal"
	"github.com/misybot/tenancy/internal/model/limits"
	"github.com/misybot/tenancy/internal/platform/clients"
	"github.com/misybot/tenancy/internal/platform/config"
	"github.com/misybot/tenancy/internal/platform/operators"
	"github.com/misybot/tenancy/internal/platform/throttle"
	"github.com/misybot/tenancy/workflows"
)

// auditShippingLag is how long audit events may wait in the outbox before /readyz says
// degraded.
const auditShippingLag = 30 * time.Second

// API builds the HTTP API over the process's clients: the public surface and the operators'.
func API(cfg config.Config, c *clients.Clients, sealer *seal.Sealer, logger *slog.Logger) api.App {
	auditWriter := c.AuditWriter(sealer)
	cells := c.Cells(sealer, logger)
	return api.NewApp(api.Config{
		Registry: registry.New(c.Postgres),
		Settings: cells.TenantDB(),
		Lifecycle: lifecycle.New(c.Temporal, lifecycle.Options{
			TaskQueue: cfg.TaskQueue, OffboardGrace: cfg.OffboardGrace, Logger: logger,
			Decisions: decision.New(c.Postgres),
			Cells:     cells.Registry(), Healthy: cells.Healthy,
		}),
		Sealer:        sealer,
		Operators:     operators.New(c.Postgres, cfg.OperatorToken),
		Redis:         cells.TenantRedis(),
		Conversations: conversations.New(cells.TenantMongo(), keyring.New(c.Postgres, sealer), cells.TenantRedis(), cells.TenantDB(), limits.Default()),
		SecretOverlap: cfg.SecretOverlap,
		Audit:         auditWriter,
		Checks: []api.Check{
			{Name: "postgres", Probe: c.PingPostgres},
			{Name: "mongodb", Probe: c.PingMongo},
			{Name: "redis", Probe: c.PingRedis},
			{Name: "temporal", Probe: c.PingTemporal},
			api.AuditShippingCheck(auditWriter, auditShippingLag),
			api.AuditQuarantineCheck(auditWriter),
			api.CellsCheck(cells),
		},
		Throttle:       throttle.New(c.Redis),
		ExportDir:      cfg.ExportDir,
		TrustedProxies: cfg.TrustedProxies,
		Cells:          cells,
		Reconciliation: &api.Reconciliation{Reports: reconcile.NewReports(c.Postgres), Reconciler: lifecycle.NewReconciler(c.Temporal, cfg.TaskQueue, decision.New(c.Postgres))},
		TemporalUI:     api.TemporalUI{URL: cfg.TemporalUIURL, Namespace: cfg.TemporalNamespace},
		Logger:         logger,
	})
}

// Worker builds the Temporal worker of taskQueue with every lifecycle workflow and activity
// registered, the step audit interceptor (one audit event per workflow step) and the
// operation counters (workflows.NewMetricsInterceptor; exported when the client was opened
// with clients.WithTemporalMetrics).
func Worker(c *clients.Clients, acts *activities.Activities, taskQueue string, opts ...WorkerOption) worker.Worker {
	o := worker.Options{Interceptors: []interceptor.WorkerInterceptor{
		activities.NewAuditInterceptor(acts), workflows.NewMetricsInterceptor(),
	}}
	for _, opt := range opts {
		opt(&o)
	}
	w := worker.New(c.Temporal, taskQueue, o)
	workflows.Register(w)
	w.RegisterActivity(acts)
	return w
}

// WorkerOption adjusts the worker's options.
type WorkerOption func(*worker.Options)

// StopTimeout is how long a stopping worker (SIGTERM) lets the tasks it holds finish: it stops
// polling at once, hands its sticky workflow cache back to the server (so workflow tasks go to
// other workers without waiting for a timeout), and waits up to d for activities in flight to
// complete and report. Past d their contexts are cancelled; an activity cut off this way is
// retried by Temporal on another worker when its attempt times out (every activity is
// idempotent, and the long ones resume from their last heartbeat). Zero, the SDK's default,
// cancels them at once.
func StopTimeout(d time.Duration) WorkerOption {
	return func(o *worker.Options) { o.WorkerStopTimeout = d }
}

// Shipper is the audit outbox shipper of a worker process.
func Shipper(acts *activities.Activities, logger *slog.Logger) *audit.Shipper {
	return acts.Audit.NewShipper(logger)
}

// Relay is the audit relay of a worker process: it hands the audit events that cells'
// PostgreSQL keep to the control plane's outbox (audit.Relay).
func Relay(acts *activities.Activities, logger *slog.Logger) *audit.Relay {
	return acts.Audit.NewRelay(acts.Cells.RelaySources, logger)
}

// Pollers sets how many long polls the worker keeps open for workflow tasks, and as many for
// activity tasks (config.Config.WorkerPollers says why more than the SDK's 2); 0 keeps the SDK's
// default.
func Pollers(n int) WorkerOption {
	return func(o *worker.Options) {
		o.MaxConcurrentWorkflowTaskPollers = n
		o.MaxConcurrentActivityTaskPollers = n
	}
}
