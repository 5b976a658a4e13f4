package audit

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/misybot/tenancy/internal/model/tenant"
	"github.com/misybot/tenancy/internal/stores/tenantmongo"
	"github.com/misybot/tenancy/internal/testkit/testenv"
)

// writeLegacy appends n events to the chain the way writers did before the outbox (straight
// into MongoDB, hashed in place), anchoring the head in PostgreSQL as they did when anchor is
// true (after migration 00009 an anchored head has shipped_seq = seq).
func writeLegacy(t *testing.T, c *Chain, n int, anchor bool) {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, c.w.ensureSeqIndex(ctx, c.events))
	head, err := c.head(ctx)
	require.NoError(t, err)
	for i := range n {
		e := Event{ID: fmt.Sprintf("legacy-%d-%d", head.Seq, i), TenantID: c.tenantID, Actor: Actor{Type: ActorOperator, ID: "ops"},
			Action: "tenant.update", Resource: "tenant/x", Outcome: OutcomeSuccess, At: time.Now().UTC().Truncate(time.Millisecond)}
		e.Seq, e.PrevHash = head.Seq+1, head.Hash
		e.Hash = c.w.eventHash(c.name, e)
		_, err := c.events.InsertOne(ctx, e)
		require.NoError(t, err)
		head = link{Seq: e.Seq, Hash: e.Hash}
	}
	if anchor {
		_, err := c.w.pool.Exec(ctx, `INSERT INTO audit_heads (chain, seq, hash, shipped_seq) VALUES ($1, $2, $3, $2)
			ON CONFLICT (chain) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, shipped_seq = excluded.seq`, c.key, head.Seq, head.Hash)
		require.NoError(t, err)
	}
}

// Chains written before the outbox keep verifying once new events go through it: with their
// head anchored (the outbox appends after it), and without (events written before the anchor
// existed, or whose anchoring failed: the shipper finds MongoDB ahead, re-reads its head and
// appends after it, once).
func TestChainsWrittenBeforeTheOutboxKeepVerifying(t *testing.T) {
	t.Parallel()
	mc := testenv.MongoClient(t)
	db := strings.ReplaceAll(testenv.TenantID("platform_legacy"), "-", "_")
	t.Cleanup(func() { _ = mc.Database(db).Drop(context.Background()) })
	w := NewWriter(testenv.AppPool(t), mc, tenantmongo.New(mc), bytes.Repeat([]byte{9}, 32), WithPlatformDatabase(db))

	for _, anchored := range []bool{true, false} {
		id := testenv.TenantID("legacy")
		ctx := tenant.WithID(context.Background(), id)
		t.Cleanup(func() { _ = mc.Database("tenant_" + id).Drop(context.Background()) })
		c, err := w.TenantChain(ctx)
		require.NoError(t, err)
		writeLegacy(t, c, 5, true)
		if !anchored {
			writeLegacy(t, c, 3, false) // MongoDB now ahead of the anchored head
		}
		for i := range 4 {
			ok, err := w.Tenant(ctx, Event{ID: fmt.Sprintf("new-%d", i), Action: "tenant.update", Outcome: OutcomeSuccess, Actor: Actor{Type: ActorSystem, ID: "x"}})
			require.NoError(t, err)
			require.True(t, ok)
		}
		rep, err := c.Verify(ctx)
		require.NoError(t, err)
		require.True(t, rep.OK, "anchored=%v: %+v", anchored, rep.FirstBroken)
		want := int64(9)
		if !anchored {
			want = 12
		}
		require.Equal(t, want, rep.Checked, "anchored=%v", anchored)
		require.Equal(t, want, rep.HeadSeq)
		shipped, ok, err := c.shippedHead(ctx)
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, want, shipped)
	}
}
