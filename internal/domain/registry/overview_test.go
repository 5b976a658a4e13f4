package registry_test

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/misybot/tenancy/internal/domain/registry"
	"github.com/misybot/tenancy/internal/model/tenant"
	"github.com/misybot/tenancy/internal/testkit/testenv"
)

// CountByStatus counts every status (0 included) and sees each tenant under its status. The
// registry is shared with tests running at the same time, so the test works in one
// repeatable-read transaction, rolled back: its counts move only with its own writes.
func TestCountByStatus(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	errRollback := errors.New("roll back")
	err := registry.New(testenv.AppPool(t)).Tx(ctx, func(tx pgx.Tx, reg *registry.Registry) error {
		_, err := tx.Exec(ctx, `SET TRANSACTION ISOLATION LEVEL REPEATABLE READ`)
		require.NoError(t, err)
		before, err := reg.CountByStatus(ctx)
		require.NoError(t, err)
		require.Len(t, before, len(tenant.Statuses), "every status, 0 included")

		add := map[tenant.Status]int64{tenant.StatusPending: 2, tenant.StatusActive: 1, tenant.StatusSuspended: 3}
		for status, n := range add {
			for range n {
				id := testenv.TenantID("count")
				_, err := reg.Create(ctx, registry.NewTenant{
					Tenant:       tenant.Tenant{ID: id, SiteID: "s", Name: "n", ContactEmail: "a@b.co", Type: tenant.TypeStandard},
					SealedSecret: []byte{1}, SecretKeyVersion: 1,
				})
				require.NoError(t, err)
				if status != tenant.StatusPending {
					_, ok, err := reg.SetStatus(ctx, id, status, "test", tenant.StatusPending)
					require.NoError(t, err)
					require.True(t, ok)
				}
			}
		}
		after, err := reg.CountByStatus(ctx)
		require.NoError(t, err)
		for _, s := range tenant.Statuses {
			require.Equal(t, before[s]+add[s], after[s], s)
		}
		return errRollback
	})
	require.ErrorIs(t, err, errRollback)
}
