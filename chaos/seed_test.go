package chaos

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/misybot/tenancy/internal/domain/conversations"
	"github.com/misybot/tenancy/internal/domain/registry"
	"github.com/misybot/tenancy/internal/keys/keyring"
	"github.com/misybot/tenancy/internal/keys/seal"
	"github.com/misybot/tenancy/internal/model/limits"
	"github.com/misybot/tenancy/internal/stores/tenantdb"
	"github.com/misybot/tenancy/internal/stores/tenantmongo"
	"github.com/misybot/tenancy/internal/stores/tenantredis"
	"github.com/misybot/tenancy/internal/testkit/seed"
	"github.com/misybot/tenancy/internal/testkit/testenv"
)

// The scale seed stopped part-way (here: asked for fewer tenants) and run again: it onboards
// and fills only what is missing, and a third run changes nothing.
func TestSeedResumes(t *testing.T) {
	t.Parallel()
	needsServers(t)
	s := newStack(t, "")
	s.startWorker("worker")
	sealer, err := seal.New(masterKey)
	require.NoError(t, err)
	d := seed.Deps{
		APIURL: s.url, Token: token, HTTP: s.http, Temporal: s.temporal,
		Registry: registry.New(s.app), Settings: tenantdb.New(s.app),
		Conversations: conversations.New(tenantmongo.New(s.mongo), keyring.New(s.app, sealer), tenantredis.New(s.redis), tenantdb.New(s.app), limits.Default()),
		Redis:         tenantredis.New(s.redis),
	}
	opts := seed.Options{Tenants: 2, Concurrency: 2, Prefix: testenv.TenantID("seed"), Settings: 3, Conversations: 2, Messages: 2, RedisKeys: 2}
	ctx := context.Background()

	first, err := seed.Run(ctx, d, opts)
	require.NoError(t, err)
	require.Equal(t, seed.Stats{Onboarded: 2, Filled: 2}, zeroElapsed(first))
	opts.Tenants = 4
	second, err := seed.Run(ctx, d, opts)
	require.NoError(t, err)
	require.Equal(t, seed.Stats{Onboarded: 2, AlreadyActive: 2, Filled: 2, AlreadyFilled: 2}, zeroElapsed(second))
	third, err := seed.Run(ctx, d, opts)
	require.NoError(t, err)
	require.Equal(t, seed.Stats{AlreadyActive: 4, AlreadyFilled: 4}, zeroElapsed(third))

	for i := 1; i <= opts.Tenants; i++ {
		id := seed.ID(opts.Prefix, i)
		h := s.holdingsOf(id)
		require.Equal(t, 3+opts.Settings+1, h.Postgres["tenant_settings"], "%s: defaults, seeded settings, marker", id)
		require.EqualValues(t, opts.Conversations, h.Mongo["conversations"], id)
		require.EqualValues(t, opts.Conversations*opts.Messages, h.Mongo["messages"], id)
		require.Contains(t, h.RedisKeys, tenantredis.Key(id, "seed", "k2"), id)
		s.checkChain(id, h.Events)
	}
	s.logf("seed of %d tenants in two parts, then again: %+v, %+v, %+v", opts.Tenants, zeroElapsed(first), zeroElapsed(second), zeroElapsed(third))
}

func zeroElapsed(st seed.Stats) seed.Stats {
	st.Elapsed = 0
	return st
}
