package api_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/misybot/tenancy/api"
	"github.com/misybot/tenancy/internal/control/lifecycle"
	"github.com/misybot/tenancy/internal/domain/registry"
	"github.com/misybot/tenancy/internal/platform/operators"
	"github.com/misybot/tenancy/internal/stores/tenantdb"
	"github.com/misybot/tenancy/internal/testkit/testenv"
)

// With the workflow service unreachable, a lifecycle request is answered 503 in the problem
// shape, never 500, and starts nothing.
func TestLifecycleAnswers503WhenTemporalIsDown(t *testing.T) {
	t.Parallel()
	down, err := client.NewLazyClient(client.Options{HostPort: "127.0.0.1:1"})
	require.NoError(t, err)
	t.Cleanup(down.Close)
	b := setup(t, func(c *api.Config) {
		c.Lifecycle = lifecycle.New(down, lifecycle.Options{TaskQueue: "nowhere", Logger: testenv.Logger(t)})
	})
	a := b.provision(t, "down", allPerms, nil)
	r := b.do(t, http.MethodPost, api.TenantsPath+"/"+a.id+"/suspend", "")
	requireProblem(t, r, http.StatusServiceUnavailable)
}

// With PostgreSQL cut off (a proxy the test cuts, the shared server untouched), reads and
// writes of the management API are answered 503 in the problem shape, never 500; once it is
// back, the same requests succeed and the write was not half-made.
func TestRequestsAnswer503WhenPostgreSQLIsDown(t *testing.T) {
	t.Parallel()
	proxy := testenv.StartProxy(t, pgHostPort(t))
	cfg, err := pgxpool.ParseConfig(strings.Replace(testenv.AppDatabaseURL, pgHostPort(t), proxy.Addr, 1))
	require.NoError(t, err)
	cfg.ConnConfig.ConnectTimeout = 2 * time.Second
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	b := setup(t, func(c *api.Config) {
		c.Registry, c.Settings, c.Operators = registry.New(pool), tenantdb.New(pool), operators.New(pool, token)
	})
	id := testenv.TenantID("pgdown")
	body := `{"tenantId":"` + id + `","tenantName":"T","contactEmail":"ops@t.test","tenantType":"standard"}`

	proxy.Cut()
	requireProblem(t, b.do(t, http.MethodGet, api.TenantsPath+"/"+id, ""), http.StatusServiceUnavailable)
	requireProblem(t, b.do(t, http.MethodPost, api.TenantsPath, body), http.StatusServiceUnavailable)

	proxy.Restore()
	r := b.do(t, http.MethodPost, api.TenantsPath, body)
	require.Equal(t, http.StatusCreated, r.Code, r.Raw)
	require.Equal(t, http.StatusOK, b.do(t, http.MethodGet, api.TenantsPath+"/"+id, "").Code)
}

// pgHostPort is the host:port of the test database's URL.
func pgHostPort(t *testing.T) string {
	t.Helper()
	u, err := url.Parse(testenv.AppDatabaseURL)
	require.NoError(t, err)
	return u.Host
}
