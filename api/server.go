// Package api is the HTTP surface of the control plane: Echo routes, handlers and middleware.
// Handlers validate and translate; the work lives in the domain packages and workflows.
package api

import (
	"cmp"
	"crypto/rand"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/go-playground/validator/v10"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/misybot/tenancy/api/dashboard"
	"github.com/misybot/tenancy/internal/control/lifecycle"
	"github.com/misybot/tenancy/internal/domain/audit"
	"github.com/misybot/tenancy/internal/domain/conversations"
	"github.com/misybot/tenancy/internal/domain/registry"
	"github.com/misybot/tenancy/internal/domain/tenantservice"
	"github.com/misybot/tenancy/internal/keys/seal"
	"github.com/misybot/tenancy/internal/model/limits"
	"github.com/misybot/tenancy/internal/platform/clients"
	"github.com/misybot/tenancy/internal/platform/operators"
	"github.com/misybot/tenancy/internal/platform/opsmetrics"
	"github.com/misybot/tenancy/internal/platform/throttle"
	"github.com/misybot/tenancy/internal/stores/tenantdb"
	"github.com/misybot/tenancy/internal/stores/tenantredis"
	"github.com/misybot/tenancy/workflows"
)

// TenantsPath is the prefix of the management API.
const TenantsPath = "/api/meta-agent/tenants"

// maxBody bounds every request body; tenant records are small.
const maxBody = "1M"

// Config is what the API needs from the process.
type Config struct {
	Registry *registry.Registry
	// Lifecycle starts and inspects lifecycle workflows.
	Lifecycle *lifecycle.Service
	// Settings reaches tenant-scoped settings under row-level security.
	Settings *tenantdb.Store
	Sealer   *seal.Sealer
	// Operators authenticates operator bearer tokens and their roles.
	Operators *operators.Store
	// Tenant API dependencies: the tenant's Redis context record, conversations, nonces.
	Redis         *tenantredis.Store
	Conversations *conversations.Store
	// SecretOverlap is how long a rotated-out tenant secret keeps verifying.
	SecretOverlap time.Duration
	// Audit writes and reads the audit chains (api/audit.go); nil leaves requests unaudited.
	Audit *audit.Writer
	// Checks are the dependencies /readyz probes, by name.
	Checks []Check
	// ExportDir is where the worker writes offboarding archives, for their download (the same
	// folder or volume as the worker's EXPORT_DIR); empty: no downloads from this process.
	ExportDir string
	// Throttle budgets failed authentication attempts per (credential, client address) pair,
	// alerts on ceilings per address and tenant id, and budgets CORS preflights per address,
	// across every API process (Redis); nil: no budget.
	Throttle *throttle.Guard
	// TrustedProxies are the networks whose X-Forwarded-For the API believes (its load
	// balancers). Empty: the client address is the connection's peer, whatever headers say.
	TrustedProxies []*net.IPNet
	// Reconciliation serves the reconciliation reports and runs (api/reconciliation.go); nil:
	// no such endpoints.
	Reconciliation *Reconciliation
	// Cells is the process's cell router: the cell registry, and each cell's health
	// (api/cells.go); nil: no cell endpoints.
	Cells *clients.CellRouter
	// Limits bound every tenant's data and answers; zero: limits.Default().
	Limits limits.Tenant
	// TenantConcurrency is how many tenant API requests of one tenant this process serves at
	// once (more wait in a queue); zero: DefaultTenantConcurrency().
	TenantConcurrency int
	// TemporalUI is where the dashboard links runs (defaults: DefaultTemporalUIURL, "default").
	TemporalUI TemporalUI
	Logger     *slog.Logger
}

// Server holds the handlers' dependencies.
type Server struct {
	limits      limits.Tenant
	tenantSlots *tenantSlots
	registry    *registry.Registry
	settings    *tenantdb.Store
	lifecycle   *lifecycle.Service
	sealer      *seal.Sealer
	operators   *operators.Store
	redis       *tenantredis.Store
	// tenants applies the registration, secret and profile rules (shared with the CLI).
	tenants       *tenantservice.Service
	conversations *conversations.Store
	secretOverlap time.Duration
	secrets       *secretCache
	// decoySecret stands in for the secret of a tenant that does not exist, so that refusing
	// it costs the same HMAC as refusing a real tenant's wrong signature.
	decoySecret []byte
	// refusals bounds the audit writes anonymous callers can cause (see refusalLimiter).
	refusals *refusalLimiter
	metrics  *metrics
	// tenantAuditHandler, when set, serves GET /api/tenant/v1/audit (audit:read).
	tenantAuditHandler echo.HandlerFunc
	// onDenied, when set, records a denied tenant request in the audit trail.
	onDenied  func(c echo.Context, tenantID string, status int, reason string)
	audit     *audit.Writer
	throttle  *throttle.Guard
	exportDir string
	checks    []Check
	validator *validator.Validate
	// actions are the audit actions write routes declare (audited), by "METHOD route".
	actions    map[string]string
	temporalUI TemporalUI
	logger     *slog.Logger
}

// App is the API's two HTTP surfaces.
type App struct {
	// Public serves the management API, the tenant API, the dashboard, /healthz, and /readyz
	// with its status only.
	Public *echo.Echo
	// Ops serves /metrics and /readyz with each check's state: for the operators' network only
	// (METRICS_ADDR, loopback by default). Neither is needed by, nor shown to, API clients.
	Ops *echo.Echo
}

// New builds the public Echo application with every route and middleware (NewApp().Public).
func New(cfg Config) *echo.Echo { return NewApp(cfg).Public }

// NewApp builds both surfaces of the API over one set of dependencies.
func NewApp(cfg Config) App {
	_, app := newServer(cfg)
	return app
}

// newServer builds the server and its two surfaces.
func newServer(cfg Config) (*Server, App) {
	s := &Server{
		registry:      cfg.Registry,
		settings:      cfg.Settings,
		lifecycle:     cfg.Lifecycle,
		sealer:        cfg.Sealer,
		operators:     cfg.Operators,
		redis:         cfg.Redis,
		conversations: cfg.Conversations,
		secretOverlap: cfg.SecretOverlap,
		secrets:       newSecretCache(),
		decoySecret:   randomBytes(32),
		refusals:      newRefusalLimiter(20, 100),
		metrics:       newMetrics(),
		audit:         cfg.Audit,
		throttle:      cfg.Throttle,
		exportDir:     cfg.ExportDir,
		checks:        cfg.Checks,
		validator:     newValidator(),
		logger:        cfg.Logger,
		actions:       map[string]string{},
		temporalUI:    cfg.TemporalUI.withDefaults(),
		limits:        cmp.Or(cfg.Limits, limits.Default()),
		tenantSlots:   newTenantSlots(cmp.Or(cfg.TenantConcurrency, DefaultTenantConcurrency())),
	}
	if s.audit != nil {
		// Hooks of the tenant API into the audit: its audit endpoint, and its refusals.
		s.tenantAuditHandler = s.tenantAuditList
		s.onDenied = s.noteDenial
	}
	if cfg.Registry != nil && cfg.Sealer != nil {
		s.tenants = tenantservice.New(cfg.Registry, cfg.Sealer, cfg.Redis, cfg.Logger)
	}

	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.HTTPErrorHandler = errorHandler(s.logger)
	e.IPExtractor = ipExtractor(cfg.TrustedProxies)
	e.Use(
		sanitizeRequestID,
		middleware.RequestID(),
		middleware.RecoverWithConfig(middleware.RecoverConfig{
			LogErrorFunc: func(c echo.Context, err error, stack []byte) error {
				s.logger.Error("panic in handler", "path", c.Path(), "err", err, "stack", string(stack))
				return err
			},
		}),
		s.requestLogger(),
		s.metrics.middleware,
		middleware.BodyLimit(maxBody),
	)
	if s.audit != nil {
		// Inside the request id and the panic recovery, around every route: it sees every
		// matched route, with the status the client gets.
		e.Use(s.auditTrail)
	}

	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz(false))
	e.GET(OpenAPIPath, s.openAPI)
	if s.audit != nil {
		s.metrics.registry.MustRegister(opsmetrics.NewAuditBacklog(s.audit.Backlog))
	}
	ops := echo.New()
	ops.HideBanner, ops.HidePort = true, true
	ops.HTTPErrorHandler = errorHandler(s.logger)
	ops.GET("/metrics", s.metrics.handler())
	ops.GET("/readyz", s.readyz(true))
	ops.GET("/healthz", s.healthz)
	dashboard.Register(e) // operator dashboard: static files at /dashboard/, no auth; its API calls send the token

	// Middleware is attached per route, not to the group: a group with middleware answers 404
	// for every unmatched method under it, where the client deserves a 405. Every management
	// route authenticates the operator, then checks the role.
	op := s.requireOperator
	read := []echo.MiddlewareFunc{op, allow(readers)}
	write := []echo.MiddlewareFunc{op, allow(writers)}
	admin := []echo.MiddlewareFunc{op, allow(admins)}
	s.audited(e.POST(TenantsPath, s.registerTenant, write...), "tenant.register")
	s.audited(e.POST(TenantsPath+"/onboard", s.onboardTenant, write...), "tenant.onboard.request")
	s.audited(e.POST(TenantsPath+"/:tenantId/suspend", s.startOperation(lifecycle.Suspend), write...), "tenant.suspend.request")
	s.audited(e.POST(TenantsPath+"/:tenantId/restore", s.startOperation(lifecycle.Restore), write...), "tenant.restore.request")
	s.audited(e.POST(TenantsPath+"/:tenantId/offboard", s.startOperation(lifecycle.Offboard), admin...), "tenant.offboard.request")
	s.audited(e.POST(TenantsPath+"/:tenantId/secret/rotate", s.rotateSecret, admin...), "tenant.secret.rotate") // whoever rotates learns the secret
	s.audited(e.POST(TenantsPath+"/:tenantId/keys/rotate", s.startOperation(lifecycle.RotateKeys), admin...), "tenant.keys.rotate.request")
	e.GET(TenantsPath+"/:tenantId/operations/current", s.currentOperation, read...)
	e.GET(TenantsPath, s.listTenants, read...)
	e.GET(TenantsPath+"/:tenantId", s.getTenant, read...)
	s.audited(e.PUT(TenantsPath+"/:tenantId", s.updateTenant, write...), "tenant.update")
	s.audited(e.POST(TenantsPath+"/:tenantId/approve", s.decide(true), admin...), "tenant.approve")
	s.audited(e.POST(TenantsPath+"/:tenantId/reject", s.decide(false), admin...), "tenant.reject")
	s.audited(e.POST(TenantsPath+"/:tenantId/operations/current/retry", s.signalRun(workflows.RetrySignal), write...), "tenant.operation.retry")
	s.audited(e.POST(TenantsPath+"/:tenantId/operations/current/abort", s.signalRun(workflows.AbortSignal), admin...), "tenant.operation.abort")
	s.audited(e.POST(TenantsPath+"/:tenantId/offboard/cancel", s.signalRun(workflows.CancelOffboardSignal), admin...), "tenant.offboard.cancel")
	s.audited(e.DELETE(TenantsPath+"/:tenantId", s.deleteTenant, admin...), "tenant.delete")

	e.GET(ArchivesPath+"/:name", s.downloadArchive, admin...) // a whole tenant's data: admins, audited

	e.GET(TenantsPath+"/:tenantId/settings", s.listSettings, append(read, s.tenantScope)...)
	e.GET(TenantsPath+"/:tenantId/settings/:key", s.getSetting, append(read, s.tenantScope)...)
	s.audited(e.PUT(TenantsPath+"/:tenantId/settings/:key", s.putSetting, append(write, s.tenantScope)...), "tenant.setting.put")
	s.audited(e.DELETE(TenantsPath+"/:tenantId/settings/:key", s.deleteSetting, append(write, s.tenantScope)...), "tenant.setting.delete")

	s.overviewRoutes(e, read)
	s.reconciliationRoutes(e, cfg.Reconciliation)
	s.cellRoutes(e, cfg.Cells, read, admin)
	s.auditRoutes(e, op)
	s.tenantAPIRoutes(e)
	return s, App{Public: e, Ops: ops}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms (Go 1.24+)
	return b
}

// ipExtractor finds the client address (refusal budgets, audit, logs): the connection's peer,
// or, when the peer is one of the trusted proxies, the nearest untrusted address in
// X-Forwarded-For. Echo's default c.RealIP() believes any X-Forwarded-For, so a client could
// name itself anything and escape every per-address budget.
func ipExtractor(trusted []*net.IPNet) echo.IPExtractor {
	if len(trusted) == 0 {
		return echo.ExtractIPDirect()
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, n := range trusted {
		opts = append(opts, echo.TrustIPRange(n))
	}
	return echo.ExtractIPFromXFFHeader(opts...)
}

// sanitizeRequestID drops a client's X-Request-Id unless it is short and plain (letters,
// digits, '.', '_', '-'; at most 64): it is echoed in answers and written to logs and audit
// events, where a long or odd value could forge log lines or bloat records. The RequestID
// middleware then draws a fresh one.
func sanitizeRequestID(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Request().Header
		if id := h.Get(echo.HeaderXRequestID); id != "" && !plainRequestID(id) {
			h.Del(echo.HeaderXRequestID)
		}
		return next(c)
	}
}

func plainRequestID(id string) bool {
	if len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// requestLogger logs one structured line per request: never bodies, never headers (they may
// carry tokens or signatures).
func (s *Server) requestLogger() echo.MiddlewareFunc {
	return middleware.RequestLoggerWithConfig(middleware.RequestLoggerConfig{
		// HandleError runs the error handler first, so the logged status is the one sent.
		HandleError: true,
		LogMethod:   true, LogURIPath: true, LogStatus: true, LogLatency: true, LogRequestID: true,
		LogValuesFunc: func(c echo.Context, v middleware.RequestLoggerValues) error {
			level := slog.LevelInfo
			if v.Status >= http.StatusInternalServerError {
				level = slog.LevelError
			}
			s.logger.LogAttrs(c.Request().Context(), level, "http request",
				slog.String("method", v.Method), slog.String("path", v.URIPath),
				slog.Int("status", v.Status), slog.Duration("latency", v.Latency.Round(time.Microsecond)),
				slog.String("request_id", v.RequestID))
			return nil
		},
	})
}
