package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/misybot/tenancy/internal/keys/seal"
	"github.com/misybot/tenancy/internal/platform/clients"
	"github.com/misybot/tenancy/internal/platform/config"
	"github.com/misybot/tenancy/internal/testkit/testenv"
	"github.com/misybot/tenancy/wiring"
)

// /readyz of the API as production wires it (configuration from the environment,
// clients.Open, wiring.API) turns red, naming the dependency, when any one of PostgreSQL,
// MongoDB, Redis or Temporal stops answering, and green again when it is back. Each is cut
// with a TCP proxy in front of the shared server, which keeps running for everyone else.
func TestReadinessFollowsEachDependency(t *testing.T) {
	t.Parallel()
	testenv.Migrate(t)
	testenv.TemporalClient(t) // the servers answer directly, or the test says how to start them
	testenv.MongoClient(t)
	testenv.RedisClient(t)

	proxied := func(rawURL string) (*testenv.Proxy, string) {
		u, err := url.Parse(rawURL)
		require.NoError(t, err)
		p := testenv.StartProxy(t, u.Host)
		u.Host = p.Addr
		return p, u.String()
	}
	pgProxy, dbURL := proxied(testenv.AppDatabaseURL)
	redisProxy, redisURL := proxied(testenv.RedisURL)
	mongoProxy, mongoURI := proxied(testenv.MongoURI)
	q := url.Values{"heartbeatFrequencyMS": {"500"}, "serverSelectionTimeoutMS": {"1000"}, "connectTimeoutMS": {"1000"}}
	mongoURI += "?" + q.Encode()
	temporalProxy := testenv.StartProxy(t, testenv.TemporalAddress)

	env := map[string]string{
		"APP_ENV": "dev", "DATABASE_URL": dbURL, "REDIS_URL": redisURL, "MONGODB_URI": mongoURI,
		"TEMPORAL_ADDRESS": temporalProxy.Addr, "TENANT_MASTER_KEY": base64.StdEncoding.EncodeToString(masterKey),
		"OPERATOR_TOKEN": token, "EXPORT_DIR": t.TempDir(),
	}
	cfg, err := config.FromLookup(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	require.NoError(t, err)
	sealer, err := seal.NewKeyring(cfg.MasterKeys())
	require.NoError(t, err)
	c, err := clients.Open(context.Background(), cfg, testenv.Logger(t))
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	app := wiring.API(cfg, c, sealer, testenv.Logger(t))

	type readiness struct {
		Status string            `json:"status"`
		Checks map[string]string `json:"checks"`
	}
	ready := func() (int, readiness) {
		rec := httptest.NewRecorder()
		app.Ops.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		var r readiness
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &r), rec.Body.String())
		return rec.Code, r
	}
	allUp := func() bool {
		code, r := ready()
		return code == http.StatusOK && r.Checks["postgres"] == "ok" && r.Checks["mongodb"] == "ok" && r.Checks["redis"] == "ok" && r.Checks["temporal"] == "ok"
	}
	require.Eventually(t, allUp, time.Minute, 100*time.Millisecond, "ready while every dependency answers")

	for _, dep := range []struct {
		check string
		proxy *testenv.Proxy
	}{{"postgres", pgProxy}, {"mongodb", mongoProxy}, {"redis", redisProxy}, {"temporal", temporalProxy}} {
		dep.proxy.Cut()
		code, r := ready()
		require.Equal(t, http.StatusServiceUnavailable, code, "%s cut: %+v", dep.check, r)
		require.Equal(t, "unavailable", r.Status)
		require.Equal(t, "unavailable", r.Checks[dep.check], "%s cut: %+v", dep.check, r)
		for _, other := range []string{"postgres", "mongodb", "redis", "temporal"} {
			if other != dep.check {
				require.Equal(t, "ok", r.Checks[other], "%s cut: only it is named: %+v", dep.check, r)
			}
		}
		// The public listener says only that the API is not ready.
		rec := httptest.NewRecorder()
		app.Public.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		require.Equal(t, http.StatusServiceUnavailable, rec.Code)
		require.NotContains(t, rec.Body.String(), dep.check)

		dep.proxy.Restore()
		require.Eventually(t, allUp, time.Minute, 100*time.Millisecond, "ready again once %s is back", dep.check)
	}
}
