package api

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/labstack/echo/v4"
	"go.mongodb.org/mongo-driver/mongo"

	"github.com/misybot/tenancy/internal/model/limits"
)

// Problem is the one error shape of the API: RFC 9457 problem details, served as
// application/problem+json. Type is a stable identifier clients can switch on; Errors lists
// field-level validation failures.
type Problem struct {
	Type     string       `json:"type"`
	Title    string       `json:"title"`
	Status   int          `json:"status"`
	Detail   string       `json:"detail,omitempty"`
	Instance string       `json:"instance,omitempty"`
	Errors   []FieldError `json:"errors,omitempty"`
	// CurrentStatus is the tenant's lifecycle status, on conflicts caused by it.
	CurrentStatus string `json:"currentStatus,omitempty"`
	// WorkflowID, RunID and Workflow name the operation already running, on a 409 "busy".
	WorkflowID string `json:"workflowId,omitempty"`
	RunID      string `json:"runId,omitempty"`
	Workflow   string `json:"workflow,omitempty"`
	// Limit and LimitValue name the tenant bound a write would break (internal/model/limits).
	Limit      string `json:"limit,omitempty"`
	LimitValue int64  `json:"limitValue,omitempty"`
}

// FieldError names one invalid field, in the JSON spelling the client sent.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

func (p *Problem) Error() string { return p.Title + ": " + p.Detail }

const problemBase = "https://docs.misybot.dev/problems/"

// Problem types. Stable: clients may match on them.
const (
	ProblemValidation     = problemBase + "validation"
	ProblemMalformed      = problemBase + "malformed-request"
	ProblemUnauthorized   = problemBase + "unauthorized"
	ProblemForbidden      = problemBase + "forbidden"
	ProblemNotFound       = problemBase + "not-found"
	ProblemConflict       = problemBase + "conflict"
	ProblemMethod         = problemBase + "method-not-allowed"
	ProblemUnsupported    = problemBase + "unsupported-media-type"
	ProblemTooLarge       = problemBase + "payload-too-large"
	ProblemTooMany        = problemBase + "too-many-failed-attempts"
	ProblemUnavailable    = problemBase + "service-unavailable"
	ProblemInternal       = problemBase + "internal"
	ProblemLimit          = problemBase + "limit-exceeded"
	problemGenericHTTPErr = problemBase + "http-error"
)

func newProblem(status int, typ, title, detail string) *Problem {
	return &Problem{Type: typ, Title: title, Status: status, Detail: detail}
}

func validationProblem(errs ...FieldError) *Problem {
	p := newProblem(http.StatusBadRequest, ProblemValidation, "Invalid request", "one or more fields are invalid")
	p.Errors = errs
	return p
}

func malformed(detail string) *Problem {
	return newProblem(http.StatusBadRequest, ProblemMalformed, "Malformed request", detail)
}

func notFound(detail string) *Problem {
	return newProblem(http.StatusNotFound, ProblemNotFound, "Not found", detail)
}

func conflict(detail string) *Problem {
	return newProblem(http.StatusConflict, ProblemConflict, "Conflict", detail)
}

// errorHandler turns every error a handler or Echo returns into a problem document. This is the
// one place where errors become status codes: a *Problem keeps its own, Echo's errors (unknown
// route, wrong method, body too large) keep theirs, and anything else is a 500 whose cause is
// logged, never sent.
func errorHandler(logger *slog.Logger) echo.HTTPErrorHandler {
	return func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}
		var p *Problem
		var he *echo.HTTPError
		var over *limits.Exceeded
		switch {
		case errors.As(err, &p):
		case errors.As(err, &he):
			p = fromHTTPError(he)
		case errors.As(err, &over):
			p = limitProblem(over)
		case storeUnreachable(err):
			logger.Warn("request failed: a data store is not reachable", "method", c.Request().Method, "path", c.Path(),
				"request_id", c.Response().Header().Get(echo.HeaderXRequestID), "err", err)
			p = newProblem(http.StatusServiceUnavailable, ProblemUnavailable, "Service unavailable",
				"a data store is not reachable; nothing was changed, try again")
		default:
			logger.Error("request failed", "method", c.Request().Method, "path", c.Path(),
				"request_id", c.Response().Header().Get(echo.HeaderXRequestID), "err", err)
			p = newProblem(http.StatusInternalServerError, ProblemInternal, "Internal error",
				"the server could not complete the request; it has been logged")
		}
		out := *p
		out.Instance = c.Request().URL.Path
		if p.Status == http.StatusUnauthorized {
			c.Response().Header().Set("WWW-Authenticate", `Bearer realm="misybot-tenancy"`)
		}
		c.Response().Header().Set(echo.HeaderContentType, "application/problem+json")
		if c.Request().Method == http.MethodHead {
			_ = c.NoContent(out.Status)
			return
		}
		if werr := c.JSON(out.Status, out); werr != nil {
			logger.Warn("write problem", "err", werr)
		}
	}
}

// limitProblem is a tenant bound's refusal: 413 for one value over its size, 403 for a tenant
// that is full; either way nothing was written.
func limitProblem(e *limits.Exceeded) *Problem {
	status, title := http.StatusForbidden, "Tenant limit reached"
	if e.TooLarge {
		status, title = http.StatusRequestEntityTooLarge, "Value too large"
	}
	p := newProblem(status, ProblemLimit, title, e.Error()+"; nothing was written")
	p.Limit, p.LimitValue = e.Bound, e.Limit
	return p
}

// storeUnreachable reports whether err says a data store did not answer: a connection that
// could not be made or broke (PostgreSQL, Redis and MongoDB all surface a *net.OpError, or the
// errno), pgx's connect error, a connection cut mid-answer, or MongoDB's network and timeout
// errors (server selection included). The request then gets 503, as when Temporal is down:
// the client did nothing wrong and may retry. Every store write is a transaction or an
// idempotent single command, so a 503 never hides a half-made change.
func storeUnreachable(err error) bool {
	var connect *pgconn.ConnectError
	var op *net.OpError
	return errors.As(err, &connect) || errors.As(err, &op) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.ErrUnexpectedEOF) ||
		mongo.IsNetworkError(err) || mongo.IsTimeout(err) || pgconn.Timeout(err)
}

func fromHTTPError(he *echo.HTTPError) *Problem {
	detail := http.StatusText(he.Code)
	if msg, ok := he.Message.(string); ok {
		detail = msg
	}
	switch he.Code {
	case http.StatusNotFound:
		return notFound("no such route")
	case http.StatusMethodNotAllowed:
		return newProblem(he.Code, ProblemMethod, "Method not allowed", detail)
	case http.StatusRequestEntityTooLarge:
		return newProblem(he.Code, ProblemTooLarge, "Payload too large", "the request body exceeds the limit")
	case http.StatusUnauthorized:
		return newProblem(he.Code, ProblemUnauthorized, "Unauthorized", detail)
	case http.StatusServiceUnavailable:
		return newProblem(he.Code, ProblemUnavailable, "Service unavailable", detail)
	}
	return newProblem(he.Code, problemGenericHTTPErr, http.StatusText(he.Code), detail)
}
