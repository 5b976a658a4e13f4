package conversations_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/misybot/tenancy/internal/domain/conversations"
	"github.com/misybot/tenancy/internal/keys/keyring"
	"github.com/misybot/tenancy/internal/keys/seal"
	"github.com/misybot/tenancy/internal/model/limits"
	"github.com/misybot/tenancy/internal/model/tenant"
	"github.com/misybot/tenancy/internal/stores/tenantdb"
	"github.com/misybot/tenancy/internal/stores/tenantmongo"
	"github.com/misybot/tenancy/internal/stores/tenantredis"
	"github.com/misybot/tenancy/internal/testkit/testenv"
)

// setup registers and provisions a tenant (registry row, data key, MongoDB database) and
// returns its context with a Store under bounds.
func setup(t testing.TB, bounds limits.Tenant) (context.Context, *conversations.Store) {
	t.Helper()
	owner, app := testenv.OwnerPool(t), testenv.AppPool(t)
	id := testenv.TenantID("conv")
	_, err := owner.Exec(context.Background(), `INSERT INTO tenants (tenant_id, site_id, tenant_name, contact_email, tenant_type, secret_ciphertext)
		VALUES ($1, 's', 'n', 'x@y.zz', 'trial', '\x01')`, id)
	require.NoError(t, err)
	ctx := tenant.WithID(context.Background(), id)
	sealer, err := seal.New(testenv.MasterKey)
	require.NoError(t, err)
	keys := keyring.New(app, sealer)
	_, err = keys.Ensure(ctx)
	require.NoError(t, err)
	m := tenantmongo.New(testenv.MongoClient(t))
	_, err = m.Provision(ctx)
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = m.Deprovision(ctx) })
	return ctx, conversations.New(m, keys, tenantredis.New(testenv.RedisClient(t)), tenantdb.New(app), bounds)
}

// The review's 400 appends at 50 at once left messageCount at 226 on FerretDB ($inc lost
// updates): every append must be counted, and each page must hold each message once.
func TestConcurrentAppendsAreAllCounted(t *testing.T) {
	ctx, store := setup(t, limits.Default())
	conv, err := store.Create(ctx, "busy")
	require.NoError(t, err)

	const n, at = 400, 50
	var wg sync.WaitGroup
	sem := make(chan struct{}, at)
	for i := range n {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			_, err := store.AddMessage(ctx, conv.ID, "user", fmt.Sprintf("m%03d", i))
			assert.NoError(t, err)
		})
	}
	wg.Wait()

	first, err := store.Get(ctx, conv.ID, "", limits.DefaultPage)
	require.NoError(t, err)
	require.Equal(t, n, first.Conversation.MessageCount)

	seen := map[string]bool{}
	cursor, pages := "", 0
	for {
		p, err := store.Get(ctx, conv.ID, cursor, limits.MaxPage)
		require.NoError(t, err)
		require.LessOrEqual(t, len(p.Messages), limits.MaxPage)
		for _, m := range p.Messages {
			require.False(t, seen[m.Text], "message %s twice", m.Text)
			seen[m.Text] = true
		}
		pages++
		if p.Next == "" {
			break
		}
		cursor = p.Next
	}
	require.Len(t, seen, n)
	require.Equal(t, 4, pages)
}

func TestBoundsRefuseAndWriteNothing(t *testing.T) {
	bounds := limits.Default()
	bounds.MaxConversations, bounds.MaxMessagesPerConversation, bounds.MaxMessageBytes, bounds.MaxDocumentBytes = 2, 3, 10, 40
	ctx, store := setup(t, bounds)

	var exceeded *limits.Exceeded
	c, err := store.Create(ctx, "a")
	require.NoError(t, err)
	_, err = store.AddMessage(ctx, c.ID, "user", strings.Repeat("x", 11))
	require.ErrorAs(t, err, &exceeded)
	require.True(t, exceeded.TooLarge)
	require.Equal(t, limits.BoundMessageBytes, exceeded.Bound)

	for range 3 {
		_, err := store.AddMessage(ctx, c.ID, "user", "0123456789")
		require.NoError(t, err)
	}
	_, err = store.AddMessage(ctx, c.ID, "user", "x")
	require.ErrorAs(t, err, &exceeded)
	require.Equal(t, limits.BoundMessages, exceeded.Bound)

	_, err = store.Create(ctx, "b")
	require.NoError(t, err)
	_, err = store.Create(ctx, "c")
	require.ErrorAs(t, err, &exceeded)
	require.Equal(t, limits.BoundConversations, exceeded.Bound)

	list, next, err := store.List(ctx, nil, 10)
	require.NoError(t, err)
	require.Len(t, list, 2, "the refused conversation was not written")
	require.Nil(t, next)
	p, err := store.Get(ctx, c.ID, "", limits.DefaultPage)
	require.NoError(t, err)
	require.Len(t, p.Messages, 3, "the refused messages were not written")
	require.Equal(t, 3, p.Conversation.MessageCount)
}

func TestConversationListPages(t *testing.T) {
	ctx, store := setup(t, limits.Default())
	for i := range 5 {
		_, err := store.Create(ctx, fmt.Sprintf("c%d", i))
		require.NoError(t, err)
	}
	var titles []string
	var after *conversations.ListCursor
	for {
		items, next, err := store.List(ctx, after, 2)
		require.NoError(t, err)
		for _, c := range items {
			titles = append(titles, c.Title)
		}
		if next == nil {
			break
		}
		parsed, ok := conversations.ParseListCursor(next.String())
		require.True(t, ok)
		after = &parsed
	}
	require.ElementsMatch(t, []string{"c0", "c1", "c2", "c3", "c4"}, titles)
	require.Len(t, titles, 5)
}

// The cache holds a small first page, never a large one: Redis would hold every tenant's
// commands behind a multi-megabyte value.
func TestOnlySmallPagesAreCached(t *testing.T) {
	ctx, store := setup(t, limits.Default())
	rc := testenv.RedisClient(t)
	id, err := tenant.IDFrom(ctx)
	require.NoError(t, err)
	cachedKey := func(conv string) bool {
		return rc.Exists(ctx, tenantredis.Key(id, "conversation_cache", conv)).Val() == 1
	}
	small, err := store.Create(ctx, "small")
	require.NoError(t, err)
	_, err = store.AddMessage(ctx, small.ID, "user", "hello")
	require.NoError(t, err)
	_, err = store.Get(ctx, small.ID, "", limits.DefaultPage)
	require.NoError(t, err)
	require.True(t, cachedKey(small.ID), "a small first page is cached")

	big, err := store.Create(ctx, "big")
	require.NoError(t, err)
	for range 20 {
		_, err := store.AddMessage(ctx, big.ID, "user", strings.Repeat("m", limits.Default().MaxMessageBytes))
		require.NoError(t, err)
	}
	p, err := store.Get(ctx, big.ID, "", limits.DefaultPage)
	require.NoError(t, err)
	require.Len(t, p.Messages, 20)
	require.False(t, cachedKey(big.ID), "a first page over 256 KiB is not")
}
