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

const day = 24 * time.Hour

// seqs lists the seqs stored in a tenant chain.
func (b bundle) seqs(t *testing.T, id string) []int64 {
	t.Helper()
	var out []int64
	for _, e := range b.stored(t, id) {
		out = append(out, e.Seq)
	}
	return out
}

// write appends events at the given ages (before now), named e1, e2…
func (b bundle) write(t *testing.T, ctx context.Context, now time.Time, ages ...time.Duration) {
	t.Helper()
	for i, age := range ages {
		_, err := b.w.Tenant(ctx, event(fmt.Sprintf("e%d", i+1), "tenant.update", now.Add(-age)))
		require.NoError(t, err)
	}
}

// Retention removes the longest run of old events from the start of the chain, keeps every
// event inside the period (and an old one written after a newer one), leaves a checkpoint,
// and the rest still verifies and keeps growing.
func TestPruneKeepsThePeriodAndTheChainVerifies(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx, id := b.tenantCtx(t, "prune")
	now := time.Now().UTC()
	b.write(t, ctx, now, 400*day, 380*day, 10*day, 370*day, day)
	before := b.stored(t, id)
	c, err := b.w.TenantChain(ctx)
	require.NoError(t, err)

	res, err := c.Prune(ctx, now.Add(-365*day), now)
	require.NoError(t, err)
	require.Nil(t, res.Broken)
	require.EqualValues(t, 2, res.Removed)
	require.Equal(t, []int64{3, 4, 5}, b.seqs(t, id), "seq 4 is old but follows seq 3, which is inside the period")
	require.NotNil(t, res.Checkpoint)
	require.EqualValues(t, 2, res.Checkpoint.Seq)
	require.EqualValues(t, 1, res.Checkpoint.From)
	require.Equal(t, before[1].Hash, res.Checkpoint.Hash, "the checkpoint holds the hash of the last event removed")

	rep, err := c.Verify(ctx)
	require.NoError(t, err)
	require.True(t, rep.OK, "%+v", rep.FirstBroken)
	require.EqualValues(t, 3, rep.From)
	require.EqualValues(t, 3, rep.Checked)

	res, err = c.Prune(ctx, now.Add(-365*day), now)
	require.NoError(t, err)
	require.Zero(t, res.Removed, "a second run removes nothing")

	_, err = b.w.Tenant(ctx, event("e6", "tenant.update", now))
	require.NoError(t, err)
	rep, err = c.Verify(ctx)
	require.NoError(t, err)
	require.True(t, rep.OK, "%+v", rep.FirstBroken)
	require.EqualValues(t, 6, rep.HeadSeq)

	// A shorter period later cuts behind the first checkpoint, from where it stopped.
	res, err = c.Prune(ctx, now.Add(-5*day), now)
	require.NoError(t, err)
	require.EqualValues(t, 2, res.Removed)
	require.EqualValues(t, 3, res.Checkpoint.From)
	require.Equal(t, []int64{5, 6}, b.seqs(t, id))
	rep, err = c.Verify(ctx)
	require.NoError(t, err)
	require.True(t, rep.OK, "%+v", rep.FirstBroken)
}

// The newest event stays even when every event is older than the period, so new events still
// link to a stored one.
func TestPruneKeepsTheHead(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx, id := b.tenantCtx(t, "head")
	now := time.Now().UTC()
	b.write(t, ctx, now, 500*day, 499*day, 498*day)
	c, err := b.w.TenantChain(ctx)
	require.NoError(t, err)
	res, err := c.Prune(ctx, now.Add(-365*day), now)
	require.NoError(t, err)
	require.EqualValues(t, 2, res.Removed)
	require.Equal(t, []int64{3}, b.seqs(t, id))
	_, err = b.w.Tenant(ctx, event("new", "x", now))
	require.NoError(t, err)
	rep, err := c.Verify(ctx)
	require.NoError(t, err)
	require.True(t, rep.OK, "%+v", rep.FirstBroken)
	require.EqualValues(t, 2, rep.Checked)
}

// A run that died after writing its checkpoint but before deleting leaves events behind the
// checkpoint: the chain still verifies, and the next run deletes them.
func TestPruneFinishesAnInterruptedCut(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx, id := b.tenantCtx(t, "crash")
	now := time.Now().UTC()
	b.write(t, ctx, now, 400*day, 399*day, day)
	var removed []bson.Raw
	cur, err := b.events(t, id).Find(ctx, bson.D{{Key: "seq", Value: bson.D{{Key: "$lte", Value: 2}}}})
	require.NoError(t, err)
	for cur.Next(ctx) {
		removed = append(removed, append(bson.Raw(nil), cur.Current...))
	}
	require.Len(t, removed, 2)

	c, err := b.w.TenantChain(ctx)
	require.NoError(t, err)
	_, err = c.Prune(ctx, now.Add(-365*day), now)
	require.NoError(t, err)
	for _, doc := range removed { // as if the deletion never ran
		_, err := b.events(t, id).InsertOne(ctx, doc)
		require.NoError(t, err)
	}
	rep, err := c.Verify(ctx)
	require.NoError(t, err)
	require.True(t, rep.OK, "a checkpoint ahead of the deletion is tolerated: %+v", rep.FirstBroken)

	res, err := c.Prune(ctx, now.Add(-365*day), now)
	require.NoError(t, err)
	require.EqualValues(t, 2, res.Removed)
	require.Equal(t, []int64{3}, b.seqs(t, id))
}

// Retention does not destroy evidence: a part to cut that does not verify is left as it is.
func TestPruneLeavesATamperedChainAlone(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx, id := b.tenantCtx(t, "keep")
	now := time.Now().UTC()
	b.write(t, ctx, now, 400*day, 399*day, day)
	_, err := b.events(t, id).UpdateOne(ctx, bson.D{{Key: "seq", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "reason", Value: "rewritten"}}}})
	require.NoError(t, err)
	c, err := b.w.TenantChain(ctx)
	require.NoError(t, err)
	res, err := c.Prune(ctx, now.Add(-365*day), now)
	require.NoError(t, err)
	require.NotNil(t, res.Broken)
	require.Equal(t, audit.ProblemEdited, res.Broken.Problem)
	require.Zero(t, res.Removed)
	require.Equal(t, []int64{1, 2, 3}, b.seqs(t, id))
	n, err := b.mongo.Database("tenant_"+id).Collection(audit.CheckpointCollection).CountDocuments(ctx, bson.D{})
	require.NoError(t, err)
	require.Zero(t, n, "no checkpoint")
}

// A checkpoint cannot be forged or removed unnoticed: one with a bad MAC is reported, and
// without the checkpoint the removed prefix shows as missing.
func TestCheckpointTampering(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		tamper  func(t *testing.T, ctx context.Context, b bundle, id string)
		problem string
		seq     int64
	}{
		{"forged", func(t *testing.T, ctx context.Context, b bundle, id string) {
			// A later checkpoint that would hide seq 3 too, with a MAC made without the key.
			_, err := b.mongo.Database("tenant_"+id).Collection(audit.CheckpointCollection).InsertOne(ctx, audit.Checkpoint{
				Seq: 3, Hash: "x", From: 3, Cutoff: time.Now(), At: time.Now(), MAC: "00"})
			require.NoError(t, err)
		}, audit.ProblemCheckpoint, 3},
		{"edited", func(t *testing.T, ctx context.Context, b bundle, id string) {
			_, err := b.mongo.Database("tenant_"+id).Collection(audit.CheckpointCollection).UpdateOne(ctx, bson.D{}, bson.D{{Key: "$set", Value: bson.D{{Key: "from", Value: 2}}}})
			require.NoError(t, err)
		}, audit.ProblemCheckpoint, 2},
		{"deleted", func(t *testing.T, ctx context.Context, b bundle, id string) {
			_, err := b.mongo.Database("tenant_"+id).Collection(audit.CheckpointCollection).DeleteMany(ctx, bson.D{})
			require.NoError(t, err)
		}, audit.ProblemMissing, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			ctx, id := b.tenantCtx(t, "cp")
			now := time.Now().UTC()
			b.write(t, ctx, now, 400*day, 399*day, day, 0)
			c, err := b.w.TenantChain(ctx)
			require.NoError(t, err)
			_, err = c.Prune(ctx, now.Add(-365*day), now)
			require.NoError(t, err)
			tc.tamper(t, ctx, b, id)
			rep, err := c.Verify(ctx)
			require.NoError(t, err)
			require.False(t, rep.OK)
			require.Equal(t, tc.problem, rep.FirstBroken.Problem, "%+v", rep.FirstBroken)
			require.Equal(t, tc.seq, rep.FirstBroken.Seq)
		})
	}
}
