package cells

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/misybot/tenancy/internal/model/tenant"
)

// Want is what an operator asks of a tenant's placement: a cell by id, or a region; both
// empty lets the rules choose.
type Want struct {
	Cell   string `json:"cellId,omitempty"`
	Region string `json:"region,omitempty"`
}

// NoRoomError: no cell can take the tenant; nothing was placed.
type NoRoomError struct {
	Want   Want
	Reason string
	// Unknown: the cell or region asked for does not exist (rather than being full).
	Unknown bool
	// Unhealthy: a cell that would do did not answer; trying again later may succeed.
	Unhealthy bool
}

func (e *NoRoomError) Error() string {
	switch {
	case e.Want.Cell != "":
		return fmt.Sprintf("cell %s cannot take the tenant: %s", e.Want.Cell, e.Reason)
	case e.Want.Region != "":
		return fmt.Sprintf("no cell in region %s can take the tenant: %s", e.Want.Region, e.Reason)
	}
	return "no cell can take the tenant: " + e.Reason
}

// Healthy tells whether a cell's stores answer; placement skips a cell that does not.
type Healthy func(ctx context.Context, cellID string) bool

// Place puts a tenant on a cell, once: a tenant already placed keeps its cell (so a retried or
// re-run placement gives the same answer), whatever is asked now. Otherwise, in order: the cell
// asked for (it must be open, healthy and have room); for an enterprise tenant, a dedicated
// open cell with no tenant yet (in the region asked for, if any); else the least-loaded open
// pooled cell with room (likewise). Placements are serialized by a transaction-scoped lock, so
// two onboardings cannot both take a cell's last slot. *NoRoomError when no cell fits.
func (r *Registry) Place(ctx context.Context, tenantID string, typ tenant.Type, want Want, healthy Healthy) (string, error) {
	// A tenant placed already (a retried attempt) needs no lock.
	if cell, placed, err := r.Placement(ctx, tenantID); err != nil || placed {
		return cell, err
	}
	var placed string
	err := pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		// Bounded waits: a placement stuck behind a lock fails (and is retried) instead of
		// holding every other placement behind the advisory lock.
		if _, err := tx.Exec(ctx, `SELECT set_config('lock_timeout', '5s', true)`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('cell-placement', 0))`); err != nil {
			return err
		}
		var current *string
		// NO KEY UPDATE, not UPDATE: rows that reference the tenant (its settings, being
		// written) hold KEY SHARE locks on it, which this does not wait for.
		err := tx.QueryRow(ctx, `SELECT cell_id FROM tenants WHERE tenant_id = $1 FOR NO KEY UPDATE`, tenantID).Scan(&current)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("cells: place %s: %w", tenantID, ErrNoTenant)
		}
		if err != nil {
			return err
		}
		if current != nil {
			placed = *current
			return nil
		}
		rows, err := tx.Query(ctx, selectCells+` ORDER BY c.cell_id`)
		if err != nil {
			return err
		}
		all, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Cell, error) { return scanCell(row) })
		if err != nil {
			return err
		}
		cell, err := choose(ctx, all, typ, want, healthy)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE tenants SET cell_id = $2 WHERE tenant_id = $1`, tenantID, cell); err != nil {
			return err
		}
		placed = cell
		return nil
	})
	if err != nil {
		return "", err
	}
	return placed, nil
}

// choose applies the placement rules to the cells as they are now.
func choose(ctx context.Context, all []Cell, typ tenant.Type, want Want, healthy Healthy) (string, error) {
	fits := func(c Cell) bool {
		return c.State == StateOpen && c.Tenants < c.Capacity && (want.Region == "" || c.Region == want.Region)
	}
	if want.Cell != "" {
		for _, c := range all {
			if c.ID != want.Cell {
				continue
			}
			switch {
			case c.State != StateOpen:
				return "", &NoRoomError{Want: want, Reason: "it is " + c.State}
			case c.Tenants >= c.Capacity:
				return "", &NoRoomError{Want: want, Reason: fmt.Sprintf("it is full (%d of %d)", c.Tenants, c.Capacity)}
			case c.Kind == KindDedicated && c.Tenants > 0:
				return "", &NoRoomError{Want: want, Reason: "it is a dedicated cell with a tenant already"}
			case !healthy(ctx, c.ID):
				return "", &NoRoomError{Want: want, Reason: "its stores do not answer", Unhealthy: true}
			}
			return c.ID, nil
		}
		return "", &NoRoomError{Want: want, Reason: "it is not registered", Unknown: true}
	}
	if want.Region != "" && !slices.ContainsFunc(all, func(c Cell) bool { return c.Region == want.Region }) {
		return "", &NoRoomError{Want: want, Reason: "no cell is registered there", Unknown: true}
	}
	if typ == tenant.TypeEnterprise {
		for _, c := range all {
			if c.Kind == KindDedicated && c.Tenants == 0 && fits(c) && healthy(ctx, c.ID) {
				return c.ID, nil
			}
		}
	}
	best, found, unhealthy := Cell{}, false, 0
	for _, c := range all {
		if c.Kind != KindPooled || !fits(c) {
			continue
		}
		if found && float64(c.Tenants)/float64(c.Capacity) >= float64(best.Tenants)/float64(best.Capacity) {
			continue
		}
		if !healthy(ctx, c.ID) {
			unhealthy++
			continue
		}
		best, found = c, true
	}
	if !found {
		reason := "every open pooled cell is full, draining or closed; register a cell (POST /api/meta-agent/cells) or raise a capacity"
		if unhealthy > 0 {
			reason = fmt.Sprintf("%d open cell(s) with room do not answer and no other has room; check their stores", unhealthy)
		}
		return "", &NoRoomError{Want: want, Reason: reason, Unhealthy: unhealthy > 0}
	}
	return best.ID, nil
}

// Check answers whether Place would find the tenant a cell now, writing nothing: nil when it
// is placed already or a cell fits, *NoRoomError otherwise. The API asks it before starting an
// onboarding, so an operator hears "no room" at once rather than from a failed run.
func (r *Registry) Check(ctx context.Context, tenantID string, typ tenant.Type, want Want, healthy Healthy) error {
	// A tenant not registered yet (onboarding registers it) is not placed either.
	if _, placed, err := r.Placement(ctx, tenantID); placed || (err != nil && !errors.Is(err, ErrNoTenant)) {
		return err
	}
	all, err := r.List(ctx)
	if err != nil {
		return err
	}
	_, err = choose(ctx, all, typ, want, healthy)
	return err
}
