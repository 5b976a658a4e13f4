package rls_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/misybot/tenancy/internal/model/tenant"
	"github.com/misybot/tenancy/internal/stores/rls"
	"github.com/misybot/tenancy/internal/testkit/testenv"
)

const (
	benchTenants = 1000
	benchRows    = 1000
)

// benchTables builds, once per database, two identical tables of 1,000 tenants × 1,000 rows:
// bench.items_rls under forced row-level security, and bench.items_plain without it (marked
// exempt: it is the baseline). Both are loaded before RLS is switched on, then analysed.
func benchTables(b *testing.B) {
	b.Helper()
	ctx := context.Background()
	owner := testenv.OwnerPool(b)
	conn, err := owner.Acquire(ctx)
	require.NoError(b, err)
	defer conn.Release()
	_, err = conn.Exec(ctx, `SELECT pg_advisory_lock(hashtext('misybot-bench-tables'))`)
	require.NoError(b, err)
	defer conn.Exec(ctx, `SELECT pg_advisory_unlock(hashtext('misybot-bench-tables'))`) //nolint:errcheck

	var ready bool
	require.NoError(b, conn.QueryRow(ctx, `SELECT coalesce(obj_description(to_regclass('bench.items_rls'), 'pg_class') = 'loaded', false)`).Scan(&ready))
	if ready {
		return
	}
	stmts := []string{`DROP SCHEMA IF EXISTS bench CASCADE`, `CREATE SCHEMA bench`, `GRANT USAGE ON SCHEMA bench TO tenancy_app`}
	for _, table := range []string{"items_rls", "items_plain"} {
		stmts = append(stmts,
			`CREATE TABLE bench.`+table+` (tenant_id text NOT NULL, id bigint NOT NULL, payload text NOT NULL, PRIMARY KEY (tenant_id, id))`,
			fmt.Sprintf(`INSERT INTO bench.%s SELECT 'bench-t' || lpad(t::text, 4, '0'), r, md5(t::text || ':' || r::text)
				FROM generate_series(1, %d) t, generate_series(1, %d) r`, table, benchTenants, benchRows),
			`ANALYZE bench.`+table,
			`GRANT SELECT, INSERT, UPDATE, DELETE ON bench.`+table+` TO tenancy_app`,
		)
	}
	stmts = append(stmts,
		`ALTER TABLE bench.items_rls ENABLE ROW LEVEL SECURITY`,
		`ALTER TABLE bench.items_rls FORCE ROW LEVEL SECURITY`,
		`CREATE POLICY tenant_isolation ON bench.items_rls
			USING (tenant_id = (SELECT current_setting('app.tenant_id', true)))
			WITH CHECK (tenant_id = (SELECT current_setting('app.tenant_id', true)))`,
		`COMMENT ON TABLE bench.items_plain IS 'rls:exempt benchmark baseline without row level security'`,
		`COMMENT ON TABLE bench.items_rls IS 'loaded'`,
	)
	for _, s := range stmts {
		_, err := conn.Exec(ctx, s)
		require.NoError(b, err, s)
	}
}

func benchTenant(i int) string { return fmt.Sprintf("bench-t%04d", i%benchTenants+1) }

// BenchmarkRLS compares a tenant-scoped point lookup and a 100-row page under row-level
// security with the same queries filtered by an explicit WHERE tenant_id on an identical table
// without RLS. "tx" variants run inside the same rls.Tx wrapper, so their ratio is the cost of
// the policy alone; "bare" is the explicit query straight on the pool, so rls-tx/bare is the
// whole cost of per-transaction tenant context (BEGIN, set_config, COMMIT).
func BenchmarkRLS(b *testing.B) {
	benchTables(b)
	pool := testenv.AppPool(b)
	ctx := context.Background()

	plan := func(sql string, args ...any) string {
		var lines []string
		require.NoError(b, rls.Tx(tenant.WithID(ctx, benchTenant(0)), pool, func(tx pgx.Tx) error {
			rows, err := tx.Query(ctx, "EXPLAIN "+sql, args...)
			if err != nil {
				return err
			}
			lines, err = pgx.CollectRows(rows, pgx.RowTo[string])
			return err
		}))
		return strings.Join(lines, "\n")
	}
	p := plan(`SELECT payload FROM bench.items_rls ORDER BY id LIMIT 100`)
	// PostgreSQL 15 prints the InitPlan's output as $0, 17+ as (InitPlan 1).col1.
	require.Regexp(b, `Index Cond: \(tenant_id = (\$\d+|\(InitPlan \d+\)\.col\d+)\)`, p)
	b.Logf("plan of the RLS page:\n%s", p)

	run := func(b *testing.B, scoped bool, query func(q querier, tenantID string, i int) error) {
		i := 0
		for b.Loop() {
			id := benchTenant(i)
			var err error
			if scoped {
				err = rls.Tx(tenant.WithID(ctx, id), pool, func(tx pgx.Tx) error { return query(tx, id, i) })
			} else {
				err = query(pool, id, i)
			}
			if err != nil {
				b.Fatal(err)
			}
			i++
		}
	}
	point := func(table string, explicit bool) func(q querier, tenantID string, i int) error {
		return func(q querier, tenantID string, i int) error {
			var payload string
			id := i%benchRows + 1
			if explicit {
				return q.QueryRow(ctx, `SELECT payload FROM bench.`+table+` WHERE tenant_id = $1 AND id = $2`, tenantID, id).Scan(&payload)
			}
			return q.QueryRow(ctx, `SELECT payload FROM bench.`+table+` WHERE id = $1`, id).Scan(&payload)
		}
	}
	page := func(table string, explicit bool) func(q querier, tenantID string, i int) error {
		return func(q querier, tenantID string, i int) error {
			after := (i * 100) % (benchRows - 100)
			var rows pgx.Rows
			var err error
			if explicit {
				rows, err = q.Query(ctx, `SELECT id, payload FROM bench.`+table+` WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT 100`, tenantID, after)
			} else {
				rows, err = q.Query(ctx, `SELECT id, payload FROM bench.`+table+` WHERE id > $1 ORDER BY id LIMIT 100`, after)
			}
			if err != nil {
				return err
			}
			n := 0
			for rows.Next() {
				n++
			}
			if n != 100 {
				return fmt.Errorf("page had %d rows", n)
			}
			return rows.Err()
		}
	}

	b.Run("point/rls-tx", func(b *testing.B) { run(b, true, point("items_rls", false)) })
	b.Run("point/explicit-tx", func(b *testing.B) { run(b, true, point("items_plain", true)) })
	b.Run("point/explicit-bare", func(b *testing.B) { run(b, false, point("items_plain", true)) })
	b.Run("page100/rls-tx", func(b *testing.B) { run(b, true, page("items_rls", false)) })
	b.Run("page100/explicit-tx", func(b *testing.B) { run(b, true, page("items_plain", true)) })
	b.Run("page100/explicit-bare", func(b *testing.B) { run(b, false, page("items_plain", true)) })
}

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

var _ querier = (*pgxpool.Pool)(nil)
