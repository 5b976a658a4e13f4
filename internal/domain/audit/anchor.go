package audit

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/misybot/tenancy/internal/model/tenant"
	"github.com/misybot/tenancy/internal/stores/rls"
)

// ProblemTruncated: the chain ends before the last event PostgreSQL knows was shipped to it: its
// newest events were removed.
const ProblemTruncated = "truncated"

// shippedHead reads the last seq known to be in MongoDB for the chain (audit_heads.shipped_seq,
// moved by the shipper after each batch); ok is false when the chain has no head yet.
func (c *Chain) shippedHead(ctx context.Context) (int64, bool, error) {
	var seq int64
	err := c.w.pool.QueryRow(ctx, `SELECT shipped_seq FROM audit_heads WHERE chain = $1`, c.key).Scan(&seq)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("audit: read head of %s: %w", c.name, err)
	}
	return seq, true, nil
}

// ForgetTenantChain removes a tenant chain's head and outbox rows when the chain itself is
// removed on purpose (offboarding drops the tenant's database after exporting it). It refuses
// while events still wait to ship: they would be lost. Quarantined events move to the
// platform outbox, still quarantined (see quarantine.go). Idempotent.
func (w *Writer) ForgetTenantChain(ctx context.Context, tenantID string) error {
	key := tenantChainKey(tenantID)
	err := rls.Tx(tenant.WithID(ctx, tenantID), w.pool, func(tx pgx.Tx) error {
		var waiting int64
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM audit_backlog WHERE chain = $1`, key).Scan(&waiting); err != nil {
			return err
		}
		if waiting > 0 {
			return fmt.Errorf("%d events still wait to ship", waiting)
		}
		if err := w.moveQuarantineToPlatform(ctx, tx, tenantID); err != nil {
			return err
		}
		b := &pgx.Batch{}
		b.Queue(`DELETE FROM audit_outbox WHERE tenant_id = $1`, tenantID)
		b.Queue(`DELETE FROM audit_heads WHERE chain = $1`, key)
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return fmt.Errorf("audit: forget chain of %s: %w", tenantID, err)
	}
	return nil
}
