package wiring_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/misybot/tenancy/api"
	"github.com/misybot/tenancy/internal/keys/seal"
	"github.com/misybot/tenancy/internal/platform/clients"
	"github.com/misybot/tenancy/internal/platform/config"
	"github.com/misybot/tenancy/internal/testkit/testenv"
	"github.com/misybot/tenancy/wiring"
)

// The API the product runs (starter serve) has every surface the description names; a
// feature whose handlers exist but that wiring leaves out (the cells endpoints were, once) is
// caught here rather than by a user's 404.
func TestTheProductsAPIMountsEverySurface(t *testing.T) {
	env := map[string]string{"APP_ENV": "dev", "TENANT_MASTER_KEY": "BQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQU=", "OPERATOR_TOKEN": "a-token-of-sixteen-or-more"}
	cfg, err := config.FromLookup(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	require.NoError(t, err)
	sealer, err := seal.New(testenv.MasterKey)
	require.NoError(t, err)
	c := &clients.Clients{Postgres: testenv.AppPool(t), Mongo: testenv.MongoClient(t), Redis: testenv.RedisClient(t), Temporal: testenv.TemporalClient(t)}
	app := wiring.API(cfg, c, sealer, testenv.Logger(t))
	routes := map[string]bool{}
	for _, r := range app.Public.Routes() {
		routes[r.Method+" "+r.Path] = true
	}
	for _, want := range []string{
		http.MethodGet + " " + api.TenantsPath,
		http.MethodPost + " " + api.TenantsPath + "/onboard",
		http.MethodGet + " /api/meta-agent/cells",
		http.MethodPost + " /api/meta-agent/cells",
		http.MethodGet + " /api/meta-agent/reconciliation",
		http.MethodGet + " " + api.TenantAPIPath + "/me",
	} {
		require.True(t, routes[want], "%s is not mounted", want)
	}
}
