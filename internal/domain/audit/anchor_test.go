package audit_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/bson"

	"github.com/misybot/tenancy/internal/domain/audit"
)

// With the head kept in PostgreSQL, removing the newest events (or all of them) is caught;
// removing the chain on purpose, with its head, is not an error.
func TestVerifyCatchesTruncation(t *testing.T) {
	t.Parallel()
	b := setup(t)
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
	require.True(t, b.verify(t, ctx).OK, "a chain removed on purpose, with its head, verifies as empty")
}
