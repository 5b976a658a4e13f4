package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/misybot/tenancy/internal/model/tenant"
	"github.com/misybot/tenancy/internal/stores/tenantmongo"
)

// Querier is what enqueue needs of a pool or a transaction: pass the caller's transaction to
// commit an event together with the change it records (RecordTx).
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Enqueue modes of audit_enqueue (migration 00009).
const (
	modeRoute    = "route"
	modeTenant   = "tenant"
	modePlatform = "platform"
)

// enqueue writes e into the outbox through audit_enqueue: one round trip, no MongoDB, no lock on
// a chain head. It reports false, with no error, when an event with e's id is already in the
// outbox (in either chain). The event ships to MongoDB later (Shipper), in order per chain.
func (w *Writer) enqueue(ctx context.Context, q Querier, mode string, e Event) (bool, error) {
	return w.enqueueMode(ctx, q, mode, w.platform, e, false)
}

// enqueueTo writes e into the outbox of a platform-side sequence other than the platform chain
// (the unchained log of unauthenticated refusals).
func (w *Writer) enqueueTo(ctx context.Context, q Querier, c *Chain, e Event) (bool, error) {
	return w.enqueueMode(ctx, q, modePlatform, c, e, false)
}

// enqueueMode writes e; with ifWrote, only when the transaction q has written something
// already (it has a transaction id), in the same round trip.
func (w *Writer) enqueueMode(ctx context.Context, q Querier, mode string, platform *Chain, e Event, ifWrote bool) (bool, error) {
	if e.ID == "" {
		return false, errors.New("audit: event needs a deterministic id")
	}
	if e.At.IsZero() {
		e.At = time.Now()
	}
	// MongoDB keeps milliseconds: hash exactly what will be read back.
	e.At = e.At.UTC().Truncate(time.Millisecond)
	// Chain fields are the shipper's to assign; whatever the caller put there is dropped.
	e.Seq, e.PrevHash, e.Hash, e.KeyVersion = 0, "", "", 0
	payload, err := json.Marshal(e)
	if err != nil {
		return false, fmt.Errorf("audit: encode %s: %w", e.ID, err)
	}
	var tenantID, tenantChain *string
	if e.TenantID != "" && tenant.ValidateID(e.TenantID) == nil && !platform.unchained {
		key := tenantChainKey(e.TenantID)
		tenantID, tenantChain = &e.TenantID, &key
	} else if mode != modePlatform {
		// route without a valid tenant goes to the platform chain; tenant mode cannot.
		if mode == modeTenant {
			return false, fmt.Errorf("audit: tenant chain event %s has no valid tenant id", e.ID)
		}
		mode = modePlatform
	}
	var chain *string
	sql := `SELECT audit_enqueue($1, $2, $3, $4, $5, $6, $7)`
	if ifWrote {
		sql = `SELECT CASE WHEN pg_current_xact_id_if_assigned() IS NOT NULL THEN audit_enqueue($1, $2, $3, $4, $5, $6, $7) END`
	}
	err = q.QueryRow(ctx, sql,
		mode, tenantID, e.ID, tenantChain, platform.key, payload, w.keyID).Scan(&chain)
	if err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42501" {
			return false, fmt.Errorf("audit: %s", pgErr.Message)
		}
		return false, fmt.Errorf("audit: enqueue %s (%s): %w", e.Action, e.ID, err)
	}
	return chain != nil, nil
}

// RecordTx is Record inside the caller's transaction, so the event commits or rolls back with
// the change it records. The transaction's tenant (app.tenant_id) becomes e.TenantID; a
// transaction already scoped to another tenant is refused.
func (w *Writer) RecordTx(ctx context.Context, tx pgx.Tx, e Event) (bool, error) {
	return w.enqueue(ctx, tx, modeRoute, e)
}

// RecordTxIfWrote is RecordTx (platform true: PlatformTx) when tx has written something, and
// nothing when it has only read (no transaction id yet), decided in the same round trip: an
// API request's commit hook runs in every transaction the request opens, reads included.
func (w *Writer) RecordTxIfWrote(ctx context.Context, tx pgx.Tx, e Event, platform bool) (bool, error) {
	mode := modeRoute
	if platform {
		mode = modePlatform
	}
	return w.enqueueMode(ctx, tx, mode, w.platform, e, true)
}

// PlatformTx is Platform inside the caller's transaction.
func (w *Writer) PlatformTx(ctx context.Context, tx pgx.Tx, e Event) (bool, error) {
	return w.enqueue(ctx, tx, modePlatform, e)
}

// tenantChainKey is the audit_heads key of a tenant's chain (see anchorKey).
func tenantChainKey(tenantID string) string {
	return tenantmongo.DatabasePrefix + tenantID + ":" + TenantChainName(tenantID)
}
