package audit_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	"github.com/misybot/tenancy/internal/domain/audit"
	"github.com/misybot/tenancy/internal/model/tenant"
	"github.com/misybot/tenancy/internal/stores/rls"
	"github.com/misybot/tenancy/internal/stores/tenantmongo"
	"github.com/misybot/tenancy/internal/testkit/testenv"
)

// BenchmarkAppend measures an audit append, and an append shipped to MongoDB, on a chain that
// already holds 1,000 events and on one that holds 100,000 (in the outbox, already shipped, and
// in MongoDB). The cost must not depend on the chain's length: compare the two p50s. Each
// iteration appends to both chains, in alternating order, so that whatever else the machine does
// meanwhile (autovacuum after the seeding, a checkpoint, another process) falls on both sizes
// alike; measured one size after the other, that noise alone moved the ratio from 0.7 to 1.2.
//
//	go test -run '^$' -bench Append ./internal/domain/audit
func BenchmarkAppend(b *testing.B) {
	sizes := []int{1_000, 100_000}
	bb := setupB(b)
	ctxs := make([]context.Context, len(sizes))
	chains := make([]*audit.Chain, len(sizes))
	for i, size := range sizes {
		ctx, id := bb.tenantCtx(b, fmt.Sprint("bench", size))
		seedChain(b, bb, id, size)
		chain, err := bb.w.TenantChain(ctx)
		require.NoError(b, err)
		ctxs[i], chains[i] = ctx, chain
	}
	n := 0
	run := func(name string, ship bool) {
		b.Run(name, func(b *testing.B) {
			lat := make([][]time.Duration, len(sizes))
			for round := 0; b.Loop(); round++ {
				for k := range sizes {
					i := (k + round) % len(sizes) // alternate which size goes first
					n++
					t0 := time.Now()
					_, err := bb.w.Tenant(ctxs[i], event(fmt.Sprintf("a%d", n), "bench", time.Now()))
					require.NoError(b, err)
					if ship {
						_, err = chains[i].Ship(ctxs[i])
						require.NoError(b, err)
					}
					lat[i] = append(lat[i], time.Since(t0))
				}
			}
			for i, size := range sizes {
				reportP50(b, lat[i], fmt.Sprintf("p50-µs-events=%d", size))
			}
		})
	}
	run("append", false)
	for i := range chains { // the appends above wait in the outbox; ship them before timing ships
		_, err := chains[i].Ship(ctxs[i])
		require.NoError(b, err)
	}
	run("append+ship", true)
}

func storeOf(c *mongo.Client) *tenantmongo.Store { return tenantmongo.New(c) }

func mongoSeqIndex() mongo.IndexModel {
	return mongo.IndexModel{Keys: bson.D{{Key: "seq", Value: 1}}, Options: options.Index().SetName("seq_1").SetUnique(true)}
}

func reportP50(b *testing.B, lat []time.Duration, unit string) {
	slices.Sort(lat)
	if len(lat) > 0 {
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), unit)
	}
}

// setupB is setup for benchmarks.
func setupB(b *testing.B) bundle {
	b.Helper()
	c := testenv.MongoClient(b)
	db := "platform_bench_" + fmt.Sprint(time.Now().UnixNano()%1e9)
	b.Cleanup(func() { _ = c.Database(db).Drop(context.Background()) })
	return bundle{w: audit.NewWriter(testenv.AppPool(b), c, storeOf(c), chainKey, audit.WithPlatformDatabase(db)), mongo: c, store: storeOf(c), platform: c.Database(db)}
}

// seedChain gives the tenant's chain n shipped events: rows in the outbox (as kept for
// exactly-once), its head at n, and n documents in MongoDB with seq 1…n. Their hashes are not
// real: the benchmark appends after them, it does not verify them.
func seedChain(b *testing.B, bb bundle, id string, n int) {
	b.Helper()
	ctx := context.Background()
	pool := testenv.AppPool(b)
	key := "tenant_" + id + ":" + audit.TenantChainName(id)
	require.NoError(b, rls.Tx(tenant.WithID(ctx, id), pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO audit_outbox (tenant_id, event_id, payload, key_id, seq, prev_hash, hash, shipped_at)
			SELECT $1, 'seed-' || i, '\x7b7d', 'seed', i, 'p', 'h' || i, now() FROM generate_series(1, $2) AS i`, id, n); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO audit_heads (chain, seq, hash, shipped_seq) VALUES ($1, $2, $3, $2)`, key, n, fmt.Sprint("h", n))
		return err
	}))
	coll := bb.mongo.Database("tenant_" + id).Collection(audit.Collection)
	_, err := coll.Indexes().CreateOne(ctx, mongoSeqIndex())
	require.NoError(b, err)
	const batch = 2000
	for from := 1; from <= n; from += batch {
		docs := make([]any, 0, batch)
		for i := from; i < from+batch && i <= n; i++ {
			docs = append(docs, bson.D{{Key: "_id", Value: fmt.Sprint("seed-", i)}, {Key: "tenantId", Value: id},
				{Key: "action", Value: "seed"}, {Key: "seq", Value: int64(i)}, {Key: "hash", Value: fmt.Sprint("h", i)}, {Key: "at", Value: time.Now()}})
		}
		_, err := coll.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
		require.NoError(b, err)
	}
}
