package cellmove_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/misybot/tenancy/internal/model/tenant"
	"github.com/misybot/tenancy/internal/stores/cellmove"
	"github.com/misybot/tenancy/internal/stores/rls"
	"github.com/misybot/tenancy/internal/testkit/testenv"
)

// A tenant placed on a cell before cells had PostgreSQL has its rows in the control plane's
// database: Move puts them in the cell's and takes them out of the control plane's; a second
// run moves nothing and loses nothing; a row the cell has already wins; a tenant of another
// cell is not touched.
func TestMoveBringsOldRowsIntoTheCell(t *testing.T) {
	ctx := context.Background()
	control, cellDB := testenv.OwnerPool(t), testenv.CellOwnerPool(t, 2)
	cell := "t-" + testenv.TenantID("m")[2:10]
	_, err := control.Exec(ctx, `INSERT INTO cells (cell_id, capacity, state, stores_sealed) VALUES ($1, 5, 'closed', '\x01')`, cell)
	require.NoError(t, err)
	mine, other := testenv.TenantID("mv"), testenv.TenantID("mvo")
	for _, id := range []string{mine, other} {
		_, err := control.Exec(ctx, `INSERT INTO tenants (tenant_id, site_id, tenant_name, contact_email, tenant_type, secret_ciphertext, status, cell_id)
			VALUES ($1, 's', 'n', 'x@y.zz', 'trial', '\x01', 'active', $2)`, id, map[string]string{mine: cell, other: "default"}[id])
		require.NoError(t, err)
		exec(t, control, id, `INSERT INTO tenant_settings (tenant_id, key, value) VALUES ($1, 'locale', '"de"'), ($1, 'theme', '"dark"')`)
		exec(t, control, id, `INSERT INTO tenant_members (tenant_id, user_id, role) VALUES ($1, 'o@x.zz', 'owner')`)
		exec(t, control, id, `INSERT INTO tenant_api_keys (tenant_id, key_id, key_hash, permissions) VALUES ($1, 'k1', '\xdeadbeef', '{read,write}')`)
	}
	// Written on the cell since the placement: kept over the old copy.
	exec(t, cellDB, mine, `INSERT INTO tenant_settings (tenant_id, key, value) VALUES ($1, 'theme', '"light"')`)
	t.Cleanup(func() {
		for _, p := range []*pgxpool.Pool{control, cellDB} {
			for _, id := range []string{mine, other} {
				_ = rls.Tx(tenant.WithID(context.Background(), id), p, func(tx pgx.Tx) error {
					for _, tb := range cellmove.Tables {
						_, _ = tx.Exec(context.Background(), `DELETE FROM `+tb.Name)
					}
					return nil
				})
			}
		}
		_, _ = control.Exec(context.Background(), `DELETE FROM tenants WHERE tenant_id = ANY($1)`, []string{mine, other})
		_, _ = control.Exec(context.Background(), `DELETE FROM cells WHERE cell_id = $1`, cell)
	})

	moved, err := cellmove.Move(ctx, control, cellDB, cell)
	require.NoError(t, err)
	require.Equal(t, map[string]int64{"tenant_settings": 2, "tenant_members": 1, "tenant_api_keys": 1}, moved)
	require.Equal(t, []string{`locale="de"`, `theme="light"`}, settings(t, cellDB, mine))
	require.Empty(t, settings(t, control, mine), "taken out of the control plane")
	var perms []string
	var hash []byte
	require.NoError(t, rls.Tx(tenant.WithID(ctx, mine), cellDB, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT permissions, key_hash FROM tenant_api_keys`).Scan(&perms, &hash)
	}))
	require.Equal(t, []string{"read", "write"}, perms)
	require.Equal(t, []byte{0xde, 0xad, 0xbe, 0xef}, hash)
	require.Len(t, settings(t, control, other), 2, "another cell's tenant stays")
	require.Empty(t, settings(t, cellDB, other))

	again, err := cellmove.Move(ctx, control, cellDB, cell)
	require.NoError(t, err)
	require.Empty(t, again)
	require.Equal(t, []string{`locale="de"`, `theme="light"`}, settings(t, cellDB, mine))
}

func exec(t *testing.T, p *pgxpool.Pool, id, sql string) {
	t.Helper()
	require.NoError(t, rls.Tx(tenant.WithID(context.Background(), id), p, func(tx pgx.Tx) error {
		_, err := tx.Exec(context.Background(), sql, id)
		return err
	}))
}

func settings(t *testing.T, p *pgxpool.Pool, id string) []string {
	t.Helper()
	var out []string
	require.NoError(t, rls.Tx(tenant.WithID(context.Background(), id), p, func(tx pgx.Tx) error {
		rows, err := tx.Query(context.Background(), `SELECT key || '=' || value::text FROM tenant_settings ORDER BY key`)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	}))
	return out
}
