package tenantdb_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/misybot/tenancy/internal/rls"
	"github.com/misybot/tenancy/internal/tenant"
	"github.com/misybot/tenancy/internal/tenantdb"
	"github.com/misybot/tenancy/internal/testenv"
)

func register(t *testing.T, owner *pgxpool.Pool, prefix string) string {
	t.Helper()
	id := testenv.TenantID(prefix)
	_, err := owner.Exec(context.Background(), `INSERT INTO tenants (tenant_id, site_id, tenant_name, contact_email, tenant_type, secret_ciphertext)
		VALUES ($1, 's', 'n', 'x@y.zz', 'trial', '\x01')`, id)
	require.NoError(t, err)
	return id
}

// rowsOf counts a tenant's rows in every tenant table, as the owner (inside its context).
func rowsOf(t *testing.T, owner *pgxpool.Pool, id string) map[string]int {
	t.Helper()
	ctx := tenant.WithID(context.Background(), id)
	out := map[string]int{}
	require.NoError(t, rls.Tx(ctx, owner, func(tx pgx.Tx) error {
		for _, table := range []string{"tenant_settings", "tenant_members", "tenant_api_keys"} {
			var n int
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM `+table+` WHERE tenant_id = $1`, id).Scan(&n); err != nil {
				return err
			}
			out[table] = n
		}
		return nil
	}))
	return out
}

func TestProvisionIsIdempotent(t *testing.T) {
	t.Parallel()
	owner := testenv.OwnerPool(t)
	store := tenantdb.New(testenv.AppPool(t))
	id := register(t, owner, "prov")
	ctx := tenant.WithID(context.Background(), id)
	in := tenantdb.ProvisionInput{DisplayName: "Acme", OwnerUserID: "ops@acme.test"}

	rep, err := store.Provision(ctx, in)
	require.NoError(t, err)
	require.Equal(t, tenantdb.ProvisionReport{SettingsCreated: 3, MembersCreated: 1}, rep)
	first := rowsOf(t, owner, id)

	// The tenant changes a default; provisioning again creates nothing and keeps the change.
	_, err = store.PutSetting(ctx, "locale", json.RawMessage(`"fr"`))
	require.NoError(t, err)
	rep, err = store.Provision(ctx, in)
	require.NoError(t, err)
	require.Equal(t, tenantdb.ProvisionReport{}, rep)
	require.Equal(t, first, rowsOf(t, owner, id))
	s, err := store.Setting(ctx, "locale")
	require.NoError(t, err)
	require.JSONEq(t, `"fr"`, string(s.Value))

	_, err = store.Provision(context.Background(), in)
	require.ErrorIs(t, err, tenant.ErrNoTenant)
}

// Deprovisioning A removes A's rows from every tenant table and leaves B's alone; running it
// again succeeds and deletes nothing.
func TestDeprovisionPurgesOnlyItsTenant(t *testing.T) {
	t.Parallel()
	owner := testenv.OwnerPool(t)
	store := tenantdb.New(testenv.AppPool(t))
	a, b := register(t, owner, "depa"), register(t, owner, "depb")
	for _, id := range []string{a, b} {
		ctx := tenant.WithID(context.Background(), id)
		_, err := store.Provision(ctx, tenantdb.ProvisionInput{DisplayName: id, OwnerUserID: "u1"})
		require.NoError(t, err)
		require.NoError(t, rls.Tx(ctx, owner, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `INSERT INTO tenant_api_keys (tenant_id, key_id, key_hash) VALUES ($1, 'k1', '\x00')`, id)
			return err
		}))
	}
	bBefore := rowsOf(t, owner, b)

	deleted, err := store.Deprovision(tenant.WithID(context.Background(), a))
	require.NoError(t, err)
	require.EqualValues(t, 1, deleted[`"public"."tenant_api_keys"`])
	require.EqualValues(t, 1, deleted[`"public"."tenant_members"`])
	require.EqualValues(t, 3, deleted[`"public"."tenant_settings"`])
	require.Equal(t, map[string]int{"tenant_settings": 0, "tenant_members": 0, "tenant_api_keys": 0}, rowsOf(t, owner, a))
	require.Equal(t, bBefore, rowsOf(t, owner, b))

	deleted, err = store.Deprovision(tenant.WithID(context.Background(), a))
	require.NoError(t, err)
	for table, n := range deleted {
		require.Zero(t, n, table)
	}
}

// The purge list comes from the catalog: a tenant table created after the fact is on it.
func TestTenantTablesComeFromTheCatalog(t *testing.T) {
	t.Parallel()
	owner := testenv.OwnerPool(t)
	ctx := context.Background()
	tx, err := owner.Begin(ctx)
	require.NoError(t, err)
	t.Cleanup(func() { _ = tx.Rollback(ctx) })
	for _, stmt := range []string{
		`CREATE TABLE public.tenant_late_addition (tenant_id text NOT NULL)`,
		`ALTER TABLE public.tenant_late_addition ENABLE ROW LEVEL SECURITY`,
		`ALTER TABLE public.tenant_late_addition FORCE ROW LEVEL SECURITY`,
	} {
		_, err := tx.Exec(ctx, stmt)
		require.NoError(t, err)
	}
	tables, err := tenantdb.TenantTables(ctx, tx)
	require.NoError(t, err)
	var names []string
	for _, t := range tables {
		names = append(names, t.Sanitize())
	}
	require.Contains(t, names, `"public"."tenant_late_addition"`)
	require.Contains(t, names, `"public"."tenant_settings"`)
	require.NotContains(t, names, `"public"."tenants"`, "the registry is never purged by a tenant's deprovisioning")
}

func TestSettingsCRUDStaysInTenant(t *testing.T) {
	t.Parallel()
	owner := testenv.OwnerPool(t)
	store := tenantdb.New(testenv.AppPool(t))
	a, b := register(t, owner, "seta"), register(t, owner, "setb")
	ctxA, ctxB := tenant.WithID(context.Background(), a), tenant.WithID(context.Background(), b)

	_, err := store.PutSetting(ctxA, "theme", json.RawMessage(`{"dark":true}`))
	require.NoError(t, err)
	_, err = store.Setting(ctxB, "theme")
	require.ErrorIs(t, err, tenantdb.ErrNotFound, "B cannot read A's key")
	require.ErrorIs(t, store.DeleteSetting(ctxB, "theme"), tenantdb.ErrNotFound, "B cannot delete A's key")
	got, err := store.Setting(ctxA, "theme")
	require.NoError(t, err)
	require.JSONEq(t, `{"dark":true}`, string(got.Value))
	list, err := store.Settings(ctxB)
	require.NoError(t, err)
	require.Empty(t, list)
	require.NoError(t, store.DeleteSetting(ctxA, "theme"))
	require.ErrorIs(t, store.DeleteSetting(ctxA, "theme"), tenantdb.ErrNotFound)
}
