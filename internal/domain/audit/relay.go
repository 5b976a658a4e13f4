package audit

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// A cell's PostgreSQL keeps the tenant rows of its tenants, but the hash chains are the control
// plane's (its outbox and heads). A change in a cell commits with its audit event in the cell's
// audit_relay (cell migration 00001: the cell's audit_enqueue), and the Relay hands each event
// to the control plane's audit_enqueue, then deletes it from the cell. The control plane's
// enqueue ignores an event id it has (in the outbox, or in the platform outbox), so a relay that
// dies between the two steps hands the same events again and nothing is recorded twice; one
// relay at a time per cell (an advisory lock) keeps each tenant's events in commit order. A
// cell that is down stops only its own tenants' events: the others ship as before.

// relayBatch bounds the events handed over in one transaction of a cell.
const relayBatch = 200

// relayLock is the advisory lock key that makes a cell's relay single (any number: it is
// taken in the cell's database, which holds nothing else of ours).
const relayLock = 0x6175646974 // "audit"

// RelaySource is a cell's PostgreSQL, as the relay reaches it.
type RelaySource struct {
	Cell string
	Pool *pgxpool.Pool
}

// Relay moves audit events from the cells' PostgreSQL into the control plane's outbox.
type Relay struct {
	w       *Writer
	sources func(context.Context) ([]RelaySource, error)
	logger  *slog.Logger
	// Interval is the pause between rounds (default 500 ms).
	Interval time.Duration
}

// NewRelay relays, every round, from the cells sources lists (every cell but the default one,
// whose database is the control plane's).
func (w *Writer) NewRelay(sources func(context.Context) ([]RelaySource, error), logger *slog.Logger) *Relay {
	if logger == nil {
		logger = slog.Default()
	}
	return &Relay{w: w, sources: sources, logger: logger, Interval: 500 * time.Millisecond}
}

// Run relays until ctx ends. A cell that fails is logged when it starts and when it stops
// failing, not every round.
func (r *Relay) Run(ctx context.Context) {
	t := time.NewTicker(r.Interval)
	defer t.Stop()
	failing := map[string]bool{}
	for {
		srcs, err := r.sources(ctx)
		if err != nil && ctx.Err() == nil && !failing[""] {
			r.logger.Warn("audit relay: the cells could not be listed", "err", err)
		}
		failing[""] = err != nil
		for _, s := range srcs {
			_, err := r.Drain(ctx, s)
			switch {
			case err != nil && ctx.Err() == nil && !failing[s.Cell]:
				r.logger.Warn("audit relay: a cell's events wait in its database until it recovers", "cell_id", s.Cell, "err", err)
				failing[s.Cell] = true
			case err == nil && failing[s.Cell]:
				r.logger.Info("audit relay: cell recovered", "cell_id", s.Cell)
				delete(failing, s.Cell)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Drain relays a cell's waiting events, a batch at a time, and returns how many it handed over.
func (r *Relay) Drain(ctx context.Context, s RelaySource) (int, error) {
	total := 0
	for {
		n, err := r.w.relayBatch(ctx, s.Pool)
		total += n
		if err != nil {
			return total, fmt.Errorf("cell %s: %w", s.Cell, err)
		}
		if n < relayBatch {
			return total, nil
		}
	}
}

// relayBatch hands over up to relayBatch events in one transaction of the cell, which holds the
// relay lock (another relay of this cell skips it) and deletes what it handed over on commit.
func (w *Writer) relayBatch(ctx context.Context, cell *pgxpool.Pool) (int, error) {
	n := 0
	err := pgx.BeginFunc(ctx, cell, func(tx pgx.Tx) error {
		var mine bool
		if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock($1)`, relayLock).Scan(&mine); err != nil {
			return err
		}
		if !mine {
			return nil
		}
		rows, err := tx.Query(ctx, `SELECT pos, mode, event_tenant, event_id, tenant_chain, platform_chain, payload, key_id
			FROM audit_relay ORDER BY pos LIMIT $1`, relayBatch)
		if err != nil {
			return err
		}
		type waiting struct {
			pos                             int64
			mode, eventID, platformChain    string
			eventTenant, tenantChain, keyID *string
			payload                         []byte
		}
		events, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (waiting, error) {
			var e waiting
			err := row.Scan(&e.pos, &e.mode, &e.eventTenant, &e.eventID, &e.tenantChain, &e.platformChain, &e.payload, &e.keyID)
			return e, err
		})
		if err != nil {
			return err
		}
		done := make([]int64, 0, len(events))
		for _, e := range events {
			// Each in a transaction of its own on the control plane: audit_enqueue scopes its
			// transaction to the event's tenant.
			var chain *string
			err := w.pool.QueryRow(ctx, `SELECT audit_enqueue($1, $2, $3, $4, $5, $6, $7)`,
				e.mode, e.eventTenant, e.eventID, e.tenantChain, e.platformChain, e.payload, e.keyID).Scan(&chain)
			if err != nil {
				if len(done) == 0 {
					return fmt.Errorf("audit relay: enqueue %s: %w", e.eventID, err)
				}
				break // keep what was handed over; the rest goes next round
			}
			done = append(done, e.pos)
		}
		// A failure part-way keeps what was handed over (deleted here) and leaves the rest, and
		// the failure, to the next round: n < relayBatch ends this one.
		if _, err := tx.Exec(ctx, `DELETE FROM audit_relay WHERE pos = ANY($1)`, done); err != nil {
			return err
		}
		n = len(done)
		return nil
	})
	return n, err
}
