package clients_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/bson"

	"github.com/misybot/tenancy/internal/domain/cells"
	"github.com/misybot/tenancy/internal/keys/seal"
	"github.com/misybot/tenancy/internal/model/tenant"
	"github.com/misybot/tenancy/internal/platform/clients"
	"github.com/misybot/tenancy/internal/stores/redisurl"
	"github.com/misybot/tenancy/internal/stores/rls"
	"github.com/misybot/tenancy/internal/stores/tenantdb"
	"github.com/misybot/tenancy/internal/stores/tenantmongo"
	"github.com/misybot/tenancy/internal/stores/tenantredis"
	"github.com/misybot/tenancy/internal/testkit/testenv"
)

// A tenant placed on cell-2 has its PostgreSQL rows, its MongoDB database and its Redis keys on
// cell-2's servers and nowhere else; a tenant of the default cell has its own on the default servers only; and
// reading tenant A's database and keys straight from the other cell's servers finds nothing.
func TestRoutedStoresKeepEachTenantOnItsCell(t *testing.T) {
	ctx := context.Background()
	owner, app := testenv.OwnerPool(t), testenv.AppPool(t)
	sealer, err := seal.New(testenv.MasterKey)
	require.NoError(t, err)
	defMongo, defRedis := testenv.MongoClient(t), testenv.RedisClient(t)
	cl := &clients.Clients{Postgres: app, Mongo: defMongo, Redis: defRedis}
	router := cl.Cells(sealer, testenv.Logger(t))
	t.Cleanup(func() { _ = router.Close(context.Background()) })

	// Closed: it takes no new tenant, so no other test's onboarding lands on it; its tenants are
	// still routed there.
	cell := "t-" + testenv.TenantID("r")[2:10]
	_, err = router.Registry().Create(ctx, cells.Cell{ID: cell, Region: "local", Kind: cells.KindPooled, Capacity: 10},
		cells.Stores{PostgresURL: testenv.CellPostgresOf(t, 2).AppURL, MongoURL: testenv.Cell2MongoURI, RedisURL: testenv.Cell2RedisURL})
	require.NoError(t, err)
	_, err = router.Registry().SetState(ctx, cell, cells.StateClosed)
	require.NoError(t, err)

	mk := func(prefix string) string {
		id := testenv.TenantID(prefix)
		_, err := owner.Exec(ctx, `INSERT INTO tenants (tenant_id, site_id, tenant_name, contact_email, tenant_type, secret_ciphertext)
			VALUES ($1, 's', 'n', 'x@y.zz', 'trial', '\x01')`, id)
		require.NoError(t, err)
		t.Cleanup(func() { _, _ = owner.Exec(context.Background(), `DELETE FROM tenants WHERE tenant_id = $1`, id) })
		return id
	}
	onCell, onDefault := mk("oncell"), mk("ondef")
	_, err = owner.Exec(ctx, `UPDATE tenants SET cell_id = $2 WHERE tenant_id = $1`, onCell, cell)
	require.NoError(t, err)
	_, err = owner.Exec(ctx, `UPDATE tenants SET cell_id = 'default' WHERE tenant_id = $1`, onDefault)
	require.NoError(t, err)

	m, r, pg := router.TenantMongo(), router.TenantRedis(), router.TenantDB()
	for _, id := range []string{onCell, onDefault} {
		tctx := tenant.WithID(ctx, id)
		_, err := m.Provision(tctx)
		require.NoError(t, err)
		rep, err := pg.Provision(tctx, tenantdb.ProvisionInput{DisplayName: id, OwnerUserID: "owner@" + id})
		require.NoError(t, err)
		require.Equal(t, 3, rep.SettingsCreated)
		t.Cleanup(func() { _, _ = pg.Deprovision(tctx) })
		require.NoError(t, r.WriteContext(tctx, tenantredis.ContextRecord{Status: "active", Type: "standard", UpdatedAt: time.Now()}))
		t.Cleanup(func() { _, _ = m.Deprovision(tctx) })
	}
	t.Cleanup(func() {
		_, _ = owner.Exec(context.Background(), `UPDATE tenants SET cell_id = NULL WHERE cell_id = $1`, cell)
		_ = router.Registry().Delete(context.Background(), cell)
	})

	cellRedis, err := redisurl.NewClient(testenv.Cell2RedisURL)
	require.NoError(t, err)
	t.Cleanup(func() { _ = cellRedis.Close() })

	list := func(uri string) []string {
		c := testenv.MongoClientAt(t, uri)
		n, err := c.ListDatabaseNames(ctx, bson.D{})
		require.NoError(t, err)
		return n
	}
	onCellDB, _ := tenantmongo.DatabaseName(onCell)
	onDefaultDB, _ := tenantmongo.DatabaseName(onDefault)
	require.True(t, slices.Contains(list(testenv.Cell2MongoURI), onCellDB), "on its cell")
	require.False(t, slices.Contains(list(testenv.MongoURI), onCellDB), "not on the default cell")
	require.True(t, slices.Contains(list(testenv.MongoURI), onDefaultDB))
	require.False(t, slices.Contains(list(testenv.Cell2MongoURI), onDefaultDB))

	key := func(id string) string { return tenantredis.Key(id, "context", "record") }
	n, err := cellRedis.Exists(ctx, key(onCell)).Result()
	require.NoError(t, err)
	require.EqualValues(t, 1, n, "the context record on its cell's Redis")
	n, err = defRedis.Exists(ctx, key(onCell)).Result()
	require.NoError(t, err)
	require.Zero(t, n, "and not on the default one")
	n, err = cellRedis.Exists(ctx, key(onDefault)).Result()
	require.NoError(t, err)
	require.Zero(t, n)

	// Through the routed store, each tenant reads its own record back from its own cell.
	rec, err := r.ReadContext(tenant.WithID(ctx, onCell))
	require.NoError(t, err)
	require.Equal(t, "active", rec.Status)
	// Tenant A's context on the default cell's store (not routed) finds nothing of it.
	_, err = tenantredis.New(defRedis).ReadContext(tenant.WithID(ctx, onCell))
	require.ErrorIs(t, err, tenantredis.ErrNotFound)
	require.Equal(t, 1, router.OpenCells())

	// PostgreSQL: hand-written SQL as each database's owner (row-level security forced, so
	// under each tenant's context in turn) finds each tenant's rows in its cell's database only.
	cell2, cell3 := testenv.CellOwnerPool(t, 2), testenv.CellOwnerPool(t, 3)
	rows := func(p *pgxpool.Pool, id string) int {
		var n int
		require.NoError(t, rls.Tx(tenant.WithID(ctx, id), p, func(tx pgx.Tx) error {
			return tx.QueryRow(ctx, `SELECT (SELECT count(*) FROM tenant_settings WHERE tenant_id = $1) + (SELECT count(*) FROM tenant_members WHERE tenant_id = $1)`, id).Scan(&n)
		}))
		return n
	}
	require.Equal(t, 4, rows(cell2, onCell), "its settings and owner on its cell's PostgreSQL")
	require.Zero(t, rows(owner, onCell), "and not in the control plane's database")
	require.Zero(t, rows(cell3, onCell), "nor on another cell's")
	require.Equal(t, 4, rows(owner, onDefault))
	require.Zero(t, rows(cell2, onDefault))
	// Tenant B's context on cell-2 does not see tenant A's rows (the policy), and the
	// application role with no tenant set sees nothing at all.
	require.Zero(t, func() int {
		var n int
		require.NoError(t, rls.Tx(tenant.WithID(ctx, onDefault), testenv.CellAppPool(t, 2), func(tx pgx.Tx) error {
			return tx.QueryRow(ctx, `SELECT count(*) FROM tenant_settings WHERE tenant_id = $1`, onCell).Scan(&n)
		}))
		return n
	}())
	var bare int
	require.NoError(t, testenv.CellAppPool(t, 2).QueryRow(ctx, `SELECT count(*) FROM tenant_settings`).Scan(&bare))
	require.Zero(t, bare)
	// Through the routed store each reads its own setting back.
	got, err := pg.Setting(tenant.WithID(ctx, onCell), "branding.display_name")
	require.NoError(t, err)
	require.JSONEq(t, `"`+onCell+`"`, string(got.Value))
}
