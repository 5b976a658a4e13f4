package tenantdb_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/misybot/tenancy/internal/model/limits"
	"github.com/misybot/tenancy/internal/model/tenant"
	"github.com/misybot/tenancy/internal/stores/rls"
	"github.com/misybot/tenancy/internal/stores/tenantdb"
	"github.com/misybot/tenancy/internal/testkit/testenv"
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
	_, err = store.PutSetting(ctx, "locale", json.RawMessage(`"fr"`), limits.Default())
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

	_, err := store.PutSetting(ctxA, "theme", json.RawMessage(`{"dark":true}`), limits.Default())
	require.NoError(t, err)
	_, err = store.Setting(ctxB, "theme")
	require.ErrorIs(t, err, tenantdb.ErrNotFound, "B cannot read A's key")
	require.ErrorIs(t, store.DeleteSetting(ctxB, "theme"), tenantdb.ErrNotFound, "B cannot delete A's key")
	got, err := store.Setting(ctxA, "theme")
	require.NoError(t, err)
	require.JSONEq(t, `{"dark":true}`, string(got.Value))
	list, next, err := store.Settings(ctxB, "", 10)
	require.NoError(t, err)
	require.Empty(t, list)
	require.Empty(t, next)
	require.NoError(t, store.DeleteSetting(ctxA, "theme"))
	require.ErrorIs(t, store.DeleteSetting(ctxA, "theme"), tenantdb.ErrNotFound)
}

// small bounds, so that a test can fill a tenant.
func smallBounds() limits.Tenant {
	b := limits.Default()
	b.MaxSettings, b.MaxSettingBytes, b.MaxSettingsBytes = 5, 64, 200
	b.MaxConversations, b.MaxDocumentBytes = 3, 100
	return b
}

func TestPutSettingHoldsEveryBoundAndWritesNothingPastIt(t *testing.T) {
	owner := testenv.OwnerPool(t)
	store := tenantdb.New(testenv.AppPool(t))
	a, b := register(t, owner, "bnda"), register(t, owner, "bndb")
	ctxA, ctxB := tenant.WithID(context.Background(), a), tenant.WithID(context.Background(), b)
	bounds := smallBounds()

	var exceeded *limits.Exceeded
	_, err := store.PutSetting(ctxA, "big", json.RawMessage(`"`+strings.Repeat("x", 70)+`"`), bounds)
	require.ErrorAs(t, err, &exceeded)
	require.Equal(t, limits.BoundSettingBytes, exceeded.Bound)
	require.True(t, exceeded.TooLarge)
	// 1e50 is sent in 4 bytes and stored as 51: the stored form is what counts.
	_, err = store.PutSetting(ctxA, "num", json.RawMessage(`[1e50,1e50]`), bounds)
	require.ErrorAs(t, err, &exceeded)
	require.Equal(t, limits.BoundSettingBytes, exceeded.Bound)

	// Five keys fit at once, twenty writers racing for them: exactly five are written.
	var wg sync.WaitGroup
	var ok atomic.Int32
	for i := range 20 {
		wg.Go(func() {
			if _, err := store.PutSetting(ctxA, fmt.Sprintf("k%02d", i), json.RawMessage(`1`), bounds); err == nil {
				ok.Add(1)
			} else {
				assert.ErrorIs(t, err, limits.ErrExceeded)
			}
		})
	}
	wg.Wait()
	require.EqualValues(t, 5, ok.Load())
	require.Equal(t, 5, rowsOf(t, owner, a)["tenant_settings"])
	// Replacing a key takes no slot; tenant B's slots are its own.
	list, _, err := store.Settings(ctxA, "", 10)
	require.NoError(t, err)
	_, err = store.PutSetting(ctxA, list[0].Key, json.RawMessage(`"replaced"`), bounds)
	require.NoError(t, err)
	_, err = store.PutSetting(ctxA, "k99", json.RawMessage(`1`), bounds)
	require.ErrorIs(t, err, limits.ErrExceeded, "a sixth key does not")
	_, err = store.PutSetting(ctxB, "k99", json.RawMessage(`1`), bounds)
	require.NoError(t, err)

	// The total: 3 values of 60 bytes fit 200, a fourth does not, and is not written.
	c, d := register(t, owner, "bndc"), register(t, owner, "bndd")
	ctxC := tenant.WithID(context.Background(), c)
	v := json.RawMessage(`"` + strings.Repeat("y", 58) + `"`)
	for _, k := range []string{"a", "b", "c"} {
		_, err := store.PutSetting(ctxC, k, v, bounds)
		require.NoError(t, err)
	}
	_, err = store.PutSetting(ctxC, "d", v, bounds)
	require.ErrorAs(t, err, &exceeded)
	require.Equal(t, limits.BoundSettingsBytes, exceeded.Bound)
	require.Equal(t, 3, rowsOf(t, owner, c)["tenant_settings"])
	require.Zero(t, rowsOf(t, owner, d)["tenant_settings"])
}

func TestSettingsPagesByKey(t *testing.T) {
	owner := testenv.OwnerPool(t)
	store := tenantdb.New(testenv.AppPool(t))
	ctx := tenant.WithID(context.Background(), register(t, owner, "page"))
	for i := range 7 {
		_, err := store.PutSetting(ctx, fmt.Sprintf("p%d", i), json.RawMessage(`1`), limits.Default())
		require.NoError(t, err)
	}
	var keys []string
	after, pages := "", 0
	for {
		items, next, err := store.Settings(ctx, after, 3)
		require.NoError(t, err)
		require.LessOrEqual(t, len(items), 3)
		for _, it := range items {
			keys = append(keys, it.Key)
		}
		pages++
		if next == "" {
			break
		}
		after = next
	}
	require.Equal(t, []string{"p0", "p1", "p2", "p3", "p4", "p5", "p6"}, keys)
	require.Equal(t, 3, pages)
}

func TestReserveDocumentsIsExactUnderRacesAndPerTenant(t *testing.T) {
	owner := testenv.OwnerPool(t)
	store := tenantdb.New(testenv.AppPool(t))
	a, b := register(t, owner, "usea"), register(t, owner, "useb")
	ctxA, ctxB := tenant.WithID(context.Background(), a), tenant.WithID(context.Background(), b)
	bounds := smallBounds()

	var wg sync.WaitGroup
	var ok atomic.Int32
	for range 30 {
		wg.Go(func() {
			if store.ReserveDocuments(ctxA, 1, 10, bounds) == nil {
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	require.EqualValues(t, 3, ok.Load(), "three conversations fit")
	convs, bytes, err := store.Usage(ctxA)
	require.NoError(t, err)
	require.Equal(t, 3, convs)
	require.EqualValues(t, 30, bytes)

	var exceeded *limits.Exceeded
	require.ErrorAs(t, store.ReserveDocuments(ctxA, 0, 71, bounds), &exceeded)
	require.Equal(t, limits.BoundDocumentBytes, exceeded.Bound)
	require.NoError(t, store.ReserveDocuments(ctxA, 0, 70, bounds), "exactly up to the bound")
	require.NoError(t, store.ReleaseDocuments(ctxA, 1, 50))
	convs, bytes, err = store.Usage(ctxA)
	require.NoError(t, err)
	require.Equal(t, 2, convs)
	require.EqualValues(t, 50, bytes)

	convs, bytes, err = store.Usage(ctxB)
	require.NoError(t, err)
	require.Zero(t, convs, "B's usage is its own")
	require.Zero(t, bytes)
	require.NoError(t, store.ReserveDocuments(ctxB, 3, 100, bounds))
}
