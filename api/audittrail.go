package api

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/labstack/echo/v4"

	"github.com/misybot/tenancy/internal/domain/audit"
	"github.com/misybot/tenancy/internal/model/tenant"
	"github.com/misybot/tenancy/internal/stores/rls"
)

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

// audited declares the audit action of a write route where the route is registered; a write
// route not declared gets "api.<method> <route>" (actionOf), so it is audited all the same, and
// a test checks that every write route declares one.
func (s *Server) audited(r *echo.Route, action string) *echo.Route {
	s.actions[r.Method+" "+r.Path] = action
	return r
}

// platformActions always go to the platform chain: they create or remove their tenant, whose
// own chain does not exist yet or is about to be exported and dropped. The offboarding request
// in particular: its workflow may mark the tenant offboarding and export its chain while the
// request's event is still being written, which would leave the event out of the archive.
var platformActions = map[string]bool{
	"tenant.register": true, "tenant.onboard.request": true, "tenant.offboard.request": true, "tenant.delete": true,
}

func (s *Server) actionOf(method, route string) string {
	if a, ok := s.actions[method+" "+route]; ok {
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
		Action:    s.actionOf(req.Method, route),
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
		e.Actor = audit.Actor{Type: audit.ActorOperator, ID: cmp.Or(operatorOf(c).Name, "unauthenticated")}
		e.Reason = problemReason(handlerErr, status)
	} else {
		e.TenantID = authenticatedTenant
		if refused {
			e.TenantID, e.Reason = d.tenantID, truncateText(d.reason, 300)
		}
		e.Actor = audit.Actor{Type: audit.ActorTenant, ID: cmp.Or(e.TenantID, "unknown")}
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
