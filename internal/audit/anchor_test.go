package audit_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/bson"

	"github.com/misybot/tenancy/internal/audit"
	"github.com/misybot/tenancy/internal/tenantmongo"
	"github.com/misybot/tenancy/internal/testenv"
)

// With the head anchored in PostgreSQL, removing the newest events (or all of them) is caught;
// removing the chain on purpose, with its anchor, is not an error.
func TestVerifyCatchesTruncationWithHeadAnchor(t *testing.T) {
	t.Parallel()
	c := testenv.MongoClient(t)
	db := strings.ReplaceAll(testenv.TenantID("platform_a"), "-", "_")
	t.Cleanup(func() { _ = c.Database(db).Drop(context.Background()) })
	b := bundle{w: audit.NewWriter(c, tenantmongo.New(c), chainKey, audit.WithPlatformDatabase(db), audit.WithHeadAnchor(testenv.AppPool(t))),
		mongo: c, store: tenantmongo.New(c), platform: c.Database(db)}
	ctx, id := b.tenantCtx(t, "anchor")
	t0 := time.Now().UTC()
	for i := range 4 {
		_, err := b.w.Tenant(ctx, event(fmt.Sprintf("e%d", i), "tenant.setting.put", t0.Add(time.Duration(i)*time.Second)))
		require.NoError(t, err)
	}
	require.True(t, b.verify(t, ctx).OK)

	_, err := b.events(t, id).DeleteOne(context.Background(), bson.D{{Key: "seq", Value: 4}})
	require.NoError(t, err)
	rep := b.verify(t, ctx)
	require.False(t, rep.OK, "the newest event was deleted")
	require.Equal(t, audit.ProblemTruncated, rep.FirstBroken.Problem)
	require.EqualValues(t, 4, rep.FirstBroken.Seq)

	_, err = b.events(t, id).DeleteMany(context.Background(), bson.D{})
	require.NoError(t, err)
	rep = b.verify(t, ctx)
	require.False(t, rep.OK, "an emptied chain")
	require.Equal(t, audit.ProblemTruncated, rep.FirstBroken.Problem)

	require.NoError(t, b.w.ForgetTenantChain(context.Background(), id))
	require.True(t, b.verify(t, ctx).OK, "a chain removed on purpose, with its anchor, verifies as empty")

	// Without an anchor (the default), the same truncation goes unseen: why the anchor exists.
	plain := setup(t)
	pctx, pid := plain.tenantCtx(t, "noanchor")
	for i := range 2 {
		_, err := plain.w.Tenant(pctx, event(fmt.Sprintf("p%d", i), "tenant.setting.put", t0))
		require.NoError(t, err)
	}
	_, err = plain.events(t, pid).DeleteOne(context.Background(), bson.D{{Key: "seq", Value: 2}})
	require.NoError(t, err)
	require.True(t, plain.verify(t, pctx).OK)
}
