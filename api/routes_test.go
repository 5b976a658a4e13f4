package api

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	"github.com/misybot/tenancy/internal/domain/audit"
	"github.com/misybot/tenancy/internal/domain/registry"
	"github.com/misybot/tenancy/internal/stores/tenantmongo"
)

// Every write route declares its audit action where it is registered (audited), and every
// declared action belongs to a registered route: a write route added without one, or an
// action left behind by a removed route, fails here. Needs no server: pools and clients
// connect lazily, and nothing is served.
func TestEveryWriteRouteDeclaresItsAuditAction(t *testing.T) {
	pool, err := pgxpool.New(context.Background(), "postgres://nobody@127.0.0.1:1/none")
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	mc, err := mongo.Connect(context.Background(), options.Client().ApplyURI("mongodb://127.0.0.1:1/"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = mc.Disconnect(context.Background()) })
	w := audit.NewWriter(pool, mc, tenantmongo.New(mc), bytes.Repeat([]byte{1}, 32))

	s, app := newServer(Config{Registry: registry.New(pool), Audit: w})
	routes := map[string]bool{}
	writes := 0
	for _, r := range app.Public.Routes() {
		key := r.Method + " " + r.Path
		routes[key] = true
		if !mutating(r.Method) || !strings.HasPrefix(r.Path, "/api/") {
			continue
		}
		writes++
		action, ok := s.actions[key]
		require.True(t, ok, "write route %s declares no audit action: register it with s.audited(…)", key)
		require.NotEmpty(t, action, key)
	}
	require.Greater(t, writes, 10, "the write routes were found")
	for key := range s.actions {
		require.True(t, routes[key], "audit action declared for %s, which is not a route", key)
	}
	require.Equal(t, "tenant.register", s.actionOf(http.MethodPost, TenantsPath))
	require.Equal(t, "api.patch /api/meta-agent/nothing", s.actionOf(http.MethodPatch, "/api/meta-agent/nothing"), "an undeclared route is still audited")
}
