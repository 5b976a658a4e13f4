package registry_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/misybot/tenancy/internal/domain/registry"
	"github.com/misybot/tenancy/internal/model/tenant"
	"github.com/misybot/tenancy/internal/testkit/testenv"
)

func create(t *testing.T, reg *registry.Registry, id string, status tenant.Status) {
	t.Helper()
	ctx := context.Background()
	_, err := reg.Create(ctx, registry.NewTenant{
		Tenant:       tenant.Tenant{ID: id, SiteID: "s", Name: "n", ContactEmail: "a@b.co", Type: tenant.TypeStandard},
		SealedSecret: []byte{1}, SecretKeyVersion: 1,
	})
	require.NoError(t, err)
	if status != tenant.StatusPending {
		_, err = testenv.OwnerPool(t).Exec(ctx, `UPDATE tenants SET status = $2 WHERE tenant_id = $1`, id, status)
		require.NoError(t, err)
	}
}

func TestAuditPolicy(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	reg := registry.New(testenv.AppPool(t))
	id := testenv.TenantID("pol")
	create(t, reg, id, tenant.StatusActive)

	p, err := reg.AuditPolicy(ctx, id)
	require.NoError(t, err)
	require.Equal(t, registry.AuditPolicy{RetentionDays: registry.DefaultAuditRetentionDays}, p, "the default: a year, no hold")

	p, err = reg.SetAuditPolicy(ctx, id, registry.AuditPolicy{RetentionDays: 30, LegalHold: true})
	require.NoError(t, err)
	require.Equal(t, registry.AuditPolicy{RetentionDays: 30, LegalHold: true}, p)
	got, err := reg.AuditPolicy(ctx, id)
	require.NoError(t, err)
	require.Equal(t, p, got)

	for _, days := range []int{0, -1, registry.MaxAuditRetentionDays + 1} {
		_, err := reg.SetAuditPolicy(ctx, id, registry.AuditPolicy{RetentionDays: days})
		require.Error(t, err, days)
	}
	got, err = reg.AuditPolicy(ctx, id)
	require.NoError(t, err)
	require.Equal(t, p, got, "refused values changed nothing")

	_, err = testenv.OwnerPool(t).Exec(ctx, `UPDATE tenants SET audit_retention_days = 0 WHERE tenant_id = $1`, id)
	require.Error(t, err, "the table refuses a retention of zero days too")

	_, err = reg.AuditPolicy(ctx, "no-such-tenant")
	require.ErrorIs(t, err, registry.ErrNotFound)
	_, err = reg.SetAuditPolicy(ctx, "no-such-tenant", registry.AuditPolicy{RetentionDays: 1})
	require.ErrorIs(t, err, registry.ErrNotFound)

	gone := testenv.TenantID("pol")
	create(t, reg, gone, tenant.StatusOffboarded)
	_, err = reg.SetAuditPolicy(ctx, gone, registry.AuditPolicy{RetentionDays: 10})
	var se *registry.StatusError
	require.True(t, errors.As(err, &se), "%v", err)
	require.Equal(t, tenant.StatusOffboarded, se.Status)
}

// Retention looks only at tenants whose chain is open, page by page.
func TestRetentionTargets(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	reg := registry.New(testenv.AppPool(t))
	prefix := testenv.TenantID("ret")
	statuses := map[string]tenant.Status{
		prefix + "-a": tenant.StatusActive, prefix + "-b": tenant.StatusPending, prefix + "-c": tenant.StatusSuspended,
		prefix + "-d": tenant.StatusOffboarded, prefix + "-e": tenant.StatusActive, prefix + "-f": tenant.StatusOffboarding,
	}
	for id, s := range statuses {
		create(t, reg, id, s)
	}
	_, err := reg.SetAuditPolicy(ctx, prefix+"-c", registry.AuditPolicy{RetentionDays: 7, LegalHold: true})
	require.NoError(t, err)

	// The prefix sorts right before its own ids ('-' is the smallest id character), so the
	// first targets after it are this test's.
	page, more, err := reg.RetentionTargets(ctx, prefix, 2)
	require.NoError(t, err)
	require.True(t, more)
	require.Equal(t, []registry.RetentionTarget{
		{TenantID: prefix + "-a", Status: tenant.StatusActive, AuditPolicy: registry.AuditPolicy{RetentionDays: 365}},
		{TenantID: prefix + "-c", Status: tenant.StatusSuspended, AuditPolicy: registry.AuditPolicy{RetentionDays: 7, LegalHold: true}},
	}, page)
	page, _, err = reg.RetentionTargets(ctx, prefix+"-c", 1)
	require.NoError(t, err)
	require.Equal(t, prefix+"-e", page[0].TenantID, "pending, offboarded and offboarding tenants are skipped")
}
