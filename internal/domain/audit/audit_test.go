package audit_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	"github.com/misybot/tenancy/internal/domain/audit"
	"github.com/misybot/tenancy/internal/domain/registry"
	"github.com/misybot/tenancy/internal/model/tenant"
	"github.com/misybot/tenancy/internal/stores/rls"
	"github.com/misybot/tenancy/internal/stores/tenantmongo"
	"github.com/misybot/tenancy/internal/testkit/testenv"
)

var chainKey = bytes.Repeat([]byte{9}, 32)

type bundle struct {
	w     *audit.Writer
	mongo *mongo.Client
	store *tenantmongo.Store
	// platform is this test's own platform database (see audit.WithPlatformDatabase).
	platform *mongo.Database
}

func setup(t *testing.T) bundle {
	t.Helper()
	c := testenv.MongoClient(t)
	store := tenantmongo.New(c)
	db := strings.ReplaceAll(testenv.TenantID("platform_t"), "-", "_")
	t.Cleanup(func() { _ = c.Database(db).Drop(context.Background()) })
	return bundle{w: audit.NewWriter(testenv.AppPool(t), c, store, chainKey, audit.WithPlatformDatabase(db)), mongo: c, store: store, platform: c.Database(db)}
}

// tenantCtx returns a context for a new tenant whose database is dropped when the test ends.
func (b bundle) tenantCtx(t testing.TB, prefix string) (context.Context, string) {
	t.Helper()
	id := testenv.TenantID(prefix)
	t.Cleanup(func() { _ = b.mongo.Database("tenant_" + id).Drop(context.Background()) })
	return tenant.WithID(context.Background(), id), id
}

// events is the tenant's events collection in MongoDB, after shipping what waits in the outbox.
func (b bundle) events(t *testing.T, id string) *mongo.Collection {
	b.ship(t, b.tenantChain(t, id))
	return b.mongo.Database("tenant_" + id).Collection(audit.Collection)
}

func event(id, action string, at time.Time) audit.Event {
	return audit.Event{
		ID: id, Actor: audit.Actor{Type: audit.ActorOperator, ID: "ops"}, Action: action,
		Resource: "tenant/x", Outcome: audit.OutcomeSuccess, Details: map[string]string{"b": "2", "a": "1"}, At: at,
	}
}

// stored reads a tenant chain's events by seq.
func (b bundle) stored(t *testing.T, id string) []audit.Event {
	t.Helper()
	cur, err := b.events(t, id).Find(context.Background(), bson.D{}, options.Find().SetSort(bson.D{{Key: "seq", Value: 1}}))
	require.NoError(t, err)
	var out []audit.Event
	require.NoError(t, cur.All(context.Background(), &out))
	return out
}

func (b bundle) verify(t *testing.T, ctx context.Context) audit.Report {
	t.Helper()
	c, err := b.w.TenantChain(ctx)
	require.NoError(t, err)
	rep, err := c.Verify(ctx)
	require.NoError(t, err)
	return rep
}

func TestEventsFormAChainAndRetriesDoNotDuplicate(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx, id := b.tenantCtx(t, "chain")
	now := time.Now()
	for i := 1; i <= 4; i++ {
		ok, err := b.w.Tenant(ctx, event(fmt.Sprintf("e%d", i), "tenant.update", now))
		require.NoError(t, err)
		require.True(t, ok)
	}
	// A retried write of e2 (another time, as a retry after a crash might build it) is found.
	ok, err := b.w.Tenant(ctx, event("e2", "tenant.update", now.Add(time.Minute)))
	require.NoError(t, err)
	require.False(t, ok, "already written")

	got := b.stored(t, id)
	require.Len(t, got, 4, "the retry took no seq")
	for i, e := range got {
		require.Equal(t, int64(i+1), e.Seq)
		require.Equal(t, id, e.TenantID)
		require.Len(t, e.Hash, 64)
		if i == 0 {
			require.Empty(t, e.PrevHash)
		} else {
			require.Equal(t, got[i-1].Hash, e.PrevHash)
		}
	}
	rep := b.verify(t, ctx)
	require.True(t, rep.OK, "%+v", rep.FirstBroken)
	require.EqualValues(t, 4, rep.Checked)
	require.EqualValues(t, 4, rep.HeadSeq)

	_, err = b.w.Tenant(ctx, audit.Event{Action: "x"})
	require.Error(t, err, "an event without an id is refused")
	_, err = b.w.Tenant(ctx, audit.Event{ID: "other", TenantID: "someone-else"})
	require.Error(t, err, "an event for another tenant is refused")
}

// Writers racing for the head never fork the chain: every event gets its own seq, seqs have no
// gap, and the chain verifies. Each id is also written by two writers at once: one event each.
func TestConcurrentWritersDoNotFork(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx, id := b.tenantCtx(t, "race")
	const writers, each = 8, 6
	var wg sync.WaitGroup
	errs := make(chan error, 2*writers*each)
	for w := range 2 * writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				// Writers w and w+writers write the same ids.
				_, err := b.w.Tenant(ctx, event(fmt.Sprintf("w%d-%d", w%writers, i), "race", time.Now()))
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	got := b.stored(t, id)
	require.Len(t, got, writers*each)
	seen := map[string]bool{}
	for i, e := range got {
		require.Equal(t, int64(i+1), e.Seq)
		require.False(t, seen[e.ID], "duplicate %s", e.ID)
		seen[e.ID] = true
	}
	rep := b.verify(t, ctx)
	require.True(t, rep.OK, "%+v", rep.FirstBroken)
	require.EqualValues(t, writers*each, rep.Checked)
}

// Verify names the first broken link of a chain edited in the database: a changed field, an
// added field, a deleted event, two events whose seqs were swapped, an event copied from
// another tenant, and a hash recomputed without the key.
func TestVerifyFindsTampering(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		tamper  func(t *testing.T, coll *mongo.Collection, b bundle)
		seq     int64
		problem string
	}{
		"edited field": {func(t *testing.T, coll *mongo.Collection, _ bundle) {
			_, err := coll.UpdateOne(context.Background(), bson.D{{Key: "seq", Value: 3}}, bson.D{{Key: "$set", Value: bson.D{{Key: "outcome", Value: "failure"}}}})
			require.NoError(t, err)
		}, 3, audit.ProblemEdited},
		"edited detail": {func(t *testing.T, coll *mongo.Collection, _ bundle) {
			_, err := coll.UpdateOne(context.Background(), bson.D{{Key: "seq", Value: 2}}, bson.D{{Key: "$set", Value: bson.D{{Key: "details.a", Value: "9"}}}})
			require.NoError(t, err)
		}, 2, audit.ProblemEdited},
		"added field": {func(t *testing.T, coll *mongo.Collection, _ bundle) {
			_, err := coll.UpdateOne(context.Background(), bson.D{{Key: "seq", Value: 4}}, bson.D{{Key: "$set", Value: bson.D{{Key: "note", Value: "x"}}}})
			require.NoError(t, err)
		}, 4, audit.ProblemEdited},
		"deleted": {func(t *testing.T, coll *mongo.Collection, _ bundle) {
			_, err := coll.DeleteOne(context.Background(), bson.D{{Key: "seq", Value: 3}})
			require.NoError(t, err)
		}, 3, audit.ProblemMissing},
		"deleted first": {func(t *testing.T, coll *mongo.Collection, _ bundle) {
			_, err := coll.DeleteOne(context.Background(), bson.D{{Key: "seq", Value: 1}})
			require.NoError(t, err)
		}, 1, audit.ProblemMissing},
		"swapped": {func(t *testing.T, coll *mongo.Collection, _ bundle) {
			ctx := context.Background()
			set := func(from, to int64) {
				_, err := coll.UpdateOne(ctx, bson.D{{Key: "seq", Value: from}}, bson.D{{Key: "$set", Value: bson.D{{Key: "seq", Value: to}}}})
				require.NoError(t, err)
			}
			set(2, -1) // through a free value: seq is unique
			set(3, 2)
			set(-1, 3)
		}, 2, audit.ProblemReordered},
		"copied from another tenant": {func(t *testing.T, coll *mongo.Collection, b bundle) {
			octx, oid := b.tenantCtx(t, "other")
			_, err := b.w.Tenant(octx, event("foreign", "tenant.update", time.Now()))
			require.NoError(t, err)
			var foreign bson.M
			require.NoError(t, b.events(t, oid).FindOne(context.Background(), bson.D{}).Decode(&foreign))
			ctx := context.Background()
			_, err = coll.DeleteOne(ctx, bson.D{{Key: "seq", Value: 1}})
			require.NoError(t, err)
			_, err = coll.InsertOne(ctx, foreign) // seq 1, a valid hash in its own chain
			require.NoError(t, err)
		}, 1, audit.ProblemEdited},
		"rehashed without the key": {func(t *testing.T, coll *mongo.Collection, _ bundle) {
			_, err := coll.UpdateOne(context.Background(), bson.D{{Key: "seq", Value: 5}}, bson.D{{Key: "$set", Value: bson.D{
				{Key: "action", Value: "covered.up"}, {Key: "hash", Value: "0000000000000000000000000000000000000000000000000000000000000000"}}}})
			require.NoError(t, err)
		}, 5, audit.ProblemEdited},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			ctx, id := b.tenantCtx(t, "tamper")
			for i := 1; i <= 6; i++ {
				_, err := b.w.Tenant(ctx, event(fmt.Sprintf("e%d", i), "tenant.update", time.Now()))
				require.NoError(t, err)
			}
			require.True(t, b.verify(t, ctx).OK, "intact before the edit")
			tc.tamper(t, b.events(t, id), b)
			rep := b.verify(t, ctx)
			require.False(t, rep.OK)
			require.NotNil(t, rep.FirstBroken)
			require.Equal(t, tc.seq, rep.FirstBroken.Seq, "%+v", rep.FirstBroken)
			require.Equal(t, tc.problem, rep.FirstBroken.Problem, "%+v", rep.FirstBroken)
			require.EqualValues(t, tc.seq-1, rep.Checked, "everything before the break verified")
		})
	}
}

// A chain is only as good as its key: the same events verified under another key fail.
func TestVerifyNeedsTheKey(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx, _ := b.tenantCtx(t, "key")
	_, err := b.w.Tenant(ctx, event("e1", "a", time.Now()))
	require.NoError(t, err)
	mine, err := b.w.TenantChain(ctx)
	require.NoError(t, err)
	_, err = mine.Ship(ctx)
	require.NoError(t, err)
	other := audit.NewWriter(testenv.AppPool(t), b.mongo, b.store, bytes.Repeat([]byte{8}, 32))
	c, err := other.TenantChain(ctx)
	require.NoError(t, err)
	rep, err := c.Verify(ctx)
	require.NoError(t, err)
	require.False(t, rep.OK)
	require.Equal(t, audit.ProblemEdited, rep.FirstBroken.Problem)
}

// Record writes into the tenant's chain while the tenant exists and is not being offboarded
// (before its database exists too: the event ships once it does), into the platform chain
// otherwise, and never into both for one id.
func TestRecordRoutes(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	_, id := b.tenantCtx(t, "route")
	uniq := testenv.TenantID("ev")
	inPlatform := func(eid string) bool {
		b.ship(t, b.w.PlatformChain())
		n, err := b.platform.Collection(audit.Collection).CountDocuments(ctx, bson.D{{Key: "_id", Value: eid}})
		require.NoError(t, err)
		return n == 1
	}
	inTenant := func(eid string) bool {
		b.ship(t, b.tenantChain(t, id))
		n, err := b.events(t, id).CountDocuments(ctx, bson.D{{Key: "_id", Value: eid}})
		require.NoError(t, err)
		return n == 1
	}
	rec := func(eid string) bool {
		e := event(eid, "route", time.Now())
		e.TenantID = id
		ok, err := b.w.Record(ctx, e)
		require.NoError(t, err)
		return ok
	}

	// Unknown to the registry: platform.
	require.True(t, rec(uniq+"-1"))
	require.True(t, inPlatform(uniq+"-1"))
	require.False(t, inTenant(uniq+"-1"))

	// Registered (pending, no database yet): the tenant's own chain.
	registerTenant(t, id, tenant.StatusPending)
	require.True(t, rec(uniq+"-2"))
	require.True(t, inTenant(uniq+"-2"))
	require.False(t, inPlatform(uniq+"-2"))
	for _, s := range []tenant.Status{tenant.StatusOnboarding, tenant.StatusActive, tenant.StatusSuspended, tenant.StatusFailed} {
		setStatus(t, id, s)
		eid := uniq + "-" + string(s)
		require.True(t, rec(eid))
		require.True(t, inTenant(eid), s)
		require.False(t, inPlatform(eid), s)
	}
	for _, s := range []tenant.Status{tenant.StatusOffboarding, tenant.StatusOffboarded} {
		setStatus(t, id, s)
		eid := uniq + "-" + string(s)
		require.True(t, rec(eid))
		require.True(t, inPlatform(eid), s)
		require.False(t, inTenant(eid), s)
	}

	// A retry whose routing differs from the first attempt's finds the event where it went.
	require.False(t, rec(uniq+"-2"), "written in the tenant chain, retried while offboarding")
	setStatus(t, id, tenant.StatusActive)
	require.False(t, rec(uniq+"-1"), "written in the platform chain, retried while active")
	require.False(t, inTenant(uniq+"-1"))
}

// The platform chain has its indexes, takes each event once, and verifies.
func TestPlatformChain(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	require.NoError(t, b.w.EnsurePlatformIndexes(ctx))
	require.NoError(t, b.w.EnsurePlatformIndexes(ctx), "idempotent")
	eid := testenv.TenantID("plat")
	ok, err := b.w.Platform(ctx, event(eid, "platform.test", time.Now()))
	require.NoError(t, err)
	require.True(t, ok)
	ok, err = b.w.Platform(ctx, event(eid, "platform.test", time.Now()))
	require.NoError(t, err)
	require.False(t, ok)

	specs, err := b.platform.Collection(audit.Collection).Indexes().ListSpecifications(ctx)
	require.NoError(t, err)
	names := map[string]bool{}
	for _, s := range specs {
		names[s.Name] = true
		if s.Name == "seq_1" {
			require.True(t, s.Unique != nil && *s.Unique)
		}
	}
	for _, n := range []string{"seq_1", "at_1", "action_1_at_1", "tenantId_1_seq_1"} {
		require.True(t, names[n], n)
	}
	list, _, err := b.w.PlatformChain().List(ctx, audit.Query{Action: "platform.test", Limit: 1, Desc: true})
	require.NoError(t, err)
	require.Len(t, list, 1)
	rep, err := b.w.PlatformChain().Verify(ctx)
	require.NoError(t, err)
	require.True(t, rep.OK, "%+v", rep.FirstBroken)
	require.GreaterOrEqual(t, rep.HeadSeq, list[0].Seq)
}

func TestPlatformDatabaseName(t *testing.T) {
	t.Parallel()
	require.NoError(t, audit.ValidPlatformDatabase("platform"))
	for _, bad := range []string{"", "tenant_acme", "Platform", "plat.form", "1platform", strings.Repeat("p", 64)} {
		require.Error(t, audit.ValidPlatformDatabase(bad), bad)
	}
	c := testenv.MongoClient(t)
	require.Equal(t, audit.PlatformDatabase, audit.NewWriter(testenv.AppPool(t), c, tenantmongo.New(c), chainKey).PlatformDatabaseName())
	require.Panics(t, func() {
		audit.NewWriter(testenv.AppPool(t), c, tenantmongo.New(c), chainKey, audit.WithPlatformDatabase("tenant_x"))
	})
	require.Panics(t, func() { audit.NewWriter(testenv.AppPool(t), c, tenantmongo.New(c), chainKey[:16]) })
}

// registerTenant puts a tenant in the registry of the test database, in status.
func registerTenant(t *testing.T, id string, status tenant.Status) {
	t.Helper()
	_, err := registry.New(testenv.AppPool(t)).Create(context.Background(), registry.NewTenant{
		Tenant:       tenant.Tenant{ID: id, SiteID: "s", Name: "n", ContactEmail: "a@b.co", Type: tenant.TypeStandard},
		SealedSecret: []byte{1}, SecretKeyVersion: 1,
	})
	require.NoError(t, err)
	setStatus(t, id, status)
}

func setStatus(t *testing.T, id string, status tenant.Status) {
	t.Helper()
	_, err := testenv.OwnerPool(t).Exec(context.Background(), `UPDATE tenants SET status = $2 WHERE tenant_id = $1`, id, status)
	require.NoError(t, err)
}

func (b bundle) tenantChain(t *testing.T, id string) *audit.Chain {
	t.Helper()
	c, err := b.w.TenantChain(tenant.WithID(context.Background(), id))
	require.NoError(t, err)
	return c
}

// ship moves the chain's waiting events to MongoDB, as the worker's shipper would.
func (b bundle) ship(t *testing.T, c *audit.Chain) {
	t.Helper()
	_, err := c.Ship(context.Background())
	require.NoError(t, err)
}

// Shippers racing on one chain (several processes' background shippers, and readers shipping
// before they read) while writers keep writing, and shippers killed mid-batch (their
// transaction cut by a deadline after MongoDB took part of the batch): every event reaches
// MongoDB once, with no gap, and the chain verifies.
func TestShippersRacingAndDyingMidBatch(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx, id := b.tenantCtx(t, "ship")
	registerTenant(t, id, tenant.StatusActive)
	chain := b.tenantChain(t, id)
	const writers, each = 4, 150
	var wg sync.WaitGroup
	stop := make(chan struct{})
	// Every error, however many loops the shippers make (a bounded channel filled by the
	// reader's loop would block the writers and hang the test).
	var errMu sync.Mutex
	var errs []error
	record := func(err error) {
		if err != nil {
			errMu.Lock()
			errs = append(errs, err)
			errMu.Unlock()
		}
	}
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				e := event(fmt.Sprintf("w%d-%d", w, i), "race", time.Now())
				e.TenantID = id
				_, err := b.w.Record(context.Background(), e)
				record(err)
			}
		}()
	}
	var shippers sync.WaitGroup
	for s := range 3 {
		shippers.Add(1)
		go func() {
			defer shippers.Done()
			shipper := b.w.NewShipper(testenv.Logger(t))
			for {
				select {
				case <-stop:
					return
				default:
				}
				switch s {
				case 0: // a background shipper: skips a chain another holds
					_ = shipper.ShipAll(context.Background())
				case 1: // a reader: waits for the chain
					_, err := chain.Ship(context.Background())
					record(err)
				case 2: // a shipper that dies: a deadline cuts its transaction anywhere
					dctx, cancel := context.WithTimeout(context.Background(), time.Duration(1+rand.IntN(8))*time.Millisecond)
					_, _ = chain.Ship(dctx)
					cancel()
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	shippers.Wait()
	require.Empty(t, errs)
	got := b.stored(t, id) // ships what is left
	require.Len(t, got, writers*each)
	seen := map[string]bool{}
	for i, e := range got {
		require.EqualValues(t, i+1, e.Seq, "no gap, no fork")
		require.False(t, seen[e.ID], "duplicate %s", e.ID)
		seen[e.ID] = true
	}
	rep := b.verify(t, ctx)
	require.True(t, rep.OK, "%+v", rep.FirstBroken)
	require.EqualValues(t, writers*each, rep.Checked)
	waiting, _, err := chain.Pending(ctx)
	require.NoError(t, err)
	require.Zero(t, waiting)
}

var errRollback = errors.New("roll back")

// The outbox is tenant data under row-level security: in tenant A's transaction, hand-written
// SQL sees none of B's waiting events and cannot write one for B, and an event of B cannot be
// recorded in a transaction scoped to A.
func TestOutboxIsolation(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	_, a := b.tenantCtx(t, "oa")
	_, bb := b.tenantCtx(t, "ob")
	registerTenant(t, a, tenant.StatusActive)
	registerTenant(t, bb, tenant.StatusActive)
	e := event(testenv.TenantID("secret"), "tenant.update", time.Now())
	e.TenantID = bb
	ok, err := b.w.Record(ctx, e)
	require.NoError(t, err)
	require.True(t, ok)

	pool := testenv.AppPool(t)
	err = rls.Tx(tenant.WithID(ctx, a), pool, func(tx pgx.Tx) error {
		var n int
		require.NoError(t, tx.QueryRow(ctx, `SELECT count(*) FROM audit_outbox WHERE tenant_id = $1`, bb).Scan(&n))
		require.Zero(t, n, "A sees none of B's events")
		require.NoError(t, tx.QueryRow(ctx, `SELECT count(*) FROM audit_outbox`).Scan(&n))
		require.Zero(t, n, "A sees only its own (none)")
		_, err := tx.Exec(ctx, `INSERT INTO audit_outbox (tenant_id, event_id, payload, key_id) VALUES ($1, 'forged', '\x7b7d', 'k')`, bb)
		require.ErrorContains(t, err, "row-level security", "A cannot write an event for B")
		return errRollback
	})
	require.ErrorIs(t, err, errRollback)

	err = rls.Tx(tenant.WithID(ctx, a), pool, func(tx pgx.Tx) error {
		_, err := b.w.RecordTx(ctx, tx, e)
		return err
	})
	require.ErrorContains(t, err, "in a transaction of tenant", "B's event in A's transaction is refused")

	var n int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM audit_outbox`).Scan(&n))
	require.Zero(t, n, "without a tenant, nothing is visible")
}

// Refusals of unauthenticated callers wait in the outbox like every event (MongoDB being down
// loses none), and ship as they are: no seq, no hash, outside every chain.
func TestUnauthenticatedRefusalsShipUnchained(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	claimed := testenv.TenantID("claimed")
	eid := testenv.TenantID("refusal")
	require.NoError(t, b.w.Unauthenticated(ctx, audit.Event{ID: eid, TenantID: claimed, Action: "tenant-api.get", Outcome: audit.OutcomeDenied}))
	require.NoError(t, b.w.Unauthenticated(ctx, audit.Event{ID: eid, TenantID: claimed, Action: "tenant-api.get", Outcome: audit.OutcomeDenied}), "a repeat is no error")
	log := b.w.UnauthenticatedLog()
	waiting, _, err := log.Pending(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 1, waiting, "one event, waiting in the outbox")

	n, err := log.Ship(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	var got bson.M
	require.NoError(t, b.platform.Collection(audit.UnauthenticatedCollection).FindOne(ctx, bson.D{{Key: "_id", Value: eid}}).Decode(&got))
	require.Equal(t, audit.ActorUnauthenticated, got["actor"].(bson.M)["type"])
	require.Equal(t, claimed, got["details"].(bson.M)["claimedTenantId"])
	require.NotContains(t, got, "seq")
	require.NotContains(t, got, "hash")
	require.Equal(t, "", got["tenantId"], "what the caller claimed is a detail, not a tenant")
	specs, err := b.platform.Collection(audit.UnauthenticatedCollection).Indexes().ListSpecifications(ctx)
	require.NoError(t, err)
	for _, s := range specs {
		require.NotEqual(t, "seq_1", s.Name, "no chain index on the unchained log")
	}
}

// Across a master key rotation a chain keeps verifying: events record the version of the key
// that MAC'd them; events enqueued by a process of the old version and shipped by one of the
// new are MAC'd with the old key; a process that lacks a version names it instead of passing.
func TestChainVerifiesAcrossMasterKeyVersions(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx, id := b.tenantCtx(t, "kv")
	key2 := bytes.Repeat([]byte{10}, 32)
	both := audit.NewWriter(testenv.AppPool(t), b.mongo, b.store, key2, audit.WithPlatformDatabase(b.platform.Name()),
		audit.WithKeyring(2, map[int][]byte{1: chainKey, 2: key2}))
	write := func(w *audit.Writer, eid string) {
		_, err := w.Tenant(ctx, event(eid, "tenant.update", time.Now()))
		require.NoError(t, err)
	}
	write(b.w, "old-1")
	b.ship(t, b.tenantChain(t, id))
	write(b.w, "old-2") // enqueued by a version-1 process, shipped by a version-2 one
	write(both, "new-1")
	c, err := both.TenantChain(ctx)
	require.NoError(t, err)
	rep, err := c.Verify(ctx)
	require.NoError(t, err)
	require.True(t, rep.OK, "%+v", rep.FirstBroken)
	require.EqualValues(t, 3, rep.Checked)
	got := b.stored(t, id)
	require.Equal(t, []int{0, 0, 2}, []int{got[0].KeyVersion, got[1].KeyVersion, got[2].KeyVersion})

	old, err := b.w.TenantChain(ctx)
	require.NoError(t, err)
	rep, err = old.Verify(ctx)
	require.NoError(t, err)
	require.False(t, rep.OK, "a process without version 2 cannot vouch for its events")
	require.Contains(t, rep.FirstBroken.Detail, "version 2")
}
