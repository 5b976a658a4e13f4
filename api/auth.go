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
	"time"

	"github.com/labstack/echo/v4"

	"github.com/misybot/tenancy/internal/platform/operators"
	"github.com/misybot/tenancy/internal/platform/throttle"
)

const operatorKey = "operator"

// requireOperator admits management requests that carry a valid operator bearer token and
// records who the operator is for the handlers and the audit. Tokens are compared only as
// SHA-256 hashes (operators.Store).
func (s *Server) requireOperator(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		scheme, token, ok := strings.Cut(c.Request().Header.Get(echo.HeaderAuthorization), " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			token = ""
		}
		// The pair is (this token, this address): wrong tokens sent from the same address, by
		// anyone, never refuse a valid one.
		claim := throttle.TokenClaim(token)
		if p := s.throttled(c, claim); p != nil {
			return p
		}
		if token == "" {
			s.authFailed(c, claim, apiManagement)
			return newProblem(http.StatusUnauthorized, ProblemUnauthorized, "Unauthorized",
				"send the operator token as Authorization: Bearer <token>")
		}
		op, err := s.operators.Authenticate(c.Request().Context(), token)
		if errors.Is(err, operators.ErrUnknownToken) {
			s.authFailed(c, claim, apiManagement)
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

// ProblemTooManyPreflights is the type of a CORS preflight refused because its address sent
// more preflights, or more refused ones, than its budget (throttle.Guard.Preflight). Stable,
// as the types in problem.go.
const ProblemTooManyPreflights = problemBase + "too-many-preflights"

// The APIs whose failed authentications are counted, as the metrics and logs name them.
const (
	apiManagement = "management"
	apiTenant     = "tenant"
)

// throttled answers 429 with Retry-After when the pair (claim, client address) has spent its
// budget of failed authentications (see throttle.Guard); nil lets it through. Only the pair is
// checked: failures others sent under the same tenant id, or from the same address under other
// claims, never refuse a credential. When Redis cannot say, the request goes on
// (authentication still applies), with a warning.
func (s *Server) throttled(c echo.Context, claim throttle.Claim) *Problem {
	if s.throttle == nil {
		return nil
	}
	wait, err := s.throttle.Blocked(c.Request().Context(), c.RealIP(), claim)
	if err != nil {
		s.logger.Warn("failed-authentication budget not checked", "err", err)
		return nil
	}
	return tooMany(c, wait, ProblemTooMany, "Too many failed attempts",
		"too many failed authentication attempts with this credential from this address")
}

// tooMany is a 429 problem with its Retry-After, or nil when wait is not positive.
func tooMany(c echo.Context, wait time.Duration, typ, title, what string) *Problem {
	if wait <= 0 {
		return nil
	}
	secs := int(math.Ceil(wait.Seconds()))
	c.Response().Header().Set("Retry-After", strconv.Itoa(secs))
	return newProblem(http.StatusTooManyRequests, typ, title, fmt.Sprintf("%s; retry in %d s", what, secs))
}

// authFailed counts a failed authentication against the pair (claim, client address) and the
// address's and tenant id's ceilings, and reports what it reached: a pair that spent its
// budget, a ceiling (an alert: a flood from one address, or against one tenant id from many).
// The log names the address and the tenant id, never a token or its fingerprint.
func (s *Server) authFailed(c echo.Context, claim throttle.Claim, api string) {
	if s.throttle == nil {
		return
	}
	s.metrics.authFailures.WithLabelValues(api).Inc()
	addr := c.RealIP()
	f, err := s.throttle.Fail(context.WithoutCancel(c.Request().Context()), addr, claim)
	if err != nil {
		s.logger.Warn("failed authentication not counted", "err", err)
		return
	}
	window := s.throttle.Window.String()
	if f.PairLocked {
		s.metrics.authLockouts.WithLabelValues(api).Inc()
		s.logger.Warn("failed-authentication budget spent: this credential is refused from this address until the window ends",
			"api", api, "address", addr, "tenant_id", claim.Tenant(), "failures", s.throttle.PerPair, "window", window)
	}
	if f.AddressCeiling {
		s.metrics.authCeilings.WithLabelValues("address").Inc()
		s.logger.Warn("failed authentications from one address reached the ceiling (alert only: valid credentials are still served)",
			"api", api, "address", addr, "failures", f.Address, "window", window)
	}
	if f.TenantCeiling {
		s.metrics.authCeilings.WithLabelValues("tenant").Inc()
		s.logger.Warn("failed authentications under one tenant id reached the ceiling (alert only: the tenant's signed requests are still served)",
			"api", api, "tenant_id", claim.Tenant(), "failures", f.Tenant, "window", window)
	}
}

// preflightThrottled counts a CORS preflight against its address's budget (see
// throttle.Guard.Preflight) and answers 429 with Retry-After past it; nil lets it through.
// When Redis cannot say, the preflight is answered, with a warning.
func (s *Server) preflightThrottled(c echo.Context) *Problem {
	if s.throttle == nil {
		return nil
	}
	addr := c.RealIP()
	wait, locked, err := s.throttle.Preflight(c.Request().Context(), addr)
	if err != nil {
		s.logger.Warn("preflight budget not checked", "err", err)
		return nil
	}
	if locked {
		s.preflightLocked(addr, "preflights", s.throttle.PreflightsPerAddress)
	}
	return tooMany(c, wait, ProblemTooManyPreflights, "Too many preflights", "too many CORS preflights from this address")
}

// preflightRefused counts a preflight refused for its origin against its address's tighter
// budget of those: guessing which origins some tenant allows.
func (s *Server) preflightRefused(c echo.Context) {
	if s.throttle == nil {
		return
	}
	addr := c.RealIP()
	locked, err := s.throttle.PreflightRefused(context.WithoutCancel(c.Request().Context()), addr)
	if err != nil {
		s.logger.Warn("refused preflight not counted", "err", err)
		return
	}
	if locked {
		s.preflightLocked(addr, "refused preflights", s.throttle.RefusedPreflightsPerAddress)
	}
}

func (s *Server) preflightLocked(addr, what string, n int64) {
	s.metrics.authLockouts.WithLabelValues("preflight").Inc()
	s.logger.Warn("preflight budget spent: this address's preflights are refused until the window ends",
		"address", addr, "budget", what, "count", n, "window", s.throttle.Window.String())
}
