package api

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/labstack/echo/v4"

	"github.com/misybot/tenancy/internal/audit"
	"github.com/misybot/tenancy/internal/registry"
	"github.com/misybot/tenancy/internal/rls"
	"github.com/misybot/tenancy/internal/tenant"
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

// auditRoutes mounts the audit endpoints, installs the audit trail middleware and hooks the
// tenant API's audit endpoint and denial auditing. Called from New before the tenant API is
// mounted. Without an audit writer (tests of unrelated parts) nothing is mounted or recorded.
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
	// Outermost of the application's own middleware, inside the request id and the panic
	// recovery: it sees every matched route, with the status the client gets.
	e.Use(s.auditTrail)
	s.onDenied = s.noteDenial
	s.tenantAuditHandler = s.tenantAuditList

	read := []echo.MiddlewareFunc{op, allow(readers), s.auditScope}
	e.GET(TenantsPath+"/:tenantId/audit", s.listTenantAudit, read...)
	e.GET(TenantsPath+"/:tenantId/audit/summary", s.tenantAuditSummary, read...)
	e.GET(TenantsPath+"/:tenantId/audit/verify", s.verifyTenantAudit, read...)
	e.GET(TenantsPath+"/:tenantId/audit/policy", s.getAuditPolicy, read...)
	e.PUT(TenantsPath+"/:tenantId/audit/policy", s.putAuditPolicy, op, allow(admins))
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

// ---- Reports ----

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

// ---- Policy ----

type auditPolicyRequest struct {
	// Pointers, so that an absent field is "required", not zero: PUT replaces the policy.
	RetentionDays *int  `json:"retentionDays" validate:"required,min=1,max=36500"`
	LegalHold     *bool `json:"legalHold" validate:"required"`
}

func (s *Server) getAuditPolicy(c echo.Context) error {
	id, _ := tenant.IDFrom(c.Request().Context())
	p, err := s.registry.AuditPolicy(c.Request().Context(), id)
	if err != nil {
		return registryError(err)
	}
	return c.JSON(http.StatusOK, p)
}

// putAuditPolicy replaces a tenant's retention period and legal hold. Admins only: a shorter
// period deletes events at the next retention run. The change itself is audited (by the
// middleware, like every management write).
func (s *Server) putAuditPolicy(c echo.Context) error {
	id, err := pathTenantID(c)
	if err != nil {
		return err
	}
	var req auditPolicyRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if err := s.validate(&req); err != nil {
		return err
	}
	p, err := s.registry.SetAuditPolicy(c.Request().Context(), id, registry.AuditPolicy{RetentionDays: *req.RetentionDays, LegalHold: *req.LegalHold})
	if err != nil {
		return registryError(err)
	}
	s.logger.Info("audit policy changed", "tenant_id", id, "retention_days", p.RetentionDays, "legal_hold", p.LegalHold, "operator", operatorOf(c).Name)
	return c.JSON(http.StatusOK, p)
}

// ---- The audit trail of requests ----

const (
	auditTenantKey = "auditTenant"
	auditDenialKey = "auditDenial"
	// auditIDKey holds the request's event id, drawn when the request starts.
	auditIDKey = "auditID"
	// auditCommittedKey is set once the request's event committed with its change.
	auditCommittedKey = "auditCommitted"
)

// auditTenant names the tenant a management request is about when the path does not
// (registration, onboarding), for its audit event.
func auditTenant(c echo.Context, id string) { c.Set(auditTenantKey, id) }

type denial struct {
	tenantID string
	reason   string
}

// noteDenial is the tenant API's onDenied hook: it remembers why the request was refused, and
// the audit trail middleware writes the event once the answer is sent.
func (s *Server) noteDenial(c echo.Context, tenantID string, _ int, reason string) {
	c.Set(auditDenialKey, denial{tenantID: tenantID, reason: reason})
}

// managementActions names the action of each management write, by method and route; routes
// not listed get "api.<method> <route>", so a route added later is audited all the same.
var managementActions = map[string]string{
	"POST " + TenantsPath:                                   "tenant.register",
	"POST " + TenantsPath + "/onboard":                      "tenant.onboard.request",
	"POST " + TenantsPath + "/:tenantId/suspend":            "tenant.suspend.request",
	"POST " + TenantsPath + "/:tenantId/restore":            "tenant.restore.request",
	"POST " + TenantsPath + "/:tenantId/offboard":           "tenant.offboard.request",
	"POST " + TenantsPath + "/:tenantId/keys/rotate":        "tenant.keys.rotate.request",
	"POST " + TenantsPath + "/:tenantId/secret/rotate":      "tenant.secret.rotate",
	"PUT " + TenantsPath + "/:tenantId":                     "tenant.update",
	"POST " + TenantsPath + "/:tenantId/approve":            "tenant.approve",
	"POST " + TenantsPath + "/:tenantId/reject":             "tenant.reject",
	"DELETE " + TenantsPath + "/:tenantId":                  "tenant.delete",
	"PUT " + TenantsPath + "/:tenantId/settings/:key":       "tenant.setting.put",
	"DELETE " + TenantsPath + "/:tenantId/settings/:key":    "tenant.setting.delete",
	"PUT " + TenantsPath + "/:tenantId/audit/policy":        "tenant.audit.policy.put",
	"PUT " + TenantAPIPath + "/settings/:key":               "tenant-api.setting.put",
	"DELETE " + TenantAPIPath + "/settings/:key":            "tenant-api.setting.delete",
	"POST " + TenantAPIPath + "/conversations":              "tenant-api.conversation.create",
	"POST " + TenantAPIPath + "/conversations/:id/messages": "tenant-api.message.add",
}

// platformActions always go to the platform chain: they create or remove their tenant, whose
// own chain does not exist yet or is about to be exported and dropped. The offboarding request
// in particular: its workflow may mark the tenant offboarding and export its chain while the
// request's event is still being written, which would leave the event out of the archive.
var platformActions = map[string]bool{
	"tenant.register": true, "tenant.onboard.request": true, "tenant.offboard.request": true, "tenant.delete": true,
}

func actionOf(method, route string) string {
	if a, ok := managementActions[method+" "+route]; ok {
		return a
	}
	prefix := "api."
	if strings.HasPrefix(route, TenantAPIPath) {
		prefix = "tenant-api."
	}
	return prefix + strings.ToLower(method) + " " + route
}

func mutating(method string) bool {
	return method == http.MethodPost || method == http.MethodPut || method == http.MethodPatch || method == http.MethodDelete
}

// auditTrail writes one audit event per request that changes state or is refused: every
// management write (POST, PUT, PATCH, DELETE under /api/meta-agent/), every management request
// refused with 401 or 403, every tenant API write, and every tenant API request its
// authentication refused (bad signature, wrong origin, missing permission: through onDenied).
// Reads that succeed are not audited. Bodies are never read or stored: the event holds the
// method, route, path, status, the operator or tenant, and the refusal's reason.
//
// Where: an unauthenticated caller's event goes to the platform chain (it must not be able to
// write into a tenant's chain), and so do the requests that create or remove a tenant
// (platformActions); any other goes to its tenant's chain while that chain is open
// (audit.Writer.Record, which decides under a share lock on the tenant's row, so a write racing
// the start of an offboarding lands in the platform chain, never in a chain already exported).
//
// With the change: a request's success event commits in the transaction that writes its change
// (recordInTx, through rls.CommitHook), so a change is never without its record. The rest
// (refusals, failures, requests whose change is in MongoDB or Redis) is written when the
// request ends.
//
// Exactly once: the event id is "api/" + a random 128-bit id drawn once per request, so the
// writer's internal retries cannot double it, and the end-of-request write finds the event
// committed with the change. Not the X-Request-Id: clients may send that
// header, and a repeated value would make the writer take a second request's event for the
// first one's, letting a caller suppress the audit of its own refused requests. The request id
// is stored in the event (requestId) to match logs.
//
// The event is written after the answer is final (the error handler has run, so the status is
// the one the client gets), with a context that outlives a client that hung up. A write that
// fails is logged with the event's fields; the request's own outcome stands.
func (s *Server) auditTrail(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		c.Set(auditIDKey, newAuditID())
		if mutating(c.Request().Method) {
			// The request's event commits in the transaction that writes its change.
			req := c.Request()
			c.SetRequest(req.WithContext(rls.WithCommitHook(req.Context(), func(ctx context.Context, tx pgx.Tx) error {
				return s.recordInTx(ctx, c, tx)
			})))
		}
		defer func() {
			if r := recover(); r != nil {
				c.Response().Status = http.StatusInternalServerError
				s.recordRequest(c, errors.New("panic"))
				panic(r) // the recovery middleware answers
			}
		}()
		err = next(c)
		if err != nil {
			c.Error(err) // the answer is now sent, with its final status
		}
		s.recordRequest(c, err)
		return err
	}
}

// recordInTx writes the request's success event in tx, the transaction that writes its change,
// so that the change and its record commit together. It runs before each commit of a writing
// transaction the request opens (rls.CommitHook); a transaction that wrote nothing (no
// transaction id assigned: a read, or an UPDATE that matched no row) records nothing, and the
// request's outcome is recorded when it ends, as for any request.
func (s *Server) recordInTx(ctx context.Context, c echo.Context, tx pgx.Tx) error {
	if s.audit == nil {
		return nil
	}
	e, authenticated, ok := s.requestEvent(c, 0, nil)
	if !ok || !authenticated {
		return nil
	}
	e.Details["status"] = "committed"
	wrote, err := s.audit.RecordTxIfWrote(ctx, tx, e, e.TenantID == "" || platformActions[e.Action])
	if err != nil {
		return err
	}
	if wrote {
		c.Set(auditCommittedKey, true)
	}
	return nil
}

// requestEvent builds the request's audit event; ok is false for a request that is not
// audited. status 0 builds the event of a change committing (outcome success) before the answer
// is known.
func (s *Server) requestEvent(c echo.Context, status int, handlerErr error) (e audit.Event, authenticated, ok bool) {
	req, route := c.Request(), c.Path()
	var he *echo.HTTPError
	if route == "" || (errors.As(handlerErr, &he) && he.Code == http.StatusMethodNotAllowed) {
		return e, false, false // no route matched the path, or not with this method: nothing was attempted
	}
	d, refused := c.Get(auditDenialKey).(denial)
	management := strings.HasPrefix(route, "/api/meta-agent/")
	tenantAPI := strings.HasPrefix(route, TenantAPIPath)
	denied := status == http.StatusUnauthorized || status == http.StatusForbidden
	switch {
	case refused:
	case management && (mutating(req.Method) || denied):
	case tenantAPI && mutating(req.Method):
	default:
		return e, false, false
	}

	id, _ := c.Get(auditIDKey).(string)
	if id == "" {
		id = newAuditID()
	}
	e = audit.Event{
		ID:        id,
		Action:    actionOf(req.Method, route),
		Resource:  truncateText(req.URL.Path, 300),
		Outcome:   audit.OutcomeSuccess,
		RequestID: truncateText(c.Response().Header().Get(echo.HeaderXRequestID), 128),
		At:        time.Now().UTC(),
		Details:   map[string]string{"method": req.Method, "route": route, "status": strconv.Itoa(status)},
	}
	switch {
	case refused || denied:
		e.Outcome = audit.OutcomeDenied
	case status >= http.StatusBadRequest:
		e.Outcome = audit.OutcomeFailure
	}
	authenticatedTenant, _ := tenant.IDFrom(req.Context())
	if management {
		e.TenantID = s.requestTenant(c)
		e.Actor = audit.Actor{Type: audit.ActorOperator, ID: nonEmptyText(operatorOf(c).Name, "unauthenticated")}
		e.Reason = problemReason(handlerErr, status)
	} else {
		e.TenantID = authenticatedTenant
		if refused {
			e.TenantID, e.Reason = d.tenantID, truncateText(d.reason, 300)
		}
		e.Actor = audit.Actor{Type: audit.ActorTenant, ID: nonEmptyText(e.TenantID, "unknown")}
		if !refused {
			e.Reason = problemReason(handlerErr, status)
		}
	}
	// Only an authenticated caller writes into a tenant's chain.
	authenticated = (management && operatorOf(c).Name != "") || (!management && authenticatedTenant != "" && authenticatedTenant == e.TenantID)
	if !authenticated {
		e.Details["authenticated"] = "false"
	}
	return e, authenticated, true
}

func (s *Server) recordRequest(c echo.Context, handlerErr error) {
	e, authenticated, ok := s.requestEvent(c, c.Response().Status, handlerErr)
	if !ok {
		return
	}
	if committed, _ := c.Get(auditCommittedKey).(bool); committed {
		if e.Outcome == audit.OutcomeSuccess {
			return // recorded with its change
		}
		// The change committed with its event, and then the answer failed: record that too.
		e.ID += "/answer"
		e.Reason = truncateText("the change committed; the answer failed: "+e.Reason, 300)
	}

	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Request().Context()), auditWriteTimeout)
	defer cancel()
	var err error
	switch {
	case !authenticated && e.Outcome == audit.OutcomeDenied:
		ok, suppressed := s.refusals.allow(c.RealIP(), time.Now())
		if !ok {
			return // counted; the next recorded refusal from this client carries the count
		}
		if suppressed > 0 {
			e.Details["suppressedBefore"] = strconv.Itoa(suppressed)
		}
		err = s.audit.Unauthenticated(ctx, e)
	case !authenticated || e.TenantID == "" || platformActions[e.Action]:
		_, err = s.audit.Platform(ctx, e)
	default:
		_, err = s.audit.Record(ctx, e)
	}
	if err != nil {
		s.logger.Error("audit event not written", "err", err, "event_id", e.ID, "action", e.Action, "outcome", e.Outcome,
			"tenant_id", e.TenantID, "actor", e.Actor.ID, "resource", e.Resource, "request_id", e.RequestID)
	}
}

// requestTenant is the tenant a management request is about: the path's, or the one the
// handler named (registration, onboarding); "" when none is known or the id is malformed.
func (s *Server) requestTenant(c echo.Context) string {
	id := c.Param("tenantId")
	if id == "" {
		id, _ = c.Get(auditTenantKey).(string)
	}
	if tenant.ValidateID(id) != nil {
		return ""
	}
	return id
}

// problemReason says why a request failed, without echoing input: for 400-class answers about
// the request's content (malformed, invalid, too large, wrong type), only the problem's title
// and the names of the fields at fault; for others (401, 403, 404, 409…), the problem's
// detail, which the server wrote. Server errors say only that.
func problemReason(err error, status int) string {
	if err == nil || status < http.StatusBadRequest {
		return ""
	}
	if status >= http.StatusInternalServerError {
		return "internal error"
	}
	var p *Problem
	var he *echo.HTTPError
	switch {
	case errors.As(err, &p):
	case errors.As(err, &he):
		p = fromHTTPError(he)
	default:
		return http.StatusText(status)
	}
	switch status {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType:
		fields := make([]string, 0, len(p.Errors))
		for _, f := range p.Errors {
			fields = append(fields, f.Field)
		}
		if len(fields) > 0 {
			return truncateText(p.Title+" (fields: "+strings.Join(fields, ", ")+")", 300)
		}
		return p.Title
	}
	return truncateText(p.Title+": "+p.Detail, 300)
}

func newAuditID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms (Go 1.24+)
	return "api/" + hex.EncodeToString(b[:])
}

func nonEmptyText(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// truncateText bounds client-influenced text in events, without splitting a character.
func truncateText(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
