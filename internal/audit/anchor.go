package audit

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/misybot/tenancy/internal/tenantmongo"
)

// ProblemTruncated: the chain ends before the head anchored in PostgreSQL: its newest events
// were removed.
const ProblemTruncated = "truncated"

// WithHeadAnchor records every chain's head in PostgreSQL (table audit_heads), so Verify can
// tell a chain whose newest events were deleted from one that simply ends there. Without it,
// such a truncation is invisible: what is left still links up.
func WithHeadAnchor(pool *pgxpool.Pool) Option { return func(o *writerOptions) { o.anchor = pool } }

// anchorKey names a chain in audit_heads: its database and its name, since two deployments (or
// test processes) may keep platform chains of the same name in different databases.
func anchorKey(c *Chain) string { return c.events.Database().Name() + ":" + c.name }

// anchorHead moves a chain's anchored head forward to (seq, hash), never back: concurrent
// writers may report out of order, and the greatest seq wins.
func (w *Writer) anchorHead(ctx context.Context, c *Chain, seq int64, hash string) error {
	if w.anchor == nil || seq < 1 {
		return nil
	}
	_, err := w.anchor.Exec(ctx, `
		INSERT INTO audit_heads (chain, seq, hash) VALUES ($1, $2, $3)
		ON CONFLICT (chain) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, updated_at = now()
		WHERE audit_heads.seq < excluded.seq`, anchorKey(c), seq, hash)
	if err != nil {
		return fmt.Errorf("audit: anchor head of %s: %w", c.name, err)
	}
	return nil
}

// anchoredHead reads a chain's anchored head; ok is false when none is recorded.
func (w *Writer) anchoredHead(ctx context.Context, c *Chain) (link, bool, error) {
	if w.anchor == nil {
		return link{}, false, nil
	}
	var h link
	err := w.anchor.QueryRow(ctx, `SELECT seq, hash FROM audit_heads WHERE chain = $1`, anchorKey(c)).Scan(&h.Seq, &h.Hash)
	if errors.Is(err, pgx.ErrNoRows) {
		return link{}, false, nil
	}
	if err != nil {
		return link{}, false, fmt.Errorf("audit: read anchored head of %s: %w", c.name, err)
	}
	return h, true, nil
}

// ForgetTenantChain removes a tenant chain's anchor when the chain itself is removed on purpose
// (offboarding, or onboarding's compensation, drops the tenant's database). Idempotent.
func (w *Writer) ForgetTenantChain(ctx context.Context, tenantID string) error {
	if w.anchor == nil {
		return nil
	}
	if _, err := w.anchor.Exec(ctx, `DELETE FROM audit_heads WHERE chain = $1`, tenantmongo.DatabasePrefix+tenantID+":"+TenantChainName(tenantID)); err != nil {
		return fmt.Errorf("audit: forget chain of %s: %w", tenantID, err)
	}
	return nil
}
