// Package rls runs PostgreSQL work for one tenant under row-level security, and verifies that
// the database enforces that isolation.
//
// The tenant is set per transaction with set_config('app.tenant_id', $1, true): the setting
// ends with the transaction, so a pooled connection never carries one tenant's identity into
// the next user's statements (a session-level SET would; measured in ../shared/STACK.md).
package rls

import (
	"context"
	"strings"

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
	// BEGIN and set_config travel in one simple-protocol round trip (pgx runs BeginQuery
	// without parameters). The id is safe to inline: IDFrom only returns ids matching
	// tenant.ValidateID (lowercase letters, digits, hyphens), and it is quoted regardless.
	begin := `BEGIN; SELECT set_config('` + Setting + `', ` + quoteLiteral(id) + `, true)`
	return pgx.BeginTxFunc(ctx, pool, pgx.TxOptions{BeginQuery: begin}, fn)
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
