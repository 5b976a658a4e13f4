package registry_test

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/misybot/tenancy/internal/domain/registry"
	"github.com/misybot/tenancy/internal/model/tenant"
	"github.com/misybot/tenancy/internal/stores/rls"
	"github.com/misybot/tenancy/internal/testkit/testenv"
)

// A registry write commits with the context's commit hook (an API request's audit event): when
// the hook fails the change is rolled back, when it succeeds both are there; a write that
// changed nothing does not run it.
func TestWritesCommitWithTheCommitHook(t *testing.T) {
	t.Parallel()
	reg := registry.New(testenv.AppPool(t))
	id := testenv.TenantID("hook")
	create(t, reg, id, tenant.StatusActive)
	upd := registry.Update{SiteID: "s", Name: "renamed", ContactEmail: "a@b.co", Type: tenant.TypeStandard}

	failing := rls.WithCommitHook(context.Background(), func(context.Context, pgx.Tx) error { return errors.New("audit store refused") })
	_, err := reg.Update(failing, id, upd)
	require.ErrorContains(t, err, "audit store refused")
	got, err := reg.Get(context.Background(), id)
	require.NoError(t, err)
	require.Equal(t, "n", got.Name, "the change rolled back with its record")

	var ran int
	counting := rls.WithCommitHook(context.Background(), func(ctx context.Context, tx pgx.Tx) error {
		ran++
		var name string
		require.NoError(t, tx.QueryRow(ctx, `SELECT tenant_name FROM tenants WHERE tenant_id = $1`, id).Scan(&name))
		require.Equal(t, "renamed", name, "the hook runs inside the writing transaction")
		return nil
	})
	_, err = reg.Update(counting, id, upd)
	require.NoError(t, err)
	require.Equal(t, 1, ran)
	got, err = reg.Get(context.Background(), id)
	require.NoError(t, err)
	require.Equal(t, "renamed", got.Name)

	_, err = reg.Get(counting, id)
	require.NoError(t, err)
	require.Equal(t, 1, ran, "a read runs no hook")
}
