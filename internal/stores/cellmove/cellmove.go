// Package cellmove brings forward the PostgreSQL rows of tenants placed on a cell before cells
// had a PostgreSQL of their own: until then a cell held its tenants' MongoDB databases and Redis
// keys only, and their rows stayed in the control plane's database, where no tenant path looks
// for them any more. Move copies each such tenant's rows into its cell and then deletes them from
// the control plane, so an upgrade loses nothing.
package cellmove

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/misybot/tenancy/internal/model/tenant"
	"github.com/misybot/tenancy/internal/stores/rls"
)

// Tables are the tenant tables a cell keeps (cell migration 00001), with the columns copied
// (value_bytes is generated: the cell computes its own).
var Tables = []struct{ Name, Columns string }{
	{"tenant_settings", "tenant_id, key, value, updated_at"},
	{"tenant_members", "tenant_id, user_id, role, created_at"},
	{"tenant_api_keys", "tenant_id, key_id, key_hash, permissions, expires_at, created_at"},
	{"tenant_usage", "tenant_id, conversations, document_bytes, updated_at"},
}

// Move brings the rows of every tenant placed on cell from control (the control plane's
// database, as its owner) into cellDB (the cell's, as its owner or application role), and
// returns the rows moved per table. Idempotent by construction: each tenant's rows are copied
// with INSERT … ON CONFLICT DO NOTHING in one cell transaction, and deleted from the control
// plane only after that commits; a run stopped between the two copies nothing new the next
// time and finishes the delete. A row the cell has already (written there since) wins over the
// old copy.
func Move(ctx context.Context, control, cellDB *pgxpool.Pool, cell string) (map[string]int64, error) {
	rows, err := control.Query(ctx, `SELECT tenant_id FROM tenants WHERE cell_id = $1 ORDER BY tenant_id`, cell)
	if err != nil {
		return nil, fmt.Errorf("cellmove: tenants of %s: %w", cell, err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("cellmove: tenants of %s: %w", cell, err)
	}
	moved := map[string]int64{}
	for _, id := range ids {
		if err := moveTenant(tenant.WithID(ctx, id), control, cellDB, moved); err != nil {
			return moved, fmt.Errorf("cellmove: tenant %s of cell %s: %w", id, cell, err)
		}
	}
	return moved, nil
}

func moveTenant(ctx context.Context, control, cellDB *pgxpool.Pool, moved map[string]int64) error {
	batches := make([]string, len(Tables))
	found := false
	err := rls.Tx(ctx, control, func(tx pgx.Tx) error {
		for i, t := range Tables {
			// Under the tenant's context: row-level security scopes the read to it.
			err := tx.QueryRow(ctx, `SELECT coalesce(json_agg(r), '[]')::text FROM (SELECT `+t.Columns+` FROM `+t.Name+`) r`).Scan(&batches[i])
			if err != nil {
				return fmt.Errorf("read %s: %w", t.Name, err)
			}
			found = found || batches[i] != "[]"
		}
		return nil
	})
	if err != nil || !found {
		return err
	}
	err = rls.Tx(ctx, cellDB, func(tx pgx.Tx) error {
		for i, t := range Tables {
			if batches[i] == "[]" {
				continue
			}
			if _, err := tx.Exec(ctx, `INSERT INTO `+t.Name+` (`+t.Columns+`) SELECT `+t.Columns+
				` FROM json_populate_recordset(NULL::`+t.Name+`, $1::json) ON CONFLICT DO NOTHING`, batches[i]); err != nil {
				return fmt.Errorf("copy %s: %w", t.Name, err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return rls.Tx(ctx, control, func(tx pgx.Tx) error {
		for i, t := range Tables {
			if batches[i] == "[]" {
				continue
			}
			tag, err := tx.Exec(ctx, `DELETE FROM `+t.Name)
			if err != nil {
				return fmt.Errorf("delete %s: %w", t.Name, err)
			}
			moved[t.Name] += tag.RowsAffected()
		}
		return nil
	})
}
