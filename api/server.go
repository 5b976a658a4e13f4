// Package api is the HTTP surface of the control plane: Echo routes, handlers and middleware.
// Handlers validate and translate; the work lives in the domain packages and workflows.
package api

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/go-playground/validator/v10"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/misybot/tenancy/internal/lifecycle"
	"github.com/misybot/tenancy/internal/registry"
	"github.com/misybot/tenancy/internal/seal"
	"github.com/misybot/tenancy/internal/tenantdb"
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
	// OperatorToken is the bearer token operators present on the management API.
	OperatorToken string
	// Checks are the dependencies /readyz probes, by name.
	Checks []Check
	Logger *slog.Logger
}

// Server holds the handlers' dependencies.
type Server struct {
	registry      *registry.Registry
	settings      *tenantdb.Store
	lifecycle     *lifecycle.Service
	sealer        *seal.Sealer
	operatorToken string
	checks        []Check
	validator     *validator.Validate
	logger        *slog.Logger
}

// New builds the Echo application with every route and middleware.
func New(cfg Config) *echo.Echo {
	s := &Server{
		registry:      cfg.Registry,
		settings:      cfg.Settings,
		lifecycle:     cfg.Lifecycle,
		sealer:        cfg.Sealer,
		operatorToken: cfg.OperatorToken,
		checks:        cfg.Checks,
		validator:     newValidator(),
		logger:        cfg.Logger,
	}

	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.HTTPErrorHandler = errorHandler(s.logger)
	e.Use(
		middleware.RequestID(),
		middleware.RecoverWithConfig(middleware.RecoverConfig{
			LogErrorFunc: func(c echo.Context, err error, stack []byte) error {
				s.logger.Error("panic in handler", "path", c.Path(), "err", err, "stack", string(stack))
				return err
			},
		}),
		s.requestLogger(),
		middleware.BodyLimit(maxBody),
	)

	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)

	// Middleware is attached per route, not to the group: a group with middleware answers 404
	// for every unmatched method under it, where the client deserves a 405.
	op := s.requireOperator
	e.POST(TenantsPath, s.registerTenant, op)
	e.POST(TenantsPath+"/onboard", s.onboardTenant, op)
	e.POST(TenantsPath+"/:tenantId/suspend", s.startOperation(lifecycle.Suspend), op)
	e.POST(TenantsPath+"/:tenantId/restore", s.startOperation(lifecycle.Restore), op)
	e.POST(TenantsPath+"/:tenantId/offboard", s.startOperation(lifecycle.Offboard), op)
	e.GET(TenantsPath+"/:tenantId/operations/current", s.currentOperation, op)
	e.GET(TenantsPath, s.listTenants, op)
	e.GET(TenantsPath+"/:tenantId", s.getTenant, op)
	e.PUT(TenantsPath+"/:tenantId", s.updateTenant, op)
	e.DELETE(TenantsPath+"/:tenantId", s.deleteTenant, op)

	scoped := []echo.MiddlewareFunc{op, s.tenantScope}
	e.GET(TenantsPath+"/:tenantId/settings", s.listSettings, scoped...)
	e.GET(TenantsPath+"/:tenantId/settings/:key", s.getSetting, scoped...)
	e.PUT(TenantsPath+"/:tenantId/settings/:key", s.putSetting, scoped...)
	e.DELETE(TenantsPath+"/:tenantId/settings/:key", s.deleteSetting, scoped...)
	return e
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
