package registry

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/misybot/tenancy/internal/model/tenant"
)

// ListPrefix returns up to limit tenants of any status whose id starts with prefix ("" : all),
// ordered by id after after (keyset pagination), and whether more follow. Reconciliation pages
// through the whole registry with it; prefix scopes a run to some tenants (tests, a partial
// check). The prefix holds only id characters ([a-z0-9-]), none of them special to LIKE.
func (r *Registry) ListPrefix(ctx context.Context, prefix, after string, limit int) ([]tenant.Tenant, bool, error) {
	rows, err := r.db.Query(ctx, `
		SELECT `+columns+` FROM tenants
		WHERE tenant_id > $1 AND ($2 = '' OR tenant_id LIKE $2 || '%')
		ORDER BY tenant_id
		LIMIT $3`, after, prefix, limit+1)
	if err != nil {
		return nil, false, fmt.Errorf("registry: list prefix: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (tenant.Tenant, error) { return scan(row) })
	if err != nil {
		return nil, false, fmt.Errorf("registry: list prefix: %w", err)
	}
	more := len(out) > limit
	if more {
		out = out[:limit]
	}
	return out, more, nil
}

// StatusesOf returns the status of each of ids the registry knows; an id absent from the
// answer is unknown. One query by primary key, for a batch of ids.
func (r *Registry) StatusesOf(ctx context.Context, ids []string) (map[string]tenant.Status, error) {
	out := make(map[string]tenant.Status, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := r.db.Query(ctx, `SELECT tenant_id, status FROM tenants WHERE tenant_id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("registry: statuses: %w", err)
	}
	var id, status string
	_, err = pgx.ForEachRow(rows, []any{&id, &status}, func() error {
		out[id] = tenant.Status(status)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("registry: statuses: %w", err)
	}
	return out, nil
}
