package api

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/misybot/tenancy/internal/operators"
)

const operatorKey = "operator"

// requireOperator admits management requests that carry a valid operator bearer token and
// records who the operator is for the handlers and the audit. Tokens are compared only as
// SHA-256 hashes (operators.Store).
func (s *Server) requireOperator(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if p := s.throttled(c, ""); p != nil {
			return p
		}
		scheme, token, ok := strings.Cut(c.Request().Header.Get(echo.HeaderAuthorization), " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
			s.authFailed(c, "")
			return newProblem(http.StatusUnauthorized, ProblemUnauthorized, "Unauthorized",
				"send the operator token as Authorization: Bearer <token>")
		}
		op, err := s.operators.Authenticate(c.Request().Context(), token)
		if errors.Is(err, operators.ErrUnknownToken) {
			s.authFailed(c, "")
			return newProblem(http.StatusUnauthorized, ProblemUnauthorized, "Unauthorized", "the bearer token is not valid")
		}
		if err != nil {
			return err
		}
		c.Set(operatorKey, op)
		return next(c)
	}
}

// operatorOf returns the authenticated operator of the request.
func operatorOf(c echo.Context) operators.Operator {
	op, _ := c.Get(operatorKey).(operators.Operator)
	return op
}

// Role sets of the management API: who may read, who may change, who may destroy.
var (
	readers = []operators.Role{operators.RoleAdmin, operators.RoleOperator, operators.RoleAuditor}
	writers = []operators.Role{operators.RoleAdmin, operators.RoleOperator}
	admins  = []operators.Role{operators.RoleAdmin}
)

// allow admits operators whose role is in roles; it runs after requireOperator.
func allow(roles []operators.Role) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			op := operatorOf(c)
			if !slices.Contains(roles, op.Role) {
				return newProblem(http.StatusForbidden, ProblemForbidden, "Forbidden",
					"role "+string(op.Role)+" may not do this; it needs one of: "+rolesString(roles))
			}
			return next(c)
		}
	}
}

func rolesString(roles []operators.Role) string {
	out := make([]string, len(roles))
	for i, r := range roles {
		out[i] = string(r)
	}
	return strings.Join(out, ", ")
}

// throttled answers 429 with Retry-After when the client's address, or the tenant id it claims,
// has spent its budget of failed authentications (see throttle.Guard); nil lets it through.
// When Redis cannot say, the request goes on (authentication still applies), with a warning.
func (s *Server) throttled(c echo.Context, tenantID string) *Problem {
	if s.throttle == nil {
		return nil
	}
	wait, err := s.throttle.Blocked(c.Request().Context(), c.RealIP(), tenantID)
	if err != nil {
		s.logger.Warn("failed-authentication budget not checked", "err", err)
		return nil
	}
	if wait <= 0 {
		return nil
	}
	secs := int(math.Ceil(wait.Seconds()))
	c.Response().Header().Set("Retry-After", strconv.Itoa(secs))
	return newProblem(http.StatusTooManyRequests, ProblemTooMany, "Too many failed attempts",
		fmt.Sprintf("too many failed authentication attempts; retry in %d s", secs))
}

// authFailed counts a failed authentication against the client's address and tenant id.
func (s *Server) authFailed(c echo.Context, tenantID string) {
	if s.throttle == nil {
		return
	}
	if err := s.throttle.Fail(context.WithoutCancel(c.Request().Context()), c.RealIP(), tenantID); err != nil {
		s.logger.Warn("failed authentication not counted", "err", err)
	}
}
