package registry

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/misybot/tenancy/internal/model/tenant"
)

// CountByStatus returns how many tenants have each status, every status present (0 when none):
// one GROUP BY over the registry, for the dashboard's overview.
func (r *Registry) CountByStatus(ctx context.Context) (map[tenant.Status]int64, error) {
	out := make(map[tenant.Status]int64, len(tenant.Statuses))
	for _, s := range tenant.Statuses {
		out[s] = 0
	}
	rows, err := r.db.Query(ctx, `SELECT status, count(*) FROM tenants GROUP BY status`)
	if err != nil {
		return nil, fmt.Errorf("registry: count by status: %w", err)
	}
	var status string
	var n int64
	_, err = pgx.ForEachRow(rows, []any{&status, &n}, func() error {
		out[tenant.Status(status)] = n
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("registry: count by status: %w", err)
	}
	return out, nil
}
