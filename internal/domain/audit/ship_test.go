package audit_test

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/bson"
	mongoevent "go.mongodb.org/mongo-driver/event"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	"github.com/misybot/tenancy/internal/domain/audit"
	"github.com/misybot/tenancy/internal/stores/tenantmongo"
	"github.com/misybot/tenancy/internal/testkit/testenv"
)

// shipped counts the tenant's events in MongoDB without shipping first (what a background
// shipper has moved so far).
func (b bundle) shipped(t *testing.T, id string) int64 {
	t.Helper()
	n, err := b.mongo.Database("tenant_"+id).Collection(audit.Collection).CountDocuments(context.Background(), bson.D{})
	require.NoError(t, err)
	return n
}

// ownKey gives b a writer under a chain key of its own: a background shipper ships only the
// chains of the keys it holds, so other tests' shippers (which hold chainKey) leave b's alone.
func (b bundle) ownKey(t *testing.T, seed byte) bundle {
	b.w = audit.NewWriter(testenv.AppPool(t), b.mongo, b.store, bytes.Repeat([]byte{seed}, 32), audit.WithPlatformDatabase(b.platform.Name()))
	return b
}

// runShipper runs a background shipper until the test ends.
func runShipper(t *testing.T, s *audit.Shipper) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

// A background shipper leaves a chain alone while events keep coming (a workflow's steps) and
// ships them together once the chain has been quiet for Quiet; readers never wait.
func TestBackgroundShipperWaitsForAQuietChain(t *testing.T) {
	t.Parallel()
	b := setup(t).ownKey(t, 21)
	ctx, id := b.tenantCtx(t, "quiet")
	s := b.w.NewShipper(testenv.Logger(t))
	s.Interval, s.Quiet, s.MaxDelay = 50*time.Millisecond, 2*time.Second, time.Hour
	runShipper(t, s)

	const writes = 8
	for i := range writes {
		_, err := b.w.Tenant(ctx, event(fmt.Sprintf("q%d", i), "tenant.update", time.Now()))
		require.NoError(t, err)
		time.Sleep(100 * time.Millisecond) // well inside Quiet: the chain stays busy
	}
	require.Zero(t, b.shipped(t, id), "nothing ships while the chain is busy")
	require.Eventually(t, func() bool { return b.shipped(t, id) == writes }, 30*time.Second, 50*time.Millisecond,
		"every event ships once the chain is quiet")
	rep := b.verify(t, ctx)
	require.True(t, rep.OK, "%+v", rep.FirstBroken)
	require.EqualValues(t, writes, rep.Checked)

	// A reader ships at once, quiet or not.
	_, err := b.w.Tenant(ctx, event("reader", "tenant.update", time.Now()))
	require.NoError(t, err)
	require.Len(t, b.stored(t, id), writes+1)
}

// A chain written without pause still ships once its oldest waiting event is MaxDelay old.
func TestBackgroundShipperShipsABusyChainAfterMaxDelay(t *testing.T) {
	t.Parallel()
	b := setup(t).ownKey(t, 22)
	ctx, id := b.tenantCtx(t, "busy")
	s := b.w.NewShipper(testenv.Logger(t))
	s.Interval, s.Quiet, s.MaxDelay = 50*time.Millisecond, time.Hour, 500*time.Millisecond
	runShipper(t, s)

	deadline := time.Now().Add(30 * time.Second)
	for i := 0; b.shipped(t, id) == 0; i++ {
		require.True(t, time.Now().Before(deadline), "a busy chain never shipped")
		_, err := b.w.Tenant(ctx, event(fmt.Sprintf("b%d", i), "tenant.update", time.Now()))
		require.NoError(t, err)
		time.Sleep(50 * time.Millisecond)
	}
}

// Once provisioning has checked a tenant database's seq index (SeqIndexChecked), shipping to it
// sends no index command; without that, the first shipment checks the index itself.
func TestSeqIndexCheckedSparesTheShippersCheck(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	indexCommands := map[string]int{} // database -> createIndexes and listIndexes sent
	monitor := &mongoevent.CommandMonitor{Started: func(_ context.Context, e *mongoevent.CommandStartedEvent) {
		if e.CommandName == "createIndexes" || e.CommandName == "listIndexes" {
			mu.Lock()
			indexCommands[e.DatabaseName]++
			mu.Unlock()
		}
	}}
	client, err := mongo.Connect(context.Background(), options.Client().ApplyURI(testenv.MongoURI).SetMonitor(monitor))
	require.NoError(t, err)
	t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	b := setup(t)
	store := tenantmongo.New(client)
	w := audit.NewWriter(testenv.AppPool(t), client, store, chainKey, audit.WithPlatformDatabase(b.platform.Name()))

	counts := map[bool]int{}
	for _, checked := range []bool{true, false} {
		ctx, id := b.tenantCtx(t, "seqidx")
		_, err := store.Provision(ctx)
		require.NoError(t, err)
		db := "tenant_" + id
		if checked {
			w.SeqIndexChecked(db)
		}
		mu.Lock()
		before := indexCommands[db]
		mu.Unlock()
		_, err = w.Tenant(ctx, event("e1", "tenant.update", time.Now()))
		require.NoError(t, err)
		c, err := w.TenantChain(ctx)
		require.NoError(t, err)
		n, err := c.Ship(context.Background())
		require.NoError(t, err)
		require.Equal(t, 1, n)
		mu.Lock()
		counts[checked] = indexCommands[db] - before
		mu.Unlock()
	}
	require.Zero(t, counts[true], "checked by provisioning: no index command")
	require.Positive(t, counts[false], "unchecked: the shipper checks the index itself")
}

// roundTrips counts what a pool sends PostgreSQL: each statement and each pipelined batch is
// one round trip.
type roundTrips struct{ n atomic.Int32 }

func (r *roundTrips) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	r.n.Add(1)
	return ctx
}
func (r *roundTrips) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
func (r *roundTrips) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	r.n.Add(1)
	return ctx
}
func (r *roundTrips) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}
func (r *roundTrips) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData)     {}

// Shipping a batch of a chain that shipped before costs a fixed number of round trips however
// many events it carries: the backlog probe, then two transactions (sequence; ship) of four
// each (BEGIN, the head lock with the read of the waiting rows, the batch of updates, COMMIT).
// A new chain's first batch takes one more, which creates the head, locks it and reads.
func TestShippingABatchTakesNineRoundTrips(t *testing.T) {
	t.Parallel()
	trips := &roundTrips{}
	pool := testenv.TracedAppPool(t, trips)
	b := setup(t)
	// A chain key of its own: other tests' background shippers leave this chain alone.
	w := audit.NewWriter(pool, b.mongo, b.store, bytes.Repeat([]byte{23}, 32), audit.WithPlatformDatabase(b.platform.Name()))
	ctx, _ := b.tenantCtx(t, "trips")
	_, err := b.store.Provision(ctx)
	require.NoError(t, err)
	c, err := w.TenantChain(ctx)
	require.NoError(t, err)
	ship := func(events ...string) int32 {
		for _, id := range events {
			_, err := w.Tenant(ctx, event(id, "tenant.update", time.Now()))
			require.NoError(t, err)
		}
		trips.n.Store(0)
		n, err := c.Ship(context.Background())
		require.NoError(t, err)
		require.Equal(t, len(events), n)
		return trips.n.Load()
	}
	require.EqualValues(t, 10, ship("first"), "a new chain: one batch more, which creates its head")
	require.EqualValues(t, 9, ship("a"), "one event")
	require.EqualValues(t, 9, ship("b", "c", "d", "e", "f"), "five events")
}
