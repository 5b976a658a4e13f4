// Package rls runs PostgreSQL work for one tenant under row-level security, and verifies that
// the database enforces that isolation.
//
// The tenant is set per transaction with set_config('app.tenant_id', $1, true): the setting
// ends with the transaction, so a pooled connection never carries one tenant's identity into
// the next user's statements (a session-level SET would; measured in ../shared/STACK.md).
package rls

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/misybot/tenancy/internal/tenant"
)

// Setting is the PostgreSQL setting every tenant_isolation policy reads.
const Setting = "app.tenant_id"

// Tx runs fn in a transaction scoped to the context's tenant. Without a tenant in ctx it fails
// with tenant.ErrNoTenant before touching the database. fn's error rolls the transaction back.
func Tx(ctx context.Context, pool *pgxpool.Pool, fn func(pgx.Tx) error) error {
	id, err := tenant.IDFrom(ctx)
	if err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT set_config('`+Setting+`', $1, true)`, id); err != nil {
			return fmt.Errorf("rls: set tenant: %w", err)
		}
		return fn(tx)
	})
}
