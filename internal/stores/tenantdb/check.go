package tenantdb

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/misybot/tenancy/internal/stores/rls"
)

// PurgedTables lists the tenant tables Deprovision empties: every table of TenantTables but
// RetainedTables, as identifiers safe to splice into SQL. Reconciliation reads it once per page
// of tenants and passes it to TablesWithRows, so a tenant's check does not re-read the catalog.
func (s *Store) PurgedTables(ctx context.Context) ([]pgx.Identifier, error) {
	all, err := TenantTables(ctx, s.pool)
	if err != nil {
		return nil, fmt.Errorf("tenantdb: %w", err)
	}
	out := make([]pgx.Identifier, 0, len(all))
	for _, t := range all {
		if !RetainedTables[t.Sanitize()] {
			out = append(out, t)
		}
	}
	return out, nil
}

// TablesWithRows returns which of tables hold at least one row of the context tenant, in the
// order given. One transaction under row-level security and one statement (an EXISTS per
// table, each an index probe on the primary key's leading tenant_id), so its cost does not
// grow with the tenant's data nor with other tenants'.
func (s *Store) TablesWithRows(ctx context.Context, tables []pgx.Identifier) ([]string, error) {
	if len(tables) == 0 {
		return nil, nil
	}
	var out []string
	err := rls.Tx(ctx, s.pool, func(tx pgx.Tx) error {
		parts := make([]string, len(tables))
		for i, t := range tables {
			// The policy scopes the EXISTS to the tenant; tenant_id is not repeated so the probe
			// stays the policy's own index condition.
			parts[i] = fmt.Sprintf("SELECT %d, EXISTS (SELECT 1 FROM %s)", i, t.Sanitize())
		}
		rows, err := tx.Query(ctx, strings.Join(parts, " UNION ALL "))
		if err != nil {
			return err
		}
		var i int
		var present bool
		_, err = pgx.ForEachRow(rows, []any{&i, &present}, func() error {
			if present {
				out = append(out, tables[i].Sanitize())
			}
			return nil
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("tenantdb: tables with rows: %w", err)
	}
	// UNION ALL keeps no order: restore the catalog's.
	order := make(map[string]int, len(tables))
	for i, t := range tables {
		order[t.Sanitize()] = i
	}
	slices.SortFunc(out, func(a, b string) int { return order[a] - order[b] })
	return out, nil
}
