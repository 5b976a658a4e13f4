package activities

import (
	"context"
	"errors"
	"strconv"

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
	if a.Sealer.Version() != in.Version {
		err := errors.New("this worker seals under master key version " + itoa(a.Sealer.Version()) + ", the rotation is to version " + itoa(in.Version) + ": restart every worker with the new TENANT_MASTER_KEY first")
		return RewrapResult{}, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeInvalidInput, err)
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

func itoa(n int) string { return strconv.Itoa(n) }
