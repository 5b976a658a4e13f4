package operators_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/misybot/tenancy/internal/platform/operators"
	"github.com/misybot/tenancy/internal/testkit/testenv"
)

// The bootstrap token works until it is disabled, which needs a named platform-admin (or nobody
// could administer), and then fails like any unknown token, while named tokens keep working.
// In a transaction rolled back at the end: the switch is global.
func TestBootstrapTokenCanBeTurnedOff(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tx, err := testenv.OwnerPool(t).Begin(ctx) // the owner: the test clears the switch first
	require.NoError(t, err)
	t.Cleanup(func() { _ = tx.Rollback(context.Background()) })
	_, err = tx.Exec(ctx, `DELETE FROM operator_bootstrap`)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, `UPDATE operator_tokens SET revoked_at = now() WHERE role = 'platform-admin' AND revoked_at IS NULL`)
	require.NoError(t, err)

	const bootstrap = "bootstrap-token-for-this-test-0123456789"
	store := operators.NewOn(tx, bootstrap)
	op, err := store.Authenticate(ctx, bootstrap)
	require.NoError(t, err)
	require.Equal(t, operators.RoleAdmin, op.Role)

	require.ErrorIs(t, store.DisableBootstrap(ctx, "test"), operators.ErrNoNamedAdmin, "not without a named admin")
	_, err = store.Authenticate(ctx, bootstrap)
	require.NoError(t, err, "still on")

	named, err := store.Create(ctx, "admin-"+testenv.TenantID("x"), operators.RoleAdmin)
	require.NoError(t, err)
	require.NoError(t, store.DisableBootstrap(ctx, "test"))
	require.NoError(t, store.DisableBootstrap(ctx, "test"), "idempotent")
	_, err = store.Authenticate(ctx, bootstrap)
	require.ErrorIs(t, err, operators.ErrUnknownToken, "the bootstrap token is refused")
	op, err = store.Authenticate(ctx, named)
	require.NoError(t, err)
	require.Equal(t, operators.RoleAdmin, op.Role)
}
