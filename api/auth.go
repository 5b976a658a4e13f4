package api

import (
	"errors"
	"net/http"
	"slices"
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
		scheme, token, ok := strings.Cut(c.Request().Header.Get(echo.HeaderAuthorization), " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
			return newProblem(http.StatusUnauthorized, ProblemUnauthorized, "Unauthorized",
				"send the operator token as Authorization: Bearer <token>")
		}
		op, err := s.operators.Authenticate(c.Request().Context(), token)
		if errors.Is(err, operators.ErrUnknownToken) {
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
