package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
)

// requireOperator admits management requests that carry the operator bearer token. Both sides
// are hashed before the constant-time compare so neither the token's content nor its length
// leaks through timing.
func (s *Server) requireOperator(next echo.HandlerFunc) echo.HandlerFunc {
	want := sha256.Sum256([]byte(s.operatorToken))
	return func(c echo.Context) error {
		scheme, token, ok := strings.Cut(c.Request().Header.Get(echo.HeaderAuthorization), " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
			return newProblem(http.StatusUnauthorized, ProblemUnauthorized, "Unauthorized",
				"send the operator token as Authorization: Bearer <token>")
		}
		got := sha256.Sum256([]byte(token))
		if s.operatorToken == "" || subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			return newProblem(http.StatusUnauthorized, ProblemUnauthorized, "Unauthorized", "the bearer token is not valid")
		}
		return next(c)
	}
}
