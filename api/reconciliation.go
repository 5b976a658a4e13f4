package api

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/misybot/tenancy/internal/control/lifecycle"
	"github.com/misybot/tenancy/internal/domain/reconcile"
	"github.com/misybot/tenancy/internal/platform/operators"
)

// ReconciliationPath is the prefix of the reconciliation endpoints:
//
//	POST /api/meta-agent/reconciliation                      start a run (platform-admin) → 202 {runId, …}
//	GET  /api/meta-agent/reconciliation                      the latest report (platform-admin, auditor)
//	GET  /api/meta-agent/reconciliation/{runId}              one run's report
//	POST /api/meta-agent/reconciliation/{runId}/repair       approve its safe repairs (platform-admin)
//	POST /api/meta-agent/reconciliation/{runId}/decisions    {"driftId"}: repair one drift that deletes or re-creates (platform-admin)
//	POST /api/meta-agent/reconciliation/{runId}/close        stop waiting for approval and decisions (platform-admin)
//
// Reports name tenants, orphans and what differs, platform-wide: readable by platform admins
// and auditors only, not by operators.
const ReconciliationPath = "/api/meta-agent/reconciliation"

// reportReaders may read reconciliation reports.
var reportReaders = []operators.Role{operators.RoleAdmin, operators.RoleAuditor}

// Reconciliation is what the reconciliation endpoints need; nil in Config leaves them out.
type Reconciliation struct {
	Reports    *reconcile.Reports
	Reconciler *lifecycle.Reconciler
}

// reconciliationRoutes registers the endpoints and the drift metric.
func (s *Server) reconciliationRoutes(e *echo.Echo, rc *Reconciliation) {
	if rc == nil || rc.Reports == nil {
		return
	}
	h := &reconciliationHandlers{Reconciliation: *rc}
	s.metrics.registry.MustRegister(newDriftMetric(rc.Reports))
	read := []echo.MiddlewareFunc{s.requireOperator, allow(reportReaders)}
	admin := []echo.MiddlewareFunc{s.requireOperator, allow(admins)}
	e.GET(ReconciliationPath, h.latest, read...)
	e.GET(ReconciliationPath+"/:runId", h.get, read...)
	if rc.Reconciler != nil {
		s.audited(e.POST(ReconciliationPath, h.start, admin...), "reconciliation.start")
		s.audited(e.POST(ReconciliationPath+"/:runId/repair", h.repair, admin...), "reconciliation.repair.approve")
		s.audited(e.POST(ReconciliationPath+"/:runId/decisions", h.decide, admin...), "reconciliation.decision")
		s.audited(e.POST(ReconciliationPath+"/:runId/close", h.close, admin...), "reconciliation.close")
	}
}

type reconciliationHandlers struct {
	Reconciliation
}

type startReconciliationRequest struct {
	// IDPrefix limits the run to tenants whose id starts with it.
	IDPrefix   string `json:"idPrefix"`
	AutoRepair bool   `json:"autoRepair"`
}

type reconciliationStarted struct {
	RunID         string `json:"runId"`
	WorkflowID    string `json:"workflowId"`
	TemporalRunID string `json:"temporalRunId"`
	// Report is where the run's report can be read (it fills in as the run checks).
	Report string `json:"report"`
}

// start starts an on-demand run and answers 202 with its id.
func (h *reconciliationHandlers) start(c echo.Context) error {
	var req startReconciliationRequest
	if c.Request().ContentLength != 0 {
		if err := decodeJSON(c, &req); err != nil {
			return err
		}
	}
	for _, r := range req.IDPrefix {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') || len(req.IDPrefix) > 40 {
			return validationProblem(FieldError{Field: "idPrefix", Message: "must be at most 40 of [a-z0-9-]"})
		}
	}
	run, err := h.Reconciler.Start(c.Request().Context(), lifecycle.ReconcileOptions{
		RequestedBy: operatorOf(c).Name, IDPrefix: req.IDPrefix, AutoRepair: req.AutoRepair,
	})
	if err != nil {
		return lifecycleError(err)
	}
	return c.JSON(http.StatusAccepted, reconciliationStarted{
		RunID: run.WorkflowID, WorkflowID: run.WorkflowID, TemporalRunID: run.RunID, Report: ReconciliationPath + "/" + run.WorkflowID,
	})
}

// reportResponse is a run's report: its header and summary, and a page of its drifts.
type reportResponse struct {
	reconcile.Run
	Drifts     []reconcile.Drift `json:"drifts"`
	NextCursor string            `json:"nextCursor,omitempty"`
}

func (h *reconciliationHandlers) latest(c echo.Context) error {
	run, err := h.Reports.Latest(c.Request().Context())
	if errors.Is(err, reconcile.ErrNoRun) {
		return notFound("no reconciliation has run yet: POST " + ReconciliationPath + " starts one")
	}
	if err != nil {
		return err
	}
	return h.report(c, run)
}

func (h *reconciliationHandlers) get(c echo.Context) error {
	run, err := h.Reports.Get(c.Request().Context(), c.Param("runId"))
	if errors.Is(err, reconcile.ErrNoRun) {
		return notFound("no reconciliation run " + strconv.Quote(c.Param("runId")))
	}
	if err != nil {
		return err
	}
	return h.report(c, run)
}

// report answers with the run and one page of its drifts (limit 1–1000, default 200; cursor
// from nextCursor).
func (h *reconciliationHandlers) report(c echo.Context, run reconcile.Run) error {
	q := c.QueryParams()
	for name := range q {
		if !slices.Contains([]string{"limit", "cursor"}, name) {
			return validationProblem(FieldError{Field: name, Message: "is not a known query parameter (limit, cursor)"})
		}
	}
	limit, after := 200, ""
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return validationProblem(FieldError{Field: "limit", Message: "must be an integer from 1 to 1000"})
		}
		limit = n
	}
	if v := q.Get("cursor"); v != "" {
		b, err := base64.RawURLEncoding.DecodeString(v)
		if err != nil {
			return validationProblem(FieldError{Field: "cursor", Message: "is not a cursor this API issued"})
		}
		after = string(b)
	}
	drifts, more, err := h.Reports.Drifts(c.Request().Context(), run.ID, after, limit)
	if err != nil {
		return err
	}
	out := reportResponse{Run: run, Drifts: drifts}
	if out.Drifts == nil {
		out.Drifts = []reconcile.Drift{}
	}
	if more {
		out.NextCursor = base64.RawURLEncoding.EncodeToString([]byte(drifts[len(drifts)-1].ID))
	}
	return c.JSON(http.StatusOK, out)
}

// signalAccepted is the 202 answer of repair, decisions and close: the run acts on it
// asynchronously; the report shows the outcome.
type signalAccepted struct {
	RunID   string `json:"runId"`
	Signal  string `json:"signal"`
	DriftID string `json:"driftId,omitempty"`
	Report  string `json:"report"`
}

// openRun returns the run if it still takes repairs and decisions: 404 for none, 409 closed.
func (h *reconciliationHandlers) openRun(c echo.Context) (reconcile.Run, error) {
	run, err := h.Reports.Get(c.Request().Context(), c.Param("runId"))
	if errors.Is(err, reconcile.ErrNoRun) {
		return run, notFound("no reconciliation run " + strconv.Quote(c.Param("runId")))
	}
	if err != nil {
		return run, err
	}
	if run.Status == reconcile.RunClosed {
		return run, conflict(lifecycle.ErrReconciliationClosed.Error())
	}
	return run, nil
}

func (h *reconciliationHandlers) signalError(err error) error {
	if errors.Is(err, lifecycle.ErrReconciliationClosed) {
		return conflict(err.Error())
	}
	return lifecycleError(err)
}

func (h *reconciliationHandlers) repair(c echo.Context) error {
	run, err := h.openRun(c)
	if err != nil {
		return err
	}
	if err := h.Reconciler.Approve(c.Request().Context(), run.ID, deciderOf(c)); err != nil {
		return h.signalError(err)
	}
	return c.JSON(http.StatusAccepted, signalAccepted{RunID: run.ID, Signal: "repair", Report: ReconciliationPath + "/" + run.ID})
}

type decisionRequest struct {
	DriftID string `json:"driftId" validate:"required,max=300"`
}

// decide sends a platform admin's decision naming one drift. The drift must exist in the run
// and be one a decision repairs (404, 409 otherwise); the run re-checks it before acting.
func (h *reconciliationHandlers) decide(c echo.Context) error {
	run, err := h.openRun(c)
	if err != nil {
		return err
	}
	var req decisionRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if req.DriftID == "" || len(req.DriftID) > 300 {
		return validationProblem(FieldError{Field: "driftId", Message: "is required (an id from the report's drifts)"})
	}
	d, err := h.Reports.Drift(c.Request().Context(), run.ID, req.DriftID)
	if errors.Is(err, reconcile.ErrNoDrift) {
		return notFound(fmt.Sprintf("run %s has no drift %q", run.ID, req.DriftID))
	}
	if err != nil {
		return err
	}
	if d.Repair != reconcile.RepairDecision {
		return conflict(fmt.Sprintf("drift %s is repaired %s, not by a decision", d.ID, d.Repair))
	}
	if d.State != reconcile.StateOpen && d.State != reconcile.StateFailed {
		return conflict(fmt.Sprintf("drift %s is %s already", d.ID, d.State))
	}
	if err := h.Reconciler.Decide(c.Request().Context(), run.ID, d.ID, deciderOf(c)); err != nil {
		return h.signalError(err)
	}
	return c.JSON(http.StatusAccepted, signalAccepted{RunID: run.ID, Signal: "decide", DriftID: d.ID, Report: ReconciliationPath + "/" + run.ID})
}

func (h *reconciliationHandlers) close(c echo.Context) error {
	run, err := h.openRun(c)
	if err != nil {
		return err
	}
	if err := h.Reconciler.Close(c.Request().Context(), run.ID, deciderOf(c)); err != nil {
		return h.signalError(err)
	}
	return c.JSON(http.StatusAccepted, signalAccepted{RunID: run.ID, Signal: "close", Report: ReconciliationPath + "/" + run.ID})
}

// driftMetric exports the latest reported run's drifts by kind, read at scrape time (one
// query on the runs' index and one aggregate over that run's drifts).
type driftMetric struct {
	reports *reconcile.Reports
	found   *prometheus.Desc
	open    *prometheus.Desc
	at      *prometheus.Desc
	up      *prometheus.Desc
}

func newDriftMetric(r *reconcile.Reports) *driftMetric {
	return &driftMetric{
		reports: r,
		found:   prometheus.NewDesc("tenancy_reconciliation_drifts", "Drifts found by the latest reported reconciliation run, by kind.", []string{"kind"}, nil),
		open:    prometheus.NewDesc("tenancy_reconciliation_open_drifts", "Drifts of the latest reported reconciliation run still open (not repaired), by kind.", []string{"kind"}, nil),
		at:      prometheus.NewDesc("tenancy_reconciliation_last_report_timestamp_seconds", "When the latest reconciliation run finished its checks (Unix time).", nil, nil),
		up:      prometheus.NewDesc("tenancy_reconciliation_read_ok", "1 when the latest reconciliation report could be read at this scrape.", nil, nil),
	}
}

func (m *driftMetric) Describe(ch chan<- *prometheus.Desc) {
	ch <- m.found
	ch <- m.open
	ch <- m.at
	ch <- m.up
}

func (m *driftMetric) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	defer cancel()
	run, err := m.reports.LatestReported(ctx)
	if errors.Is(err, reconcile.ErrNoRun) {
		ch <- prometheus.MustNewConstMetric(m.up, prometheus.GaugeValue, 1)
		return
	}
	if err != nil {
		ch <- prometheus.MustNewConstMetric(m.up, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(m.up, prometheus.GaugeValue, 1)
	for _, k := range reconcile.Kinds {
		ch <- prometheus.MustNewConstMetric(m.found, prometheus.GaugeValue, float64(run.Summary.ByKind[k]), string(k))
		ch <- prometheus.MustNewConstMetric(m.open, prometheus.GaugeValue, float64(run.Summary.Open[k]), string(k))
	}
	if run.ReportedAt != nil {
		ch <- prometheus.MustNewConstMetric(m.at, prometheus.GaugeValue, float64(run.ReportedAt.UnixNano())/float64(time.Second))
	}
}
