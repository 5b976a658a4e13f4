package rls_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/misybot/tenancy/internal/model/tenant"
	"github.com/misybot/tenancy/internal/stores/rls"
	"github.com/misybot/tenancy/internal/testkit/testenv"
)

type bundle struct {
	app, owner *pgxpool.Pool
	a, b       string
}

// setup registers two tenants and gives each three settings, written as the owner role
// (which is subject to FORCE ROW LEVEL SECURITY too, so it sets the tenant like anyone else).
func setup(t *testing.T) bundle {
	t.Helper()
	b := bundle{app: testenv.AppPool(t), owner: testenv.OwnerPool(t), a: testenv.TenantID("rls-a"), b: testenv.TenantID("rls-b")}
	ctx := context.Background()
	for _, id := range []string{b.a, b.b} {
		_, err := b.owner.Exec(ctx, `INSERT INTO tenants (tenant_id, site_id, tenant_name, contact_email, tenant_type, secret_ciphertext)
			VALUES ($1, 's', 'n', 'x@y.zz', 'trial', '\x01')`, id)
		require.NoError(t, err)
		err = rls.Tx(tenant.WithID(ctx, id), b.owner, func(tx pgx.Tx) error {
			for i := range 3 {
				if _, err := tx.Exec(ctx, `INSERT INTO tenant_settings (tenant_id, key, value) VALUES ($1, $2, '"v"')`, id, fmt.Sprintf("k%d", i)); err != nil {
					return err
				}
			}
			return nil
		})
		require.NoError(t, err)
	}
	return b
}

func pgCode(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

// countOwn counts a tenant's settings through its own tenant context.
func countOwn(t *testing.T, pool *pgxpool.Pool, id string) int {
	t.Helper()
	var n int
	require.NoError(t, rls.Tx(tenant.WithID(context.Background(), id), pool, func(tx pgx.Tx) error {
		return tx.QueryRow(context.Background(), `SELECT count(*) FROM tenant_settings`).Scan(&n)
	}))
	return n
}

// Hand-written SQL without any WHERE, with tenant A set, touches only A's rows.
func TestQueriesWithoutWhereSeeOnlyTheirTenant(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := tenant.WithID(context.Background(), b.a)

	err := rls.Tx(ctx, b.app, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT * FROM tenant_settings`)
		require.NoError(t, err)
		vals, err := pgx.CollectRows(rows, pgx.RowToMap)
		require.NoError(t, err)
		require.Len(t, vals, 3)
		for _, v := range vals {
			require.Equal(t, b.a, v["tenant_id"])
		}

		tag, err := tx.Exec(ctx, `UPDATE tenant_settings SET value = '"changed"'`)
		require.NoError(t, err)
		require.EqualValues(t, 3, tag.RowsAffected(), "UPDATE without WHERE touched only A's rows")

		tag, err = tx.Exec(ctx, `DELETE FROM tenant_settings`)
		require.NoError(t, err)
		require.EqualValues(t, 3, tag.RowsAffected(), "DELETE without WHERE touched only A's rows")

		// Even naming B explicitly finds nothing.
		var n int
		require.NoError(t, tx.QueryRow(ctx, `SELECT count(*) FROM tenant_settings WHERE tenant_id = $1`, b.b).Scan(&n))
		require.Zero(t, n)
		tag, err = tx.Exec(ctx, `UPDATE tenant_settings SET value = '"x"' WHERE tenant_id = $1`, b.b)
		require.NoError(t, err)
		require.Zero(t, tag.RowsAffected())
		return nil
	})
	require.NoError(t, err)
	require.Zero(t, countOwn(t, b.app, b.a))
	require.Equal(t, 3, countOwn(t, b.app, b.b), "B's rows survived A's UPDATE and DELETE")

	var unchanged int
	require.NoError(t, rls.Tx(tenant.WithID(context.Background(), b.b), b.app, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT count(*) FROM tenant_settings WHERE value = '"v"'`).Scan(&unchanged)
	}))
	require.Equal(t, 3, unchanged)
}

func TestInsertForAnotherTenantIsRejected(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := tenant.WithID(context.Background(), b.a)
	err := rls.Tx(ctx, b.app, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO tenant_settings (tenant_id, key, value) VALUES ($1, 'evil', '1')`, b.b)
		return err
	})
	require.Equal(t, "42501", pgCode(err), "new row violates row-level security policy: %v", err)

	// Nor can an UPDATE move A's row to B.
	err = rls.Tx(ctx, b.app, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `UPDATE tenant_settings SET tenant_id = $1`, b.b)
		return err
	})
	require.Equal(t, "42501", pgCode(err), "%v", err)
	require.Equal(t, 3, countOwn(t, b.app, b.b))
}

// Without a tenant: the helper refuses, and raw statements on the pool see zero rows and
// cannot write.
func TestNoTenantFailsClosed(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	called := false
	err := rls.Tx(ctx, b.app, func(pgx.Tx) error { called = true; return nil })
	require.ErrorIs(t, err, tenant.ErrNoTenant)
	require.False(t, called)
	require.ErrorIs(t, rls.Tx(tenant.WithID(ctx, "Not Valid*"), b.app, func(pgx.Tx) error { return nil }), tenant.ErrNoTenant)

	var n int
	require.NoError(t, b.app.QueryRow(ctx, `SELECT count(*) FROM tenant_settings`).Scan(&n))
	require.Zero(t, n)
	_, err = b.app.Exec(ctx, `INSERT INTO tenant_settings (tenant_id, key, value) VALUES ($1, 'x', '1')`, b.a)
	require.Equal(t, "42501", pgCode(err))
	tag, err := b.app.Exec(ctx, `DELETE FROM tenant_settings`)
	require.NoError(t, err)
	require.Zero(t, tag.RowsAffected())
}

// One pooled connection shared by goroutines alternating tenants A and B: no transaction ever
// sees the other tenant, and a statement run after a transaction carries no tenant at all.
func TestPooledConnectionNeverLeaksTenant(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cfg, err := pgxpool.ParseConfig(testenv.AppDatabaseURL)
	require.NoError(t, err)
	cfg.MaxConns = 1
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)

	const rounds = 200
	var wg sync.WaitGroup
	errs := make(chan error, 4*rounds)
	for _, id := range []string{b.a, b.b, b.a, b.b} {
		wg.Go(func() {
			ctx := tenant.WithID(context.Background(), id)
			for range rounds {
				err := rls.Tx(ctx, pool, func(tx pgx.Tx) error {
					rows, err := tx.Query(ctx, `SELECT tenant_id FROM tenant_settings`)
					if err != nil {
						return err
					}
					seen, err := pgx.CollectRows(rows, pgx.RowTo[string])
					if err != nil {
						return err
					}
					if len(seen) != 3 {
						return fmt.Errorf("tenant %s saw %d rows", id, len(seen))
					}
					for _, s := range seen {
						if s != id {
							return fmt.Errorf("tenant %s saw a row of %s", id, s)
						}
					}
					return nil
				})
				if err != nil {
					errs <- err
					return
				}
				// Straight after, outside any transaction: no tenant, no rows.
				var setting string
				var n int
				if err := pool.QueryRow(context.Background(), `SELECT coalesce(current_setting('app.tenant_id', true), ''), (SELECT count(*) FROM tenant_settings)`).Scan(&setting, &n); err != nil {
					errs <- err
					return
				}
				if setting != "" || n != 0 {
					errs <- fmt.Errorf("after a transaction of %s the connection carried %q and saw %d rows", id, setting, n)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}

// The application role cannot switch isolation off or become the owner, and cannot read the
// registry's sealed secrets except one at a time through its function.
func TestApplicationRoleCannotEscape(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()

	_, err := b.app.Exec(ctx, `ALTER TABLE tenant_settings DISABLE ROW LEVEL SECURITY`)
	require.Equal(t, "42501", pgCode(err), "must be owner: %v", err)
	_, err = b.app.Exec(ctx, `ALTER TABLE tenant_settings NO FORCE ROW LEVEL SECURITY`)
	require.Equal(t, "42501", pgCode(err), "%v", err)
	_, err = b.app.Exec(ctx, `DROP POLICY tenant_isolation ON tenant_settings`)
	require.Equal(t, "42501", pgCode(err), "%v", err)
	_, err = b.app.Exec(ctx, `SET ROLE tenancy_owner`)
	require.Equal(t, "42501", pgCode(err), "%v", err)
	_, err = b.app.Exec(ctx, `SET SESSION AUTHORIZATION tenancy_owner`)
	require.Equal(t, "42501", pgCode(err), "%v", err)

	_, err = b.app.Exec(ctx, `SELECT secret_ciphertext FROM tenants`)
	require.Equal(t, "42501", pgCode(err), "bulk read of sealed secrets: %v", err)
	_, err = b.app.Exec(ctx, `SELECT * FROM tenants`)
	require.Equal(t, "42501", pgCode(err), "SELECT * includes the secret column: %v", err)

	// The function answers only inside the tenant's own context: a bulk query over the
	// registry gets nothing, and one tenant's context does not open another's secret.
	var n int
	require.NoError(t, b.app.QueryRow(ctx, `SELECT count(s.*) FROM tenants t, tenant_sealed_secret(t.tenant_id) s`).Scan(&n))
	require.Zero(t, n, "bulk read without tenant context")
	require.NoError(t, b.app.QueryRow(ctx, `SELECT count(s.*) FROM tenants t, tenant_secrets(t.tenant_id) s`).Scan(&n))
	require.Zero(t, n)
	var sealed []byte
	require.NoError(t, rls.Tx(tenant.WithID(ctx, b.a), b.app, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM tenant_sealed_secret($1)`, b.b).Scan(&n); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `SELECT secret_ciphertext FROM tenant_sealed_secret($1)`, b.a).Scan(&sealed)
	}))
	require.Zero(t, n, "A's context does not open B's secret")
	require.Equal(t, []byte{1}, sealed)
}

func TestVerifyPassesForTheApplicationRole(t *testing.T) {
	t.Parallel()
	b := setup(t)
	require.NoError(t, rls.Verify(context.Background(), b.app))
}

// The owner role owns the tables, so the role check must refuse it.
func TestVerifyRefusesTheOwnerRole(t *testing.T) {
	t.Parallel()
	b := setup(t)
	err := rls.CheckRole(context.Background(), b.owner)
	require.ErrorContains(t, err, "owns table public.tenant_settings")
}

// A table with tenant_id added without RLS, in a scratch schema, is caught and named; so is one
// with RLS enabled but not forced, and one forced with a policy that ignores the tenant. The
// schema lives in a transaction that is rolled back, so no other test ever sees it.
func TestVerifyCatchesTablesWithoutIsolation(t *testing.T) {
	t.Parallel()
	owner := testenv.OwnerPool(t)
	ctx := context.Background()
	tx, err := owner.Begin(ctx)
	require.NoError(t, err)
	t.Cleanup(func() { _ = tx.Rollback(ctx) })

	require.NoError(t, rls.CheckTables(ctx, tx), "the migrated schema passes before the change")

	name := "scratch_" + testenv.TenantID("v")[2:]
	schema := pgx.Identifier{name}.Sanitize()
	for _, stmt := range []string{
		`CREATE SCHEMA ` + schema,
		`CREATE TABLE ` + schema + `.notes (tenant_id text NOT NULL, body text)`,
		`CREATE TABLE ` + schema + `.half (tenant_id text NOT NULL)`,
		`ALTER TABLE ` + schema + `.half ENABLE ROW LEVEL SECURITY`,
		`CREATE POLICY p ON ` + schema + `.half USING (tenant_id = (SELECT current_setting('app.tenant_id', true)))`,
		`CREATE TABLE ` + schema + `.open (tenant_id text NOT NULL)`,
		`ALTER TABLE ` + schema + `.open ENABLE ROW LEVEL SECURITY`,
		`ALTER TABLE ` + schema + `.open FORCE ROW LEVEL SECURITY`,
		`CREATE POLICY p ON ` + schema + `.open USING (true)`,
		// Isolated correctly, then widened by a second, permissive read policy.
		`CREATE TABLE ` + schema + `.widened (tenant_id text NOT NULL)`,
		`ALTER TABLE ` + schema + `.widened ENABLE ROW LEVEL SECURITY`,
		`ALTER TABLE ` + schema + `.widened FORCE ROW LEVEL SECURITY`,
		`CREATE POLICY tenant_isolation ON ` + schema + `.widened USING (tenant_id = (SELECT current_setting('app.tenant_id', true)))`,
		`CREATE POLICY peek ON ` + schema + `.widened FOR SELECT USING (true)`,
		// A look-alike condition on another setting does not count either.
		`CREATE TABLE ` + schema + `.lookalike (tenant_id text NOT NULL)`,
		`ALTER TABLE ` + schema + `.lookalike ENABLE ROW LEVEL SECURITY`,
		`ALTER TABLE ` + schema + `.lookalike FORCE ROW LEVEL SECURITY`,
		`CREATE POLICY p ON ` + schema + `.lookalike USING (tenant_id = current_setting('app.tenant_id_x', true) OR true)`,
	} {
		_, err := tx.Exec(ctx, stmt)
		require.NoError(t, err, stmt)
	}
	err = rls.CheckTables(ctx, tx)
	require.Error(t, err)
	msg := err.Error()
	require.Contains(t, msg, "table "+name+".notes has tenant_id but row level security is not enabled")
	require.Contains(t, msg, "table "+name+".notes has tenant_id but no policy")
	require.Contains(t, msg, "table "+name+".half has tenant_id but row level security is not forced")
	require.NotContains(t, msg, "table "+name+".half has tenant_id but no policy")
	require.Contains(t, msg, "table "+name+".open has tenant_id but no policy")
	require.Contains(t, msg, "table "+name+".widened has a permissive policy peek that is not the tenant condition")
	require.NotContains(t, msg, "table "+name+".widened has tenant_id but no policy", "its isolation policy is there")
	require.Contains(t, msg, "table "+name+".lookalike has a permissive policy p that is not the tenant condition")
	require.NotContains(t, msg, "public.tenants", "the registry is exempt by its schema comment")
	require.NotContains(t, msg, "public.tenant_settings", "the migrated tables pass")
}

// The policy's sub-select is an InitPlan the planner can use as an index condition on
// tenant_id (seq scans are switched off only because the test table is tiny).
func TestPolicyUsesTheTenantIndex(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := tenant.WithID(context.Background(), b.a)
	var plan []string
	require.NoError(t, rls.Tx(ctx, b.app, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL enable_seqscan = off`); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `EXPLAIN SELECT * FROM tenant_settings WHERE key = 'k1'`)
		if err != nil {
			return err
		}
		plan, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	}))
	require.Regexp(t, `Index Cond: \(\(tenant_id = (\$\d+|\(InitPlan \d+\)\.col\d+)\) AND \(key = 'k1'::text\)\)`, strings.Join(plan, "\n"))
}

// A SECURITY DEFINER function must fix its search_path and end it with pg_temp; the migrated
// ones do, and one added without it is named.
func TestVerifyCatchesDefinerFunctionsWithoutPgTemp(t *testing.T) {
	t.Parallel()
	owner := testenv.OwnerPool(t)
	ctx := context.Background()
	tx, err := owner.Begin(ctx)
	require.NoError(t, err)
	t.Cleanup(func() { _ = tx.Rollback(ctx) })
	require.NoError(t, rls.CheckDefinerFunctions(ctx, tx), "the migrated functions pass")

	name := "scratch_" + testenv.TenantID("f")[2:]
	schema := pgx.Identifier{name}.Sanitize()
	for _, stmt := range []string{
		`CREATE SCHEMA ` + schema,
		`CREATE FUNCTION ` + schema + `.loose() RETURNS int LANGUAGE sql SECURITY DEFINER AS 'SELECT 1'`,
		`CREATE FUNCTION ` + schema + `.half() RETURNS int LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, public AS 'SELECT 1'`,
		`CREATE FUNCTION ` + schema + `.fine() RETURNS int LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS 'SELECT 1'`,
	} {
		_, err := tx.Exec(ctx, stmt)
		require.NoError(t, err, stmt)
	}
	err = rls.CheckDefinerFunctions(ctx, tx)
	require.Error(t, err)
	require.Contains(t, err.Error(), name+".loose()")
	require.Contains(t, err.Error(), name+".half()")
	require.NotContains(t, err.Error(), name+".fine()")
}

// ReadRow, the one-round-trip read: it sees only its tenant's rows (B's row, named by key,
// stays invisible to A), and its tenant setting ends with it: on a pool of one connection, the
// very next statement outside any transaction sees no tenant and no row, many times over, with
// both tenants taking turns.
func TestReadRowSeesOnlyItsTenantAndLeavesNothingBehind(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cfg, err := pgxpool.ParseConfig(testenv.AppDatabaseURL)
	require.NoError(t, err)
	cfg.MaxConns = 1
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	ctxA := tenant.WithID(context.Background(), b.a)

	var owner string
	require.NoError(t, rls.ReadRow(ctxA, pool, `SELECT tenant_id FROM tenant_settings WHERE key = $1`, []any{"k1"}, &owner))
	require.Equal(t, b.a, owner)
	err = rls.ReadRow(ctxA, pool, `SELECT tenant_id FROM tenant_settings WHERE tenant_id = $1`, []any{b.b}, &owner)
	require.ErrorIs(t, err, pgx.ErrNoRows, "A cannot read B's row even by naming it")
	var n int
	require.NoError(t, rls.ReadRow(ctxA, pool, `SELECT count(*) FROM tenant_settings`, nil, &n))
	require.Equal(t, 3, n)
	require.ErrorIs(t, rls.ReadRow(context.Background(), pool, `SELECT 1`, nil, &n), tenant.ErrNoTenant)

	for i := range 100 {
		id := []string{b.a, b.b}[i%2]
		var seen string
		require.NoError(t, rls.ReadRow(tenant.WithID(context.Background(), id), pool, `SELECT min(tenant_id) FROM tenant_settings`, nil, &seen))
		require.Equal(t, id, seen)
		var setting string
		require.NoError(t, pool.QueryRow(context.Background(), `SELECT coalesce(current_setting('app.tenant_id', true), ''), (SELECT count(*) FROM tenant_settings)`).Scan(&setting, &n))
		require.Empty(t, setting, "the setting ended with the read")
		require.Zero(t, n)
	}
}
