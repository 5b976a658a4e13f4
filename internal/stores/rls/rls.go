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

	"github.com/misybot/tenancy/internal/model/tenant"
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
	return pgx.BeginTxFunc(ctx, pool, pgx.TxOptions{BeginQuery: begin}, func(tx pgx.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		return RunCommitHook(ctx, tx)
	})
}

// ReadRow runs one read-only query for the context's tenant and scans its single row into
// dest, in one round trip where Tx takes three (BEGIN with set_config, the query, COMMIT): both
// statements travel in one pipelined batch ending with a single Sync, which PostgreSQL runs as
// one implicit transaction, so the tenant setting is local to it and ends with it exactly as in
// Tx. For the hot reads of the tenant API. Without a tenant in ctx it fails with
// tenant.ErrNoTenant before touching the database; no row is pgx.ErrNoRows.
func ReadRow(ctx context.Context, pool *pgxpool.Pool, sql string, args []any, dest ...any) error {
	id, err := tenant.IDFrom(ctx)
	if err != nil {
		return err
	}
	b := &pgx.Batch{}
	b.Queue(`SELECT set_config('`+Setting+`', $1, true)`, id)
	b.Queue(sql, args...)
	br := pool.SendBatch(ctx, b)
	if _, err := br.Exec(); err != nil {
		_ = br.Close()
		return err
	}
	if err := br.QueryRow().Scan(dest...); err != nil {
		_ = br.Close()
		return err
	}
	return br.Close()
}

// CommitHook is work that must commit with whatever a request writes: the API sets one per
// request (its audit event), and every transaction that writes on the request's behalf runs it
// just before committing, so the change and its record commit together or not at all.
type CommitHook func(ctx context.Context, tx pgx.Tx) error

type commitHookKey struct{}

// WithCommitHook returns ctx carrying hook. The hook must be idempotent: a request that writes
// in two transactions runs it in both.
func WithCommitHook(ctx context.Context, hook CommitHook) context.Context {
	return context.WithValue(ctx, commitHookKey{}, hook)
}

// HasCommitHook reports whether ctx carries a commit hook.
func HasCommitHook(ctx context.Context) bool {
	hook, ok := ctx.Value(commitHookKey{}).(CommitHook)
	return ok && hook != nil
}

// RunCommitHook runs ctx's commit hook, if any, in tx. Stores that open a writing transaction
// outside Tx (the registry) call it before their commit.
func RunCommitHook(ctx context.Context, tx pgx.Tx) error {
	if hook, ok := ctx.Value(commitHookKey{}).(CommitHook); ok && hook != nil {
		return hook(ctx, tx)
	}
	return nil
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
