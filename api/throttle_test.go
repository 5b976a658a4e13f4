package api_test

import (
	"fmt"
	"net"
	"net/http"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/misybot/tenancy/api"
	"github.com/misybot/tenancy/internal/testenv"
	"github.com/misybot/tenancy/internal/throttle"
)

// guard is a failed-authentication budget of this test's own (its own key prefix), small.
func guard(t *testing.T) *throttle.Guard {
	g := throttle.New(testenv.RedisClient(t))
	g.Prefix = "authfail:" + testenv.TenantID("t") + ":"
	g.PerAddress, g.PerTenant = 5, 8
	return g
}

// Wrong bearer tokens from one address spend its budget: then 429 with Retry-After, even for
// a right token, and in every API process (the count is in Redis).
func TestFailedBearerTokensAreThrottled(t *testing.T) {
	t.Parallel()
	g := guard(t)
	b := setup(t, func(c *api.Config) { c.Throttle = g })
	other := setup(t, func(c *api.Config) { c.Throttle = g }) // a second API process
	wrong := []string{"Authorization", "Bearer not-a-valid-token-0123456789"}
	for i := range 5 {
		_ = i
		requireProblem(t, b.do(t, http.MethodGet, api.TenantsPath, "", wrong...), http.StatusUnauthorized)
	}
	r := b.do(t, http.MethodGet, api.TenantsPath, "", wrong...)
	requireProblem(t, r, http.StatusTooManyRequests)
	secs, err := strconv.Atoi(r.Header.Get("Retry-After"))
	require.NoError(t, err)
	require.Positive(t, secs)
	require.LessOrEqual(t, secs, 60)
	// The address waits, whatever it sends, in every API process (the budget is in Redis).
	requireProblem(t, b.do(t, http.MethodGet, api.TenantsPath, ""), http.StatusTooManyRequests)
	requireProblem(t, other.do(t, http.MethodGet, api.TenantsPath, ""), http.StatusTooManyRequests)
}

// Wrong signatures for one tenant id, from many addresses (behind a trusted proxy), spend the
// tenant id's budget: 429 for that id, while another tenant is served.
func TestFailedSignaturesAreThrottledPerTenant(t *testing.T) {
	t.Parallel()
	g := guard(t)
	_, proxies, err := net.ParseCIDR("192.0.2.0/24")
	require.NoError(t, err)
	b := setup(t, func(c *api.Config) { c.Throttle, c.TrustedProxies = g, []*net.IPNet{proxies} })
	victim := b.provision(t, "thr", allPerms, nil)
	bystander := b.provision(t, "thr", allPerms, nil)
	forged := signedTenant{id: victim.id, secret: victim.secret[:62] + "00"}
	send := func(st signedTenant, i int) response {
		req := st.req("GET", "/me", "")
		req.tamper = func(r *http.Request) { r.Header.Set("X-Forwarded-For", fmt.Sprintf("198.51.100.%d", i)) }
		return b.send(t, req)
	}
	for i := range 8 {
		requireProblem(t, send(forged, i), http.StatusUnauthorized)
	}
	requireProblem(t, send(forged, 100), http.StatusTooManyRequests)
	requireProblem(t, send(victim, 101), http.StatusTooManyRequests) // the tenant id waits, whoever asks
	require.Equal(t, http.StatusOK, send(bystander, 102).Code, "another tenant is served")
}
