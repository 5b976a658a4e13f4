package api

import (
	"cmp"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/misybot/tenancy/internal/control/lifecycle"
	"github.com/misybot/tenancy/internal/domain/audit"
	"github.com/misybot/tenancy/internal/model/tenant"
)

// OverviewPath is the dashboard's first page for operators: tenants by status, the last 24 h
// of lifecycle operations by outcome, and the runs waiting for an operator.
//
//	GET /api/meta-agent/overview           (readers)
//	GET /api/meta-agent/dashboard/config   (readers) where the dashboard links runs
const (
	OverviewPath        = "/api/meta-agent/overview"
	DashboardConfigPath = "/api/meta-agent/dashboard/config"
)

// Defaults of TemporalUI.
const (
	DefaultTemporalUIURL     = "http://127.0.0.1:8233"
	DefaultTemporalNamespace = "default"
)

// TemporalUI is where the dashboard links each run: the Temporal Web UI's base URL
// (TEMPORAL_UI_URL) and the namespace of the runs; a run is at
// <URL>/namespaces/<Namespace>/workflows/<workflowId>/<runId>.
type TemporalUI struct {
	URL       string `json:"url"`
	Namespace string `json:"namespace"`
}

func (t TemporalUI) withDefaults() TemporalUI {
	return TemporalUI{
		URL:       strings.TrimRight(cmp.Or(t.URL, DefaultTemporalUIURL), "/"),
		Namespace: cmp.Or(t.Namespace, DefaultTemporalNamespace),
	}
}

// dashboardConfig is what the dashboard needs to know about the deployment.
type dashboardConfig struct {
	TemporalUI TemporalUI `json:"temporalUi"`
}

// overview is the answer of OverviewPath. Operations is nil, and OperationsError says why,
// when the workflow service could not be read: the tenant counts still stand.
type overview struct {
	GeneratedAt time.Time `json:"generatedAt"`
	Tenants     struct {
		ByStatus map[tenant.Status]int64 `json:"byStatus"`
		Total    int64                   `json:"total"`
	} `json:"tenants"`
	Operations      *lifecycle.OperationsOverview `json:"operations"`
	OperationsError string                        `json:"operationsError,omitempty"`
	TemporalUI      TemporalUI                    `json:"temporalUi"`
	// AuditQuarantine: audit events the store refused for good (auditquarantine.go).
	AuditQuarantine *audit.QuarantineSummary `json:"auditQuarantine,omitempty"`
}

// overviewRoutes registers the overview and the dashboard's configuration: reads, for every
// role that reads tenants; nothing to declare for the audit.
func (s *Server) overviewRoutes(e *echo.Echo, read []echo.MiddlewareFunc) {
	e.GET(OverviewPath, s.getOverview, read...)
	e.GET(DashboardConfigPath, func(c echo.Context) error {
		return c.JSON(http.StatusOK, dashboardConfig{TemporalUI: s.temporalUI})
	}, read...)
}

// getOverview costs the same whatever the history: one GROUP BY on the registry, and a fixed
// number of calls to Temporal's visibility store (lifecycle.Service.Overview).
func (s *Server) getOverview(c echo.Context) error {
	ctx := c.Request().Context()
	var out overview
	out.GeneratedAt = time.Now().UTC()
	out.TemporalUI = s.temporalUI
	counts, err := s.registry.CountByStatus(ctx)
	if err != nil {
		return err
	}
	out.Tenants.ByStatus = counts
	for _, n := range counts {
		out.Tenants.Total += n
	}
	out.AuditQuarantine = s.overviewQuarantine(ctx)
	ops, err := s.lifecycle.Overview(ctx, out.GeneratedAt)
	if err != nil {
		s.logger.Warn("overview: operations unavailable", "err", err)
		out.OperationsError = "operations unavailable: the workflow service did not answer"
		if !unreachable(err) {
			out.OperationsError = "operations unavailable: the workflow service refused the query (see the API's log)"
		}
		return c.JSON(http.StatusOK, out)
	}
	out.Operations = &ops
	return c.JSON(http.StatusOK, out)
}
