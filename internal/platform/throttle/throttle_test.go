package throttle_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/misybot/tenancy/internal/platform/throttle"
	"github.com/misybot/tenancy/internal/testkit/testenv"
)

// guard is a Guard on the test Redis with keys of this test's own and small budgets.
func guard(t *testing.T) *throttle.Guard {
	t.Helper()
	g := throttle.New(testenv.RedisClient(t))
	g.Prefix = "authfail:" + testenv.TenantID("t") + ":"
	g.PerPair, g.AlertPerAddress, g.AlertPerTenant = 3, 5, 5
	g.PreflightsPerAddress, g.RefusedPreflightsPerAddress = 3, 2
	return g
}

// A pair that spends its budget is refused; the same claim from another address, and another
// claim from the same address, are not.
func TestOnlyThePairIsRefused(t *testing.T) {
	t.Parallel()
	g, ctx := guard(t), context.Background()
	victim := throttle.TenantClaim("victim-1")
	for i := range 3 {
		f, err := g.Fail(ctx, "198.51.100.1", victim)
		require.NoError(t, err)
		require.Equal(t, i == 2, f.PairLocked, "locked on the failure that spends the budget, once: %d", i)
	}
	wait, err := g.Blocked(ctx, "198.51.100.1", victim)
	require.NoError(t, err)
	require.Positive(t, wait)
	require.LessOrEqual(t, wait, g.Window)

	for addr, c := range map[string]throttle.Claim{
		"198.51.100.2": victim,                          // the tenant, from its own address
		"198.51.100.1": throttle.TenantClaim("other-1"), // another claim from the attacker's address
		"198.51.100.3": throttle.TokenClaim("mbt_x"),
	} {
		wait, err := g.Blocked(ctx, addr, c)
		require.NoError(t, err)
		require.Zero(t, wait, "%s %v", addr, c)
	}
}

// The per-address and per-tenant ceilings report once when reached and refuse nothing.
func TestCeilingsAlertAndDoNotRefuse(t *testing.T) {
	t.Parallel()
	g, ctx := guard(t), context.Background()
	b := throttle.TenantClaim("b-1")
	reached := 0
	for i := range 10 { // one failure each from ten addresses: no pair spends its budget
		f, err := g.Fail(ctx, fmt.Sprintf("203.0.113.%d", i), b)
		require.NoError(t, err)
		require.False(t, f.PairLocked)
		require.EqualValues(t, i+1, f.Tenant)
		if f.TenantCeiling {
			reached++
			require.EqualValues(t, g.AlertPerTenant, f.Tenant)
		}
	}
	require.Equal(t, 1, reached, "the tenant ceiling alerts once per window")
	wait, err := g.Blocked(ctx, "203.0.113.200", b)
	require.NoError(t, err)
	require.Zero(t, wait, "the tenant id itself is never refused")

	reached = 0
	for i := range 10 { // ten wrong tokens from one address
		f, err := g.Fail(ctx, "203.0.113.77", throttle.TokenClaim(fmt.Sprintf("mbt_wrong%d", i)))
		require.NoError(t, err)
		if f.AddressCeiling {
			reached++
		}
	}
	require.Equal(t, 1, reached, "the address ceiling alerts once per window")
	wait, err = g.Blocked(ctx, "203.0.113.77", throttle.TokenClaim("mbt_valid"))
	require.NoError(t, err)
	require.Zero(t, wait, "the address itself is never refused")
}

// A token's claim is stable and does not carry the token.
func TestTokenClaimIsAFingerprint(t *testing.T) {
	t.Parallel()
	g, ctx := guard(t), context.Background()
	const tok = "mbt_0123456789abcdef0123456789abcdef"
	require.Equal(t, throttle.TokenClaim(tok), throttle.TokenClaim(tok))
	require.NotEqual(t, throttle.TokenClaim(tok), throttle.TokenClaim(tok+"0"))
	require.Equal(t, throttle.Claim{}, throttle.TokenClaim(""))
	require.Empty(t, throttle.TokenClaim(tok).Tenant())

	_, err := g.Fail(ctx, "192.0.2.9", throttle.TokenClaim(tok))
	require.NoError(t, err)
	keys, err := testenv.RedisClient(t).Keys(ctx, g.Prefix+"*").Result()
	require.NoError(t, err)
	require.NotEmpty(t, keys)
	for _, k := range keys {
		require.NotContains(t, k, tok)
		require.NotContains(t, k, "0123456789abcdef", "no part of the token")
	}
}

// Preflights are budgeted per address: all of them, and, tighter, those refused.
func TestPreflightBudget(t *testing.T) {
	t.Parallel()
	g, ctx := guard(t), context.Background()
	for i := range 5 {
		wait, locked, err := g.Preflight(ctx, "192.0.2.1")
		require.NoError(t, err)
		require.Equal(t, i >= 3, wait > 0, "preflight %d", i)
		require.Equal(t, i == 3, locked, "preflight %d", i)
		require.LessOrEqual(t, wait, g.Window)
	}

	for i := range 2 {
		wait, _, err := g.Preflight(ctx, "192.0.2.2")
		require.NoError(t, err)
		require.Zero(t, wait)
		locked, err := g.PreflightRefused(ctx, "192.0.2.2")
		require.NoError(t, err)
		require.Equal(t, i == 1, locked)
	}
	wait, locked, err := g.Preflight(ctx, "192.0.2.2")
	require.NoError(t, err)
	require.Positive(t, wait, "refused preflights spent their own budget")
	require.False(t, locked)
	require.LessOrEqual(t, wait, g.Window)

	wait, _, err = g.Preflight(ctx, "192.0.2.3")
	require.NoError(t, err)
	require.Zero(t, wait, "another address is answered")
}
