package e2e

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/bson"

	"github.com/misybot/tenancy/api"
	"github.com/misybot/tenancy/internal/domain/cells"
	"github.com/misybot/tenancy/internal/model/tenant"
	"github.com/misybot/tenancy/internal/stores/redisurl"
	"github.com/misybot/tenancy/internal/stores/rls"
	"github.com/misybot/tenancy/internal/stores/tenantmongo"
	"github.com/misybot/tenancy/internal/stores/tenantredis"
	"github.com/misybot/tenancy/internal/testkit/testenv"
)

// A tenant placed on another cell is onboarded there, through the real workflows: its MongoDB
// database and Redis keys are on that cell's servers and not on the default cell's; the signed
// tenant API reaches its data there; and its answers name the cell. An onboarding no cell can
// take is refused before the tenant is even registered.
func TestOnboardingOnAnotherCell(t *testing.T) {
	s := newStack(t, true)
	ctx := context.Background()
	reg := s.cells.Registry()
	// Closed once registered: it takes no new tenant, so no concurrent test's onboarding lands
	// on it; the tenant below is placed on it by hand before it is onboarded, which the
	// placement keeps (a tenant placed once keeps its cell).
	cell := "t-" + testenv.TenantID("e")[2:10]
	_, err := reg.Create(ctx, cells.Cell{ID: cell, Region: "local", Kind: cells.KindPooled, Capacity: 10},
		cells.Stores{PostgresURL: testenv.CellPostgresOf(t, 2).AppURL, MongoURL: testenv.Cell2MongoURI, RedisURL: testenv.Cell2RedisURL})
	require.NoError(t, err)
	_, err = reg.SetState(ctx, cell, cells.StateClosed)
	require.NoError(t, err)
	t.Cleanup(func() {
		_, _ = s.owner.Exec(context.Background(), `UPDATE tenants SET cell_id = NULL WHERE cell_id = $1`, cell)
		_ = reg.Delete(context.Background(), cell)
	})

	id := testenv.TenantID("cellt")
	code, body := s.do(http.MethodPost, api.TenantsPath, onboardBody(id, "standard"))
	require.Equal(t, http.StatusCreated, code, body)
	secret := body["tenantSecret"].(string)
	_, err = s.owner.Exec(ctx, `UPDATE tenants SET cell_id = $2 WHERE tenant_id = $1`, id, cell)
	require.NoError(t, err)
	code, body = s.do(http.MethodPost, api.TenantsPath+"/onboard", onboardBody(id, "standard"))
	require.Equal(t, http.StatusAccepted, code, body)
	require.NoError(t, s.wait(body))

	code, body = s.do(http.MethodGet, api.TenantsPath+"/"+id, "")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "active", body["status"])
	require.Equal(t, cell, body["cellId"])

	dbName, err := tenantmongo.DatabaseName(id)
	require.NoError(t, err)
	on := func(uri string) bool {
		names, err := testenv.MongoClientAt(t, uri).ListDatabaseNames(ctx, bson.D{{Key: "name", Value: dbName}})
		require.NoError(t, err)
		return slices.Contains(names, dbName)
	}
	require.True(t, on(testenv.Cell2MongoURI), "the tenant's database is on its cell")
	require.False(t, on(testenv.MongoURI), "and not on the default cell")
	cellRedis, err := redisurl.NewClient(testenv.Cell2RedisURL)
	require.NoError(t, err)
	t.Cleanup(func() { _ = cellRedis.Close() })
	record := tenantredis.Key(id, "context", "record")
	require.EqualValues(t, 1, cellRedis.Exists(ctx, record).Val(), "its context record on its cell's Redis")
	require.Zero(t, s.redis.Exists(ctx, record).Val(), "and not on the default one")

	// Its PostgreSQL rows are in its cell's database, not in the control plane's; a setting the
	// operator changes is written there, and the change's audit event, committed with it in the
	// cell, reaches the tenant's chain (the relay).
	cellPG := testenv.CellOwnerPool(t, 2)
	settingsIn := func(p *pgxpool.Pool) int {
		var n int
		require.NoError(t, rls.Tx(tenant.WithID(ctx, id), p, func(tx pgx.Tx) error {
			return tx.QueryRow(ctx, `SELECT count(*) FROM tenant_settings WHERE tenant_id = $1`, id).Scan(&n)
		}))
		return n
	}
	require.Equal(t, 3, settingsIn(cellPG), "provisioned on its cell's PostgreSQL")
	require.Zero(t, settingsIn(s.owner), "and not in the control plane's database")
	code, body = s.do(http.MethodPut, api.TenantsPath+"/"+id+"/settings/theme.mode", `{"value":"dark"}`)
	require.Equal(t, http.StatusOK, code, body)
	require.Equal(t, 4, settingsIn(cellPG))
	require.Zero(t, settingsIn(s.owner))
	require.Eventually(t, func() bool {
		var n int
		require.NoError(t, rls.Tx(tenant.WithID(ctx, id), s.owner, func(tx pgx.Tx) error {
			return tx.QueryRow(ctx, `SELECT count(*) FROM audit_outbox WHERE tenant_id = $1 AND convert_from(payload, 'UTF8') LIKE '%"tenant.setting.put"%'`, id).Scan(&n)
		}))
		return n == 1
	}, 10*time.Second, 100*time.Millisecond, "the setting's audit event reaches the control plane's chain once")

	// The signed tenant API finds it on its cell, and writes there.
	require.Equal(t, http.StatusOK, s.signedGet(id, secret, "/me"))
	conv, err := s.conversations.Create(tenant.WithID(ctx, id), "on a cell")
	require.NoError(t, err)
	n, err := testenv.MongoClientAt(t, testenv.Cell2MongoURI).Database(dbName).Collection(tenantmongo.Conversations).
		CountDocuments(ctx, bson.D{{Key: "_id", Value: conv.ID}})
	require.NoError(t, err)
	require.EqualValues(t, 1, n)

	// Refused before anything starts: an unknown cell (404), a closed one (409), a region no
	// cell is in (400).
	other := testenv.TenantID("cellx")
	withCell := func(extra string) string {
		b := onboardBody(other, "standard")
		return b[:len(b)-1] + "," + extra + "}"
	}
	code, body = s.do(http.MethodPost, api.TenantsPath+"/onboard", withCell(`"cellId":"no-such-cell"`))
	require.Equal(t, http.StatusNotFound, code, body)
	code, body = s.do(http.MethodPost, api.TenantsPath+"/onboard", withCell(`"cellId":"`+cell+`"`))
	require.Equal(t, http.StatusConflict, code, body)
	require.Contains(t, body["detail"], "closed")
	code, body = s.do(http.MethodPost, api.TenantsPath+"/onboard", withCell(`"region":"nowhere-at-all"`))
	require.Equal(t, http.StatusBadRequest, code, body)
	code, body = s.do(http.MethodPost, api.TenantsPath+"/onboard", withCell(`"cellId":"Bad_Cell"`))
	require.Equal(t, http.StatusBadRequest, code, body)
	code, _ = s.do(http.MethodGet, api.TenantsPath+"/"+other, "")
	require.Equal(t, http.StatusNotFound, code, "nothing was registered either")
}
