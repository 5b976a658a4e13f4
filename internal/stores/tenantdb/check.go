package tenantdb

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

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

// cellTables is TenantTables of a cell's pool, read again after a minute (a cell migration
// adds tables while processes run).
func (s *Store) cellTables(ctx context.Context, pool *pgxpool.Pool) ([]pgx.Identifier, error) {
	if c, ok := s.catalogs.Load(pool); ok && time.Since(c.(catalog).at) < time.Minute {
		return c.(catalog).tables, nil
	}
	tables, err := TenantTables(ctx, pool)
	if err != nil {
		return nil, err
	}
	s.catalogs.Store(pool, catalog{tables: tables, at: time.Now()})
	return tables, nil
}

// catalog is a cell's tenant tables and when they were read.
type catalog struct {
	tables []pgx.Identifier
	at     time.Time
}

// present keeps the tables of want that have is.
func present(want, have []pgx.Identifier) []pgx.Identifier {
	in := make(map[string]bool, len(have))
	for _, t := range have {
		in[t.Sanitize()] = true
	}
	var out []pgx.Identifier
	for _, t := range want {
		if in[t.Sanitize()] {
			out = append(out, t)
		}
	}
	return out
}

// TablesWithRows returns which of tables hold at least one row of the context tenant, in the
// order given. One transaction under row-level security and one statement (an EXISTS per
// table, each an index probe on the primary key's leading tenant_id), so its cost does not
// grow with the tenant's data nor with other tenants'.
func (s *Store) TablesWithRows(ctx context.Context, tables []pgx.Identifier) ([]string, error) {
	if len(tables) == 0 {
		return nil, nil
	}
	pool, err := s.poolFor(ctx)
	if err != nil {
		return nil, err
	}
	if pool != s.pool {
		// A cell's database holds fewer tenant tables than the list (read from the default
		// cell's, the control plane's): ask only for those it has.
		have, err := s.cellTables(ctx, pool)
		if err != nil {
			return nil, fmt.Errorf("tenantdb: %w", err)
		}
		if tables = present(tables, have); len(tables) == 0 {
			return nil, nil
		}
	}
	var out []string
	err = rls.Tx(ctx, pool, func(tx pgx.Tx) error {
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
