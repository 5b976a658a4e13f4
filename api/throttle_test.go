package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/misybot/tenancy/api"
	"github.com/misybot/tenancy/internal/platform/throttle"
	"github.com/misybot/tenancy/internal/testkit/testenv"
)

// guard is a budget of this test's own (its own key prefix), with the defaults.
func guard(t *testing.T) *throttle.Guard {
	g := throttle.New(testenv.RedisClient(t))
	g.Prefix = "authfail:" + testenv.TenantID("t") + ":"
	return g
}

// logBuffer is a logger whose lines a test can read (every level), safe for concurrent use.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// metric reads one sample of the operators' /metrics, 0 when absent.
func (b bundle) metric(t *testing.T, series string) float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	b.ops.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for _, line := range strings.Split(rec.Body.String(), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			require.NoError(t, err, line)
			return f
		}
	}
	return 0
}

func requireRetryAfter(t *testing.T, r response) {
	t.Helper()
	secs, err := strconv.Atoi(r.Header.Get("Retry-After"))
	require.NoError(t, err, "Retry-After %q", r.Header.Get("Retry-After"))
	require.Positive(t, secs)
	require.LessOrEqual(t, secs, 60)
}

// Wrong bearer tokens from one address lock out only the pair (that token, that address): the
// valid token from the same address is served, in every API process, while the repeated wrong
// token is refused with 429. Many different wrong tokens lock nothing; they reach the
// address's ceiling, which alerts (metric, warning) and refuses nothing.
func TestWrongBearerTokensDoNotLockOutTheValidOne(t *testing.T) {
	t.Parallel()
	g := guard(t)
	var logs logBuffer
	b := setup(t, func(c *api.Config) { c.Throttle, c.Logger = g, logs.logger() })
	other := setup(t, func(c *api.Config) { c.Throttle = g }) // a second API process
	bearer := func(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

	var sent []string
	for range 200 { // a guesser: every token different
		tok := "mbt_" + nonce() + nonce() + nonce()[:16]
		sent = append(sent, tok)
		requireProblem(t, b.do(t, http.MethodGet, api.TenantsPath, "", bearer(tok)...), http.StatusUnauthorized)
	}
	wrong := "mbt_" + strings.Repeat("e", 64)
	sent = append(sent, wrong)
	for i := range 100 { // a stuck client, or a locker: the same token again and again
		r := b.do(t, http.MethodGet, api.TenantsPath, "", bearer(wrong)...)
		if i < int(g.PerPair) {
			requireProblem(t, r, http.StatusUnauthorized)
			continue
		}
		requireProblem(t, r, http.StatusTooManyRequests)
		require.Equal(t, api.ProblemTooMany, r.Body["type"])
		requireRetryAfter(t, r)
	}

	require.Equal(t, http.StatusOK, b.do(t, http.MethodGet, api.TenantsPath, "").Code, "the valid token, same address")
	require.Equal(t, http.StatusOK, other.do(t, http.MethodGet, api.TenantsPath, "").Code, "and in another process")
	r := other.do(t, http.MethodGet, api.TenantsPath, "", bearer(wrong)...)
	requireProblem(t, r, http.StatusTooManyRequests) // the attacker's pair waits everywhere
	requireRetryAfter(t, r)

	require.Equal(t, 230.0, b.metric(t, `tenancy_auth_failures_total{api="management"}`))
	require.Equal(t, 1.0, b.metric(t, `tenancy_auth_lockouts_total{api="management"}`))
	require.Equal(t, 1.0, b.metric(t, `tenancy_auth_failure_ceilings_total{scope="address"}`))
	out := logs.String()
	require.Contains(t, out, "reached the ceiling")
	require.Contains(t, out, `"address":"192.0.2.1"`)
	for _, tok := range append(sent, token) {
		require.NotContains(t, out, tok, "no token in the logs")
		require.NotContains(t, out, tok[len(tok)-16:], "nor a part of one")
	}
}

// Wrong signatures under tenant B's id, from ten addresses, lock out those ten pairs only:
// B's own signed requests are served, the attackers' addresses still reach other tenants, and
// the tenant id's ceiling alerts.
func TestWrongSignaturesDoNotLockOutTheTenant(t *testing.T) {
	t.Parallel()
	g := guard(t)
	g.PerPair = 10
	_, proxies, err := net.ParseCIDR("192.0.2.0/24")
	require.NoError(t, err)
	var logs logBuffer
	b := setup(t, func(c *api.Config) { c.Throttle, c.TrustedProxies, c.Logger = g, []*net.IPNet{proxies}, logs.logger() })
	victim := b.provision(t, "thr", allPerms, nil)
	bystander := b.provision(t, "thr", allPerms, nil)
	forged := signedTenant{id: victim.id, secret: victim.secret[:62] + "00"}
	send := func(st signedTenant, addr string) response {
		req := st.req("GET", "/me", "")
		req.tamper = func(r *http.Request) { r.Header.Set("X-Forwarded-For", addr) }
		return b.send(t, req)
	}
	attacker := func(i int) string { return fmt.Sprintf("198.51.100.%d", i) }

	for i := range 200 {
		r := send(forged, attacker(i%10))
		if i < 10*int(g.PerPair) {
			requireProblem(t, r, http.StatusUnauthorized)
		} else {
			requireProblem(t, r, http.StatusTooManyRequests)
		}
	}

	me := send(victim, "203.0.113.7")
	require.Equal(t, http.StatusOK, me.Code, "B's own signed request: %s", me.Raw)
	require.Equal(t, victim.id, me.Body["tenantId"])
	r := send(forged, attacker(3))
	requireProblem(t, r, http.StatusTooManyRequests) // the attacker's pair waits
	require.Equal(t, api.ProblemTooMany, r.Body["type"])
	requireRetryAfter(t, r)
	require.Equal(t, http.StatusOK, send(bystander, attacker(3)).Code, "the attacker's address, another tenant: served")
	// The pair is (claimed tenant id, address): B's own request from an attacker's address
	// (behind the same NAT, say) waits with it. That is the one lock-out left to aim, and it
	// needs the attacker's address.
	requireProblem(t, send(victim, attacker(3)), http.StatusTooManyRequests)

	require.Equal(t, 10.0, b.metric(t, `tenancy_auth_lockouts_total{api="tenant"}`))
	require.Equal(t, 1.0, b.metric(t, `tenancy_auth_failure_ceilings_total{scope="tenant"}`))
	require.Contains(t, logs.String(), `"tenant_id":"`+victim.id+`"`)
	require.NotContains(t, logs.String(), victim.secret)
}

// CORS preflights are unauthenticated and tell whether some tenant allows an origin: each
// address has a budget of them, and a tighter one of refused ones; past either, 429 with
// Retry-After. Signed requests from that address are not affected.
func TestPreflightsAreBudgetedPerAddress(t *testing.T) {
	t.Parallel()
	g := guard(t)
	g.PreflightsPerAddress, g.RefusedPreflightsPerAddress = 5, 2
	_, proxies, err := net.ParseCIDR("192.0.2.0/24")
	require.NoError(t, err)
	b := setup(t, func(c *api.Config) { c.Throttle, c.TrustedProxies = g, []*net.IPNet{proxies} })
	origin := "https://" + testenv.TenantID("shop") + ".test"
	a := b.provision(t, "pf", allPerms, []string{origin})
	preflight := func(addr, origin string) response {
		req := httptest.NewRequest(http.MethodOptions, api.TenantAPIPath+"/settings/x", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "PUT")
		req.Header.Set("X-Forwarded-For", addr)
		rec := httptest.NewRecorder()
		b.e.ServeHTTP(rec, req)
		out := response{Code: rec.Code, Header: rec.Header(), Raw: rec.Body.String()}
		if rec.Body.Len() > 0 {
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &out.Body), out.Raw)
		}
		return out
	}

	for range 5 {
		r := preflight("198.51.100.1", origin)
		require.Equal(t, http.StatusNoContent, r.Code, r.Raw)
		require.Equal(t, origin, r.Header.Get("Access-Control-Allow-Origin"))
	}
	r := preflight("198.51.100.1", origin)
	requireProblem(t, r, http.StatusTooManyRequests)
	require.Equal(t, api.ProblemTooManyPreflights, r.Body["type"])
	require.Empty(t, r.Header.Get("Access-Control-Allow-Origin"))
	requireRetryAfter(t, r)
	signed := a.req("GET", "/me", "")
	signed.tamper = func(r *http.Request) { r.Header.Set("X-Forwarded-For", "198.51.100.1") }
	require.Equal(t, http.StatusOK, b.send(t, signed).Code, "the address's signed requests are not budgeted here")

	// Guessing origins: refusals spend the tighter budget, then even an allowed origin waits.
	for range 2 {
		require.Equal(t, http.StatusForbidden, preflight("198.51.100.2", "https://guess.test").Code)
	}
	r = preflight("198.51.100.2", origin)
	requireProblem(t, r, http.StatusTooManyRequests)
	requireRetryAfter(t, r)

	require.Equal(t, http.StatusNoContent, preflight("198.51.100.3", origin).Code, "another address is answered")
	require.Equal(t, 2.0, b.metric(t, `tenancy_auth_lockouts_total{api="preflight"}`))
}
