package registry

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/misybot/tenancy/internal/model/tenant"
)

// Audit retention bounds. The default matches the column default (migration 00005).
const (
	DefaultAuditRetentionDays = 365
	MaxAuditRetentionDays     = 36500
)

// AuditPolicy is how long a tenant's audit events are kept, and whether a legal hold stops
// their deletion altogether.
type AuditPolicy struct {
	RetentionDays int  `json:"retentionDays"`
	LegalHold     bool `json:"legalHold"`
}

// AuditPolicy reads a tenant's audit policy.
func (r *Registry) AuditPolicy(ctx context.Context, id string) (AuditPolicy, error) {
	var p AuditPolicy
	err := r.db.QueryRow(ctx, `SELECT audit_retention_days, audit_legal_hold FROM tenants WHERE tenant_id = $1`, id).
		Scan(&p.RetentionDays, &p.LegalHold)
	if errors.Is(err, pgx.ErrNoRows) {
		return AuditPolicy{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err != nil {
		return AuditPolicy{}, fmt.Errorf("registry: audit policy %s: %w", id, err)
	}
	return p, nil
}

// SetAuditPolicy replaces a tenant's audit policy. An offboarded tenant's audit trail left with
// its export, so its policy no longer means anything: that is a StatusError (ErrFrozen).
// Retention outside 1..MaxAuditRetentionDays is refused by the table's CHECK and here first.
func (r *Registry) SetAuditPolicy(ctx context.Context, id string, p AuditPolicy) (out AuditPolicy, err error) {
	err = r.write(ctx, func(reg *Registry) error {
		out, err = reg.setAuditPolicy(ctx, id, p)
		return err
	})
	return out, err
}

func (r *Registry) setAuditPolicy(ctx context.Context, id string, p AuditPolicy) (AuditPolicy, error) {
	if p.RetentionDays < 1 || p.RetentionDays > MaxAuditRetentionDays {
		return AuditPolicy{}, fmt.Errorf("registry: audit retention must be 1 to %d days, got %d", MaxAuditRetentionDays, p.RetentionDays)
	}
	var out AuditPolicy
	err := r.db.QueryRow(ctx, `
		UPDATE tenants SET audit_retention_days = $2, audit_legal_hold = $3, updated_at = now()
		WHERE tenant_id = $1 AND status <> 'offboarded'
		RETURNING audit_retention_days, audit_legal_hold`, id, p.RetentionDays, p.LegalHold).
		Scan(&out.RetentionDays, &out.LegalHold)
	if errors.Is(err, pgx.ErrNoRows) {
		t, getErr := r.Get(ctx, id)
		if getErr != nil {
			return AuditPolicy{}, getErr
		}
		return AuditPolicy{}, &StatusError{Err: ErrFrozen, Status: t.Status}
	}
	if err != nil {
		return AuditPolicy{}, fmt.Errorf("registry: set audit policy %s: %w", id, err)
	}
	return out, nil
}

// RetentionTarget is a tenant whose audit trail the retention workflow looks at.
type RetentionTarget struct {
	TenantID string
	Status   tenant.Status
	AuditPolicy
}

// RetentionTargets lists, by tenant id after `after`, up to limit tenants whose audit chain is
// open (active or suspended: the others have no database, or are being created or removed),
// with their policy, and whether more follow. Keyset pagination, so a long list is read in
// bounded pages however many tenants there are.
func (r *Registry) RetentionTargets(ctx context.Context, after string, limit int) ([]RetentionTarget, bool, error) {
	rows, err := r.db.Query(ctx, `
		SELECT tenant_id, status, audit_retention_days, audit_legal_hold FROM tenants
		WHERE status IN ('active', 'suspended') AND tenant_id > $1
		ORDER BY tenant_id
		LIMIT $2`, after, limit+1)
	if err != nil {
		return nil, false, fmt.Errorf("registry: retention targets: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (RetentionTarget, error) {
		var t RetentionTarget
		err := row.Scan(&t.TenantID, &t.Status, &t.RetentionDays, &t.LegalHold)
		return t, err
	})
	if err != nil {
		return nil, false, fmt.Errorf("registry: retention targets: %w", err)
	}
	more := len(out) > limit
	if more {
		out = out[:limit]
	}
	return out, more, nil
}
