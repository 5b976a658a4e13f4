package activities

import (
	"context"
	"errors"
	"strconv"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/misybot/tenancy/internal/domain/registry"
)

// TenantPage asks for the tenants after After (at most Limit).
type TenantPage struct {
	After string
	Limit int
}

// TenantIDs is one page of tenant ids, and whether more follow.
type TenantIDs struct {
	IDs  []string
	More bool
}

// ListRewrapTargets lists the tenants whose keys and secrets a master key rotation re-wraps
// (every status but offboarded), a page at a time. Read-only, so trivially safe to retry.
func (a *Activities) ListRewrapTargets(ctx context.Context, in TenantPage) (TenantIDs, error) {
	ids, more, err := a.Registry.TenantIDs(ctx, in.After, max(in.Limit, 1))
	return TenantIDs{IDs: ids, More: more}, err
}

// MasterKeyVersionResult names the master key version this worker seals under.
type MasterKeyVersionResult struct {
	Version int
}

// MasterKeyVersion reports the worker's current master key version, so a rotation knows what
// it rotates to. Read-only.
func (a *Activities) MasterKeyVersion(context.Context) (MasterKeyVersionResult, error) {
	return MasterKeyVersionResult{Version: a.Sealer.Version()}, nil
}

// RewrapInput names a tenant and the master key version its keys and secrets must end under.
type RewrapInput struct {
	TenantID string
	Version  int
}

// RewrapResult says what a re-wrap rewrote (counts, never key material).
type RewrapResult struct {
	DataKeys int
	Secret   bool
}

// AuditDetails puts the counts in the step's audit event.
func (r RewrapResult) AuditDetails() map[string]string {
	secret := "unchanged"
	if r.Secret {
		secret = "re-sealed"
	}
	return map[string]string{"dataKeysRewrapped": itoa(r.DataKeys), "secret": secret}
}

// RewrapTenantKeys re-wraps the tenant's data keys and re-seals its secrets under the current
// master key version (the data keys do not change: nothing is re-encrypted). Idempotent: what
// is already under the current version is skipped and every write is conditional on what it
// read, so a retry, or a worker killed half-way, finishes the job. A worker whose current
// version is not the rotation's is a permanent failure: workers must be restarted with the new
// key first.
func (a *Activities) RewrapTenantKeys(ctx context.Context, in RewrapInput) (RewrapResult, error) {
	if err := a.sealsUnder(in.Version); err != nil {
		return RewrapResult{}, err
	}
	tctx, err := scoped(ctx, in.TenantID)
	if err != nil {
		return RewrapResult{}, err
	}
	var res RewrapResult
	if res.DataKeys, err = a.Keys.Rewrap(tctx); err != nil {
		return res, err
	}
	res.Secret, err = a.Registry.RewrapSecret(ctx, in.TenantID, in.Version, func(sealed []byte) ([]byte, bool, error) {
		return a.Sealer.Reseal(in.TenantID, registry.SecretField, sealed)
	})
	if errors.Is(err, registry.ErrNotFound) {
		return res, nil // gone since it was listed: nothing left to re-wrap
	}
	return res, err
}

// ResealCellsInput names the master key version the cells' stores must end under.
type ResealCellsInput struct {
	Version int
}

// ResealCellsResult counts the cells whose stores this call re-sealed (never an address).
type ResealCellsResult struct {
	Cells int
}

// AuditDetails puts the count in the step's audit event.
func (r ResealCellsResult) AuditDetails() map[string]string {
	return map[string]string{"cellStoresResealed": itoa(r.Cells)}
}

// ResealCellStores re-seals every cell's store addresses under the current master key version
// (cells.Registry.ResealStores), so no cell becomes unreachable once TENANT_MASTER_KEY_PREVIOUS
// is removed. Idempotent by construction: a cell already under the current version is skipped
// and every write is conditional on the ciphertext it read, so a retry, a concurrent run or a
// worker killed half-way finishes the job without losing a write; the count is this attempt's
// writes. A worker whose current version is not the rotation's is a permanent failure, as for
// RewrapTenantKeys. Activities built by hand without a cell router (tests) hold only the
// default cell, whose stores are the process's own and sealed nowhere: there is nothing to
// re-seal, and the result is zero.
func (a *Activities) ResealCellStores(ctx context.Context, in ResealCellsInput) (ResealCellsResult, error) {
	if err := a.sealsUnder(in.Version); err != nil {
		return ResealCellsResult{}, err
	}
	if a.Cells == nil {
		return ResealCellsResult{}, nil
	}
	n, err := a.Cells.Registry().ResealStores(ctx)
	if n > 0 {
		activity.GetLogger(ctx).Info("cell stores re-sealed", "cells", n, "version", in.Version)
	}
	return ResealCellsResult{Cells: n}, err
}

// sealsUnder refuses, permanently, a rotation to a version other than this worker's current
// one: workers must be restarted with the new key first, and a retry would fail the same way.
func (a *Activities) sealsUnder(version int) error {
	if a.Sealer.Version() == version {
		return nil
	}
	err := errors.New("this worker seals under master key version " + itoa(a.Sealer.Version()) + ", the rotation is to version " + itoa(version) + ": restart every worker with the new TENANT_MASTER_KEY first")
	return temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeInvalidInput, err)
}

func itoa(n int) string { return strconv.Itoa(n) }
