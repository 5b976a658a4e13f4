package keycheck_test

import (
	"bytes"
	"context"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/misybot/tenancy/internal/keys/keycheck"
	"github.com/misybot/tenancy/internal/testkit/testenv"
)

// The first process records its key's check value; the same key passes again, another key is
// refused with an error naming the variable, and the record is not replaced.
func TestVerifyRefusesAnotherKey(t *testing.T) {
	t.Parallel()
	pool := testenv.AppPool(t)
	ctx := context.Background()
	version := 1_000_000 + rand.IntN(1_000_000_000) // a version of this test's own
	t.Cleanup(func() {
		_, _ = testenv.OwnerPool(t).Exec(context.Background(), `DELETE FROM master_key_checks WHERE version = $1`, version)
	})
	mine, other := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)

	require.NoError(t, keycheck.Verify(ctx, pool, mine, version), "first start records")
	require.NoError(t, keycheck.Verify(ctx, pool, mine, version), "the same key passes")
	err := keycheck.Verify(ctx, pool, other, version)
	require.ErrorIs(t, err, keycheck.ErrMismatch)
	require.Contains(t, err.Error(), "TENANT_MASTER_KEY")
	require.NoError(t, keycheck.Verify(ctx, pool, mine, version), "the refused key replaced nothing")
	require.NotEqual(t, keycheck.Value(mine), keycheck.Value(other))
	require.NotContains(t, keycheck.Value(mine), "0101", "the value is a MAC, not the key")
}
