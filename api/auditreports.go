package api

import (
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/misybot/tenancy/internal/domain/audit"
	"github.com/misybot/tenancy/internal/model/tenant"
)

// PlatformAuditPath is where operators read the platform audit chain (registrations,
// offboardings, denied requests, steps of tenants without an open chain). It sits beside
// TenantsPath, not under it, so that it can never be mistaken for a tenant id.
const PlatformAuditPath = "/api/meta-agent/audit"

// Audit report bounds.
const (
	defaultAuditPage  = 100
	auditWriteTimeout = 5 * time.Second
)

// auditRoutes mounts the audit endpoints (NewApp installs the request trail and the tenant
// API's audit endpoint). Without an audit writer (tests of unrelated parts) nothing is mounted
// or recorded.
//
// Operator endpoints (op authenticates; readers may read, only admins change the policy):
//
//	GET  /api/meta-agent/tenants/{tenantId}/audit          list (filters, cursor; JSON or CSV)
//	GET  /api/meta-agent/tenants/{tenantId}/audit/summary  counts per day, action and outcome
//	GET  /api/meta-agent/tenants/{tenantId}/audit/verify   recompute the hash chain
//	GET  /api/meta-agent/tenants/{tenantId}/audit/policy   retention and legal hold
//	PUT  /api/meta-agent/tenants/{tenantId}/audit/policy   {"retentionDays":365,"legalHold":false}
//	GET  /api/meta-agent/audit[/summary|/verify]           the same for the platform chain
//	                                                       (list and summary take tenantId)
//
// Tenants read their own chain through the tenant API (GET /api/tenant/v1/audit, audit:read),
// served by tenantAuditList.
func (s *Server) auditRoutes(e *echo.Echo, op echo.MiddlewareFunc) {
	if s.audit == nil {
		s.logger.Warn("api: no audit writer configured; requests are not audited and audit endpoints are not mounted")
		return
	}
	read := []echo.MiddlewareFunc{op, allow(readers), s.auditScope}
	e.GET(TenantsPath+"/:tenantId/audit", s.listTenantAudit, read...)
	e.GET(TenantsPath+"/:tenantId/audit/summary", s.tenantAuditSummary, read...)
	e.GET(TenantsPath+"/:tenantId/audit/verify", s.verifyTenantAudit, read...)
	e.GET(TenantsPath+"/:tenantId/audit/policy", s.getAuditPolicy, read...)
	s.audited(e.PUT(TenantsPath+"/:tenantId/audit/policy", s.putAuditPolicy, op, allow(admins)), "tenant.audit.policy.put")
	e.GET(PlatformAuditPath, s.listPlatformAudit, op, allow(readers))
	e.GET(PlatformAuditPath+"/summary", s.platformAuditSummary, op, allow(readers))
	e.GET(PlatformAuditPath+"/verify", s.verifyPlatformAudit, op, allow(readers))
}

// auditScope puts the path's tenant into the request context after checking it is registered.
// Unlike tenantScope it admits every status: the audit of a tenant being onboarded or
// offboarded is still worth reading (an empty chain reads as empty), and nothing here writes.
func (s *Server) auditScope(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		id, err := pathTenantID(c)
		if err != nil {
			return err
		}
		if _, err := s.registry.Get(c.Request().Context(), id); err != nil {
			return registryError(err)
		}
		c.SetRequest(c.Request().WithContext(tenant.WithID(c.Request().Context(), id)))
		return next(c)
	}
}

type auditPage struct {
	Items      []audit.Event `json:"items"`
	NextCursor string        `json:"nextCursor,omitempty"`
}

type auditSummary struct {
	Items []audit.DayCount `json:"items"`
	Total int64            `json:"total"`
}

// Query parameters of the reports. Lists also take cursor, limit and order; the platform
// reports also take tenantId.
var (
	auditFilterParams = []string{"from", "to", "action", "actorType", "actorId", "outcome", "format"}
	auditPageParams   = []string{"cursor", "limit", "order"}
)

// auditQuery reads and validates the report parameters. Every mistake is a 400 naming the
// parameter, never a server error: values go to MongoDB only as exact-match strings.
func auditQuery(c echo.Context, page, platform bool) (audit.Query, bool, error) {
	allowed := slices.Clone(auditFilterParams)
	if page {
		allowed = append(allowed, auditPageParams...)
	}
	if platform {
		allowed = append(allowed, "tenantId")
	}
	q := audit.Query{Limit: defaultAuditPage}
	// URL.Query drops pairs it cannot decode; a report must not silently ignore a filter.
	if _, err := url.ParseQuery(c.Request().URL.RawQuery); err != nil {
		return q, false, malformed("the query string is not valid URL encoding")
	}
	params := c.QueryParams()
	var errs []FieldError
	bad := func(field, msg string) { errs = append(errs, FieldError{Field: field, Message: msg}) }
	for name, values := range params {
		if !slices.Contains(allowed, name) {
			bad(name, "is not a known query parameter ("+strings.Join(allowed, ", ")+")")
		} else if len(values) > 1 {
			bad(name, "must be given once")
		}
	}
	parseTime := func(name string) time.Time {
		v := params.Get(name)
		if v == "" {
			return time.Time{}
		}
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			bad(name, "must be an RFC 3339 time such as 2026-01-31T00:00:00Z")
		}
		return t
	}
	q.From, q.To = parseTime("from"), parseTime("to")
	if !q.From.IsZero() && !q.To.IsZero() && !q.From.Before(q.To) {
		bad("to", "must be after from")
	}
	text := func(name string, dst *string) {
		v := params.Get(name)
		if len(v) > 200 || !utf8.ValidString(v) || strings.ContainsRune(v, 0) {
			bad(name, "must be at most 200 characters of valid text")
			return
		}
		*dst = v
	}
	text("action", &q.Action)
	text("actorId", &q.ActorID)
	if v := params.Get("actorType"); v != "" {
		if !slices.Contains(audit.ActorTypes, v) {
			bad("actorType", "must be one of: "+strings.Join(audit.ActorTypes, ", "))
		}
		q.ActorType = v
	}
	if v := params.Get("outcome"); v != "" {
		if !slices.Contains(audit.Outcomes, v) {
			bad("outcome", "must be one of: "+strings.Join(audit.Outcomes, ", "))
		}
		q.Outcome = v
	}
	if v := params.Get("tenantId"); v != "" && platform {
		if tenant.ValidateID(v) != nil {
			bad("tenantId", "must be a tenant id")
		}
		q.TenantID = v
	}
	if v := params.Get("limit"); v != "" && page {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > audit.MaxPage {
			bad("limit", fmt.Sprintf("must be an integer from 1 to %d", audit.MaxPage))
		}
		q.Limit = n
	}
	if v := params.Get("order"); v != "" && page {
		if v != "asc" && v != "desc" {
			bad("order", "must be asc (oldest first, the default) or desc")
		}
		q.Desc = v == "desc"
	}
	if v := params.Get("cursor"); v != "" && page {
		seq, ok := decodeAuditCursor(v)
		if !ok {
			bad("cursor", "is not a cursor this API issued")
		}
		q.After = seq
	}
	csvOut := false
	switch v := params.Get("format"); v {
	case "csv":
		csvOut = true
	case "json":
	case "":
		csvOut = acceptsCSV(c.Request().Header.Get(echo.HeaderAccept))
	default:
		bad("format", "must be json or csv")
	}
	if len(errs) > 0 {
		slices.SortFunc(errs, func(a, b FieldError) int { return strings.Compare(a.Field, b.Field) })
		return q, false, validationProblem(errs...)
	}
	return q, csvOut, nil
}

// acceptsCSV reports whether an Accept header asks for CSV (text/csv listed, with a non-zero
// quality); without a format parameter, that selects CSV.
func acceptsCSV(accept string) bool {
	for part := range strings.SplitSeq(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err == nil && mt == "text/csv" && params["q"] != "0" {
			return true
		}
	}
	return false
}

// The cursor is the seq of the last event of the page, base64url-encoded: opaque to clients,
// stable (a seq never changes), and checked on the way back in.
func encodeAuditCursor(seq int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(seq, 10)))
}

func decodeAuditCursor(s string) (int64, bool) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return 0, false
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	return n, err == nil && n > 0 && strconv.FormatInt(n, 10) == string(b)
}

func (s *Server) listTenantAudit(c echo.Context) error {
	chain, err := s.audit.TenantChain(c.Request().Context())
	if err != nil {
		return err
	}
	return s.listAudit(c, chain, false, nil)
}

// tenantAuditList serves a tenant's own audit trail through the tenant API (GET
// /api/tenant/v1/audit, permission audit:read): the same filters, pagination and formats as
// the operator's list, over the chain of the tenant the request's signature authenticated
// (tenant.IDFrom). No parameter names a tenant, so no request can reach another's.
func (s *Server) tenantAuditList(c echo.Context) error {
	if s.audit == nil {
		return newProblem(http.StatusServiceUnavailable, ProblemUnavailable, "Service unavailable", "the audit trail is not available")
	}
	chain, err := s.audit.TenantChain(c.Request().Context())
	if err != nil {
		return err // no tenant in context: a wiring mistake, a server error
	}
	return s.listAudit(c, chain, false, redactForTenant)
}

// redactForTenant keeps internal error text out of what a tenant reads of its own trail: a
// failed workflow step's reason is the raw error of an activity (SQL states, host names, store
// internals), shown to operators as it is and to the tenant as "step failed" with the error's
// stable type. Only the answer changes: the stored event, and its hash, stay whole.
func redactForTenant(items []audit.Event) {
	for i, e := range items {
		if e.Actor.Type != audit.ActorSystem || e.Reason == "" {
			continue
		}
		reason := "step failed"
		if t := e.Details["errorType"]; t != "" {
			reason += " (" + t + ")"
		}
		items[i].Reason = reason
	}
}

func (s *Server) listPlatformAudit(c echo.Context) error {
	return s.listAudit(c, s.audit.PlatformChain(), true, nil)
}

// listAudit answers one page of chain; redact, when set, edits the page before it is sent.
func (s *Server) listAudit(c echo.Context, chain *audit.Chain, platform bool, redact func([]audit.Event)) error {
	q, csvOut, err := auditQuery(c, true, platform)
	if err != nil {
		return err
	}
	items, more, err := chain.List(c.Request().Context(), q)
	if err != nil {
		return err
	}
	if redact != nil {
		redact(items)
	}
	next := ""
	if more {
		next = encodeAuditCursor(items[len(items)-1].Seq)
	}
	if csvOut {
		if next != "" {
			c.Response().Header().Set("X-Next-Cursor", next)
		}
		rows := make([][]string, 0, len(items))
		for _, e := range items {
			details := ""
			if len(e.Details) > 0 {
				b, _ := json.Marshal(e.Details)
				details = string(b)
			}
			rows = append(rows, []string{
				strconv.FormatInt(e.Seq, 10), e.ID, e.At.UTC().Format(time.RFC3339Nano), e.TenantID, e.Actor.Type, e.Actor.ID,
				e.Action, e.Resource, e.Outcome, e.Reason, e.RequestID, e.WorkflowID, e.RunID, details, e.PrevHash, e.Hash,
			})
		}
		return writeCSV(c, "audit-"+chainFile(chain)+".csv", []string{
			"seq", "id", "at", "tenantId", "actorType", "actorId", "action", "resource", "outcome", "reason",
			"requestId", "workflowId", "runId", "details", "prevHash", "hash"}, rows)
	}
	return c.JSON(http.StatusOK, auditPage{Items: items, NextCursor: next})
}

func (s *Server) tenantAuditSummary(c echo.Context) error {
	chain, err := s.audit.TenantChain(c.Request().Context())
	if err != nil {
		return err
	}
	return s.summarizeAudit(c, chain, false)
}

func (s *Server) platformAuditSummary(c echo.Context) error {
	return s.summarizeAudit(c, s.audit.PlatformChain(), true)
}

func (s *Server) summarizeAudit(c echo.Context, chain *audit.Chain, platform bool) error {
	q, csvOut, err := auditQuery(c, false, platform)
	if err != nil {
		return err
	}
	rows, err := chain.Summary(c.Request().Context(), q)
	if err != nil {
		return err
	}
	out := auditSummary{Items: rows}
	for _, r := range rows {
		out.Total += r.Count
	}
	if csvOut {
		cells := make([][]string, 0, len(rows))
		for _, r := range rows {
			cells = append(cells, []string{r.Day, r.Action, r.Outcome, strconv.FormatInt(r.Count, 10)})
		}
		return writeCSV(c, "audit-summary-"+chainFile(chain)+".csv", []string{"day", "action", "outcome", "count"}, cells)
	}
	return c.JSON(http.StatusOK, out)
}

func chainFile(chain *audit.Chain) string { return strings.ReplaceAll(chain.Name(), "/", "-") }

// writeCSV answers with an RFC 4180 document (encoding/csv): a header row, then rows. Cells
// are neutralised against formula injection: one starting with =, +, -, @, tab or carriage
// return is prefixed with a single quote, so a spreadsheet shows it as text instead of
// evaluating it (event reasons, resources and ids can carry text a client chose).
func writeCSV(c echo.Context, filename string, header []string, rows [][]string) error {
	res := c.Response()
	res.Header().Set(echo.HeaderContentType, "text/csv; charset=utf-8")
	res.Header().Set(echo.HeaderContentDisposition, mime.FormatMediaType("attachment", map[string]string{"filename": filename}))
	res.WriteHeader(http.StatusOK)
	w := csv.NewWriter(res)
	if err := w.Write(header); err != nil {
		return err
	}
	for _, row := range rows {
		for i, cell := range row {
			row[i] = neutralizeCSV(cell)
		}
		if err := w.Write(row); err != nil {
			return err
		}
	}
	w.Flush()
	return w.Error()
}

func neutralizeCSV(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

func (s *Server) verifyTenantAudit(c echo.Context) error {
	if len(c.QueryParams()) > 0 {
		return validationProblem(FieldError{Field: "query", Message: "verify takes no parameters"})
	}
	chain, err := s.audit.TenantChain(c.Request().Context())
	if err != nil {
		return err
	}
	rep, err := chain.Verify(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, rep)
}

func (s *Server) verifyPlatformAudit(c echo.Context) error {
	if len(c.QueryParams()) > 0 {
		return validationProblem(FieldError{Field: "query", Message: "verify takes no parameters"})
	}
	rep, err := s.audit.PlatformChain().Verify(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, rep)
}
