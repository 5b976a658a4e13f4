package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/misybot/tenancy/internal/keys/signing"
	"github.com/misybot/tenancy/internal/model/tenant"
	"github.com/misybot/tenancy/internal/platform/throttle"
	"github.com/misybot/tenancy/internal/stores/tenantredis"
)

// TenantAPIPath is the prefix of the API tenants call, signed with their secret.
const TenantAPIPath = "/api/tenant/v1"

// nonceTTL keeps a nonce long enough to cover the whole timestamp window on both sides.
const nonceTTL = 2*signing.MaxSkew + time.Minute

const tenantRecordKey = "tenantRecord"

// ProblemSignature is the type of every refused signature.
const ProblemSignature = problemBase + "invalid-signature"

func signatureProblem(detail string) *Problem {
	return newProblem(http.StatusUnauthorized, ProblemSignature, "Invalid signature", detail)
}

func forbidden(detail string) *Problem {
	return newProblem(http.StatusForbidden, ProblemForbidden, "Forbidden", detail)
}

// secretCache keeps opened tenant secrets briefly, so a signature check does not cost a
// database round trip and a decryption per request. A signature that fails against cached
// secrets is checked once more against fresh ones, so a rotation done by another process is
// seen at once; the previous secret's expiry is checked on every request.
type secretCache struct {
	mu      sync.Mutex
	entries map[string]secretEntry
}

type secretEntry struct {
	current, previous []byte
	previousUntil     time.Time
	at                time.Time
}

const secretCacheTTL = 30 * time.Second

func newSecretCache() *secretCache { return &secretCache{entries: map[string]secretEntry{}} }

func (sc *secretCache) get(id string, now time.Time) (secretEntry, bool) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	e, ok := sc.entries[id]
	return e, ok && now.Sub(e.at) < secretCacheTTL
}

func (sc *secretCache) put(id string, e secretEntry) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	sc.entries[id] = e
}

func (sc *secretCache) drop(id string) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	delete(sc.entries, id)
}

func (e secretEntry) candidates(now time.Time) [][]byte {
	out := [][]byte{e.current}
	if e.previous != nil && now.Before(e.previousUntil) {
		out = append(out, e.previous)
	}
	return out
}

// loadSecrets opens a tenant's current and (still valid) previous secret.
func (s *Server) loadSecrets(ctx context.Context, id string) (secretEntry, error) {
	sealed, err := s.registry.Secrets(ctx, id)
	if err != nil {
		return secretEntry{}, err
	}
	e := secretEntry{at: time.Now(), previousUntil: sealed.PreviousExpiries}
	if e.current, err = s.sealer.Open(id, SecretField, sealed.Current); err != nil {
		return secretEntry{}, fmt.Errorf("open tenant secret: %w", err)
	}
	if sealed.Previous != nil {
		if e.previous, err = s.sealer.Open(id, SecretField, sealed.Previous); err != nil {
			return secretEntry{}, fmt.Errorf("open previous tenant secret: %w", err)
		}
	}
	s.secrets.put(id, e)
	return e, nil
}

// verifySignature authenticates a tenant request: headers, timestamp window, the tenant's Redis
// context record (none: unknown or not provisioned), HMAC over the canonical string, then the
// tenant's status and the nonce, both only after the signature, so an unsigned caller learns
// nothing of the status and cannot burn a tenant's nonces. Every refusal is audited.
func (s *Server) verifySignature(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		h, err := signing.ParseHeaders(req.Header)
		claimed := h.TenantID
		if tenant.ValidateID(claimed) != nil {
			claimed = ""
		}
		// The budget is the pair (claimed tenant id, address): wrong signatures others send
		// under this tenant's id, from their addresses, never refuse the tenant's own.
		if p := s.throttled(c, throttle.TenantClaim(claimed)); p != nil {
			return p
		}
		if err != nil {
			s.authFailed(c, throttle.TenantClaim(claimed), apiTenant)
			return s.deny(c, h.TenantID, signatureProblem(err.Error()))
		}
		if claimed == "" {
			s.authFailed(c, throttle.TenantClaim(""), apiTenant)
			return s.deny(c, "", signatureProblem("malformed "+signing.HeaderTenant))
		}
		now := time.Now()
		if err := signing.CheckTime(h.Timestamp, now); err != nil {
			return s.deny(c, h.TenantID, signatureProblem(fmt.Sprintf("%v: %s must be within %d s of the server's clock", err, signing.HeaderTimestamp, int(signing.MaxSkew.Seconds()))))
		}
		ctx := tenant.WithID(req.Context(), h.TenantID)
		rec, err := s.redis.ReadContext(ctx)
		unknown := errors.Is(err, tenantredis.ErrNotFound)
		if err != nil && !unknown {
			return err
		}

		body, err := io.ReadAll(req.Body)
		if err != nil {
			var maxErr *http.MaxBytesError
			if errors.As(err, &maxErr) {
				return echo.ErrStatusRequestEntityTooLarge
			}
			return malformed("could not read the body")
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		canonical := signing.Canonical(req.Method, req.URL.EscapedPath(), req.URL.RawQuery, h.Timestamp, h.Nonce, body)
		if unknown {
			// Answered exactly as a wrong signature for a real tenant, after the same work (an
			// HMAC against a secret no one holds), so the answer does not tell which tenant ids
			// exist. The audit keeps the real reason.
			_, err := signing.Verify([][]byte{s.decoySecret}, canonical, h.Signature)
			if err == nil {
				err = signing.ErrBadSignature
			}
			s.authFailed(c, throttle.TenantClaim(h.TenantID), apiTenant)
			return s.denyAs(c, h.TenantID, signatureProblem(err.Error()), "unknown tenant, or not provisioned")
		}

		secrets, cached := s.secrets.get(h.TenantID, now)
		if cached && secrets.at.Before(rec.SecretRotatedAt) {
			cached = false // rotated since this process cached it (perhaps by another process)
		}
		if !cached {
			if secrets, err = s.loadSecrets(ctx, h.TenantID); err != nil {
				return err
			}
		}
		if _, err := signing.Verify(secrets.candidates(now), canonical, h.Signature); err != nil {
			if !cached {
				s.authFailed(c, throttle.TenantClaim(h.TenantID), apiTenant)
				return s.deny(c, h.TenantID, signatureProblem(err.Error()))
			}
			if secrets, err = s.loadSecrets(ctx, h.TenantID); err != nil { // maybe rotated elsewhere
				return err
			}
			if _, err := signing.Verify(secrets.candidates(now), canonical, h.Signature); err != nil {
				s.authFailed(c, throttle.TenantClaim(h.TenantID), apiTenant)
				return s.deny(c, h.TenantID, signatureProblem(err.Error()))
			}
		}

		// The status is told only to a caller that proved it holds the tenant's secret.
		if rec.Status != string(tenant.StatusActive) {
			return s.deny(c, h.TenantID, forbidden("tenant is "+rec.Status))
		}

		scope, err := s.redis.Scope(ctx)
		if err != nil {
			return err
		}
		fresh, err := scope.SetNX(ctx, "nonce", h.Nonce, "1", nonceTTL)
		if err != nil {
			return err
		}
		if !fresh {
			return s.deny(c, h.TenantID, signatureProblem("nonce already used"))
		}

		c.SetRequest(req.WithContext(ctx))
		c.Set(tenantRecordKey, rec)
		return next(c)
	}
}

// tenantCORS answers browsers. A request's Origin must be in the calling tenant's
// allowedOrigins; the answer then names that one origin (never "*", and no credentials are
// ever allowed: the API authenticates by signature, not cookies). A preflight carries no
// tenant header, so it is answered for origins that some active tenant allows, and the real
// request is then held to its own tenant's list.
func (s *Server) tenantCORS(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		res := c.Response()
		res.Header().Add(echo.HeaderVary, echo.HeaderOrigin)
		// Browser clients page the CSV audit report with this header.
		res.Header().Set(echo.HeaderAccessControlExposeHeaders, "X-Next-Cursor")
		origin := c.Request().Header.Get(echo.HeaderOrigin)
		if c.Request().Method == http.MethodOptions {
			if origin == "" || c.Request().Header.Get(echo.HeaderAccessControlRequestMethod) == "" {
				return c.NoContent(http.StatusNoContent)
			}
			// Unauthenticated, and its answer says whether some tenant allows the origin:
			// budgeted per address, and its refusals more tightly (guessing origins).
			if p := s.preflightThrottled(c); p != nil {
				return p
			}
			ok, err := s.registry.OriginAllowed(c.Request().Context(), origin)
			if err != nil {
				return err
			}
			if !ok {
				s.preflightRefused(c)
				return s.deny(c, "", forbidden("origin "+origin+" is not allowed"))
			}
			res.Header().Set(echo.HeaderAccessControlAllowOrigin, origin)
			res.Header().Set(echo.HeaderAccessControlAllowMethods, "GET, POST, PUT, DELETE")
			res.Header().Set(echo.HeaderAccessControlAllowHeaders, strings.Join([]string{
				echo.HeaderContentType, signing.HeaderTenant, signing.HeaderTimestamp, signing.HeaderNonce, signing.HeaderSignature}, ", "))
			res.Header().Set(echo.HeaderAccessControlMaxAge, "600")
			return c.NoContent(http.StatusNoContent)
		}
		return next(c)
	}
}

// checkOrigin holds a browser request to its tenant's allowed origins; it runs after
// verifySignature, which knows the tenant.
func (s *Server) checkOrigin(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		origin := c.Request().Header.Get(echo.HeaderOrigin)
		if origin == "" {
			return next(c)
		}
		rec, _ := c.Get(tenantRecordKey).(tenantredis.ContextRecord)
		if !slices.Contains(rec.AllowedOrigins, origin) {
			id, _ := tenant.IDFrom(c.Request().Context())
			return s.deny(c, id, forbidden("origin "+origin+" is not allowed for this tenant"))
		}
		c.Response().Header().Set(echo.HeaderAccessControlAllowOrigin, origin)
		return next(c)
	}
}

// permit admits tenants that hold the permission.
func (s *Server) permit(perm tenant.Permission) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			rec, _ := c.Get(tenantRecordKey).(tenantredis.ContextRecord)
			if !slices.Contains(rec.Permissions, string(perm)) {
				id, _ := tenant.IDFrom(c.Request().Context())
				return s.deny(c, id, forbidden("this tenant lacks the permission "+string(perm)))
			}
			return next(c)
		}
	}
}

// deny logs a refused tenant request (never its headers or body) and returns the problem. The
// audit trail of denials is written through s.onDenied when set.
func (s *Server) deny(c echo.Context, tenantID string, p *Problem) error {
	return s.denyAs(c, tenantID, p, p.Detail)
}

// denyAs is deny with a reason for the log and the audit other than what the client is told.
func (s *Server) denyAs(c echo.Context, tenantID string, p *Problem, reason string) error {
	s.logger.Warn("tenant request denied", "tenant_id", tenantID, "method", c.Request().Method,
		"path", c.Request().URL.Path, "status", p.Status, "reason", reason,
		"request_id", c.Response().Header().Get(echo.HeaderXRequestID))
	if s.onDenied != nil {
		s.onDenied(c, tenantID, p.Status, reason)
	}
	return p
}
