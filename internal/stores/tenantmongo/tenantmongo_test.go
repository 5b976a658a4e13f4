package tenantmongo_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/event"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	"github.com/misybot/tenancy/internal/model/tenant"
	"github.com/misybot/tenancy/internal/stores/tenantmongo"
	"github.com/misybot/tenancy/internal/stores/tenantredis"
	"github.com/misybot/tenancy/internal/testkit/testenv"
)

// dropAfter drops the tenants' databases when the test ends, whatever happened.
func dropAfter(t *testing.T, client *mongo.Client, ids ...string) {
	t.Helper()
	t.Cleanup(func() {
		for _, id := range ids {
			name, err := tenantmongo.DatabaseName(id)
			if err == nil {
				_ = client.Database(name).Drop(context.Background())
			}
		}
	})
}

// snapshot describes a tenant database: for each collection (sorted), its indexes as
// "name keys unique=…" (sorted). It is what "the same end state" means in these tests.
func snapshot(t *testing.T, client *mongo.Client, id string) map[string][]string {
	t.Helper()
	ctx := context.Background()
	name, err := tenantmongo.DatabaseName(id)
	require.NoError(t, err)
	db := client.Database(name)
	colls, err := db.ListCollectionNames(ctx, bson.D{})
	require.NoError(t, err)
	out := map[string][]string{}
	for _, c := range colls {
		specs, err := db.Collection(c).Indexes().ListSpecifications(ctx)
		require.NoError(t, err)
		var ixs []string
		for _, s := range specs {
			ixs = append(ixs, fmt.Sprintf("%s %s unique=%t", s.Name, s.KeysDocument, s.Unique != nil && *s.Unique))
		}
		slices.Sort(ixs)
		out[c] = ixs
	}
	return out
}

// wantLayout is the end state of a provisioned database, written out by hand so that a layout
// change in the code has to be made here too, on purpose.
var wantLayout = map[string][]string{
	"conversations": {
		`_id_ {"_id": {"$numberInt":"1"}} unique=false`,
		`updatedAt_-1 {"updatedAt": {"$numberInt":"-1"}} unique=false`,
	},
	"messages": {
		`_id_ {"_id": {"$numberInt":"1"}} unique=false`,
		`conversationId_1_createdAt_1 {"conversationId": {"$numberInt":"1"},"createdAt": {"$numberInt":"1"}} unique=false`,
	},
	"audit_events": {
		`_id_ {"_id": {"$numberInt":"1"}} unique=false`,
		`action_1_at_1 {"action": {"$numberInt":"1"},"at": {"$numberInt":"1"}} unique=false`,
		`at_1 {"at": {"$numberInt":"1"}} unique=false`,
		`seq_1 {"seq": {"$numberInt":"1"}} unique=true`,
	},
}

func TestDatabaseName(t *testing.T) {
	t.Parallel()
	name, err := tenantmongo.DatabaseName("acme")
	require.NoError(t, err)
	require.Equal(t, "tenant_acme", name)

	// An id that extends another gives another name (compared whole, never as a prefix).
	name2, err := tenantmongo.DatabaseName("acme2")
	require.NoError(t, err)
	require.NotEqual(t, name, name2)

	// The longest id stays inside MongoDB's limit.
	name, err = tenantmongo.DatabaseName("a" + strings.Repeat("b", tenant.IDMaxLen-1))
	require.NoError(t, err)
	require.LessOrEqual(t, len(name), tenantmongo.MaxDatabaseNameLen)

	for _, bad := range []string{"", "ab", "Acme", "acme_x", "a.b", "a/b", "a$b", "a b", "admin.x", "-acme", strings.Repeat("a", tenant.IDMaxLen+1)} {
		_, err := tenantmongo.DatabaseName(bad)
		require.ErrorIs(t, err, tenant.ErrInvalidID, "%q", bad)
	}
}

func TestProvisionTwiceGivesTheSameState(t *testing.T) {
	t.Parallel()
	client := testenv.MongoClient(t)
	store := tenantmongo.New(client)
	id := testenv.TenantID("prov")
	dropAfter(t, client, id)
	ctx := tenant.WithID(context.Background(), id)

	rep, err := store.Provision(ctx)
	require.NoError(t, err)
	require.Equal(t, tenantmongo.ProvisionReport{
		Database:           "tenant_" + id,
		CollectionsCreated: []string{"conversations", "messages", "audit_events"},
		IndexesCreated: []string{"conversations.updatedAt_-1", "messages.conversationId_1_createdAt_1",
			"audit_events.seq_1", "audit_events.at_1", "audit_events.action_1_at_1"},
	}, rep)
	require.Equal(t, wantLayout, snapshot(t, client, id))

	rep, err = store.Provision(ctx)
	require.NoError(t, err)
	require.Equal(t, tenantmongo.ProvisionReport{
		Database: "tenant_" + id, CollectionsCreated: []string{}, IndexesCreated: []string{}, AlreadyPresent: 8,
	}, rep)
	require.Equal(t, wantLayout, snapshot(t, client, id))

	// The unique index is really unique (FerretDB answers "ok" to index options it ignores).
	coll, err := store.Collection(ctx, tenantmongo.AuditEvents)
	require.NoError(t, err)
	_, err = coll.InsertOne(ctx, bson.M{"seq": 1})
	require.NoError(t, err)
	_, err = coll.InsertOne(ctx, bson.M{"seq": 1})
	require.True(t, mongo.IsDuplicateKeyError(err), "%v", err)
}

// A crash half-way leaves some collections and indexes; the next run completes exactly those.
func TestProvisionCompletesAfterAHalfWayCrash(t *testing.T) {
	t.Parallel()
	client := testenv.MongoClient(t)
	store := tenantmongo.New(client)
	id := testenv.TenantID("half")
	dropAfter(t, client, id)
	ctx := tenant.WithID(context.Background(), id)

	_, err := store.Provision(ctx)
	require.NoError(t, err)
	db, err := store.Database(ctx)
	require.NoError(t, err)
	require.NoError(t, db.Collection(tenantmongo.Messages).Drop(ctx))
	_, err = db.Collection(tenantmongo.AuditEvents).Indexes().DropOne(ctx, "action_1_at_1")
	require.NoError(t, err)
	require.NotEqual(t, wantLayout, snapshot(t, client, id))

	rep, err := store.Provision(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"messages"}, rep.CollectionsCreated)
	require.Equal(t, []string{"messages.conversationId_1_createdAt_1", "audit_events.action_1_at_1"}, rep.IndexesCreated)
	require.Equal(t, 5, rep.AlreadyPresent) // 2 collections, 3 indexes
	require.Equal(t, wantLayout, snapshot(t, client, id))
}

// A run cancelled while it creates indexes (the context is cancelled when the second
// createIndexes command goes out) fails; the next run reaches the same end state as an
// uninterrupted one.
func TestProvisionCompletesAfterCancellation(t *testing.T) {
	t.Parallel()
	var (
		cancelOn atomic.Pointer[context.CancelFunc]
		creates  atomic.Int32
	)
	monitor := &event.CommandMonitor{Started: func(_ context.Context, e *event.CommandStartedEvent) {
		if e.CommandName == "createIndexes" && creates.Add(1) == 2 {
			if c := cancelOn.Load(); c != nil {
				(*c)()
			}
		}
	}}
	client, err := mongo.Connect(context.Background(), options.Client().ApplyURI(testenv.MongoURI).SetMonitor(monitor))
	require.NoError(t, err)
	t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	testenv.MongoClient(t) // fails with the hint when the server is down
	store := tenantmongo.New(client)
	id := testenv.TenantID("cancel")
	dropAfter(t, client, id)

	ctx, cancel := context.WithCancel(tenant.WithID(context.Background(), id))
	defer cancel()
	cancelOn.Store(&cancel)
	_, err = store.Provision(ctx)
	require.ErrorIs(t, err, context.Canceled)
	require.NotEqual(t, wantLayout, snapshot(t, client, id), "the cancelled run must have stopped half-way")

	ctx = tenant.WithID(context.Background(), id)
	rep, err := store.Provision(ctx)
	require.NoError(t, err)
	require.NotContains(t, rep.CollectionsCreated, tenantmongo.Conversations, "made by the first createIndexes, before the cancellation")
	require.Contains(t, rep.CollectionsCreated, tenantmongo.AuditEvents, "the last collection, never reached")
	require.Contains(t, rep.IndexesCreated, "audit_events.seq_1")
	require.Equal(t, wantLayout, snapshot(t, client, id))
}

// Two workers provisioning the same tenant at once (a retry overlapping a slow first attempt)
// both succeed: "already exists" from the other one counts as success.
func TestProvisionConcurrentRunsBothSucceed(t *testing.T) {
	t.Parallel()
	client := testenv.MongoClient(t)
	store := tenantmongo.New(client)
	id := testenv.TenantID("race")
	dropAfter(t, client, id)
	ctx := tenant.WithID(context.Background(), id)

	const runs = 4
	var (
		wg      sync.WaitGroup
		reports [runs]tenantmongo.ProvisionReport
		errs    [runs]error
	)
	for i := range runs {
		wg.Go(func() { reports[i], errs[i] = store.Provision(ctx) })
	}
	wg.Wait() // before any assertion: a run still going after the cleanup would recreate the database
	created := map[string]int{}
	for i := range runs {
		require.NoError(t, errs[i])
		for _, c := range reports[i].CollectionsCreated {
			created[c]++
		}
	}
	require.Equal(t, wantLayout, snapshot(t, client, id))
	for _, c := range tenantmongo.Collections() {
		require.Equal(t, 1, created[c], "%s created by exactly one run", c)
	}
}

// An index that exists under one of our names with another definition is a permanent error,
// not silently accepted (FerretDB itself would answer "ok" to our createIndexes).
func TestProvisionRefusesAConflictingIndex(t *testing.T) {
	t.Parallel()
	client := testenv.MongoClient(t)
	store := tenantmongo.New(client)
	id := testenv.TenantID("conflict")
	dropAfter(t, client, id)
	ctx := tenant.WithID(context.Background(), id)

	coll, err := store.Collection(ctx, tenantmongo.AuditEvents)
	require.NoError(t, err)
	_, err = coll.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "seq", Value: 1}}, Options: options.Index().SetName("seq_1")})
	require.NoError(t, err)
	_, err = store.Provision(ctx)
	require.ErrorIs(t, err, tenantmongo.ErrIndexConflict)
}

// Every tenant-scoped accessor fails closed without a valid tenant in the context.
func TestAccessorsRefuseAContextWithoutATenant(t *testing.T) {
	t.Parallel()
	store := tenantmongo.New(testenv.MongoClient(t))
	for _, ctx := range []context.Context{
		context.Background(),
		tenant.WithID(context.Background(), ""),
		tenant.WithID(context.Background(), "Acme"),
		tenant.WithID(context.Background(), "acme.admin"),
		tenant.WithID(context.Background(), "acme*"),
	} {
		_, err := store.Database(ctx)
		require.ErrorIs(t, err, tenant.ErrNoTenant)
		_, err = store.Collection(ctx, tenantmongo.Conversations)
		require.ErrorIs(t, err, tenant.ErrNoTenant)
		_, err = store.Provision(ctx)
		require.ErrorIs(t, err, tenant.ErrNoTenant)
		_, err = store.Deprovision(ctx)
		require.ErrorIs(t, err, tenant.ErrNoTenant)
		_, err = store.Exists(ctx)
		require.ErrorIs(t, err, tenant.ErrNoTenant)
	}
	_, err := store.Collection(tenant.WithID(context.Background(), "acme"), "")
	require.Error(t, err)
}

// Offboarding one tenant (its database and its Redis keys) leaves a tenant whose id extends
// its own ("acme-…" and "acme-…2") untouched, in both stores, down to the last document and
// key. It lives here rather than in tenantredis because it is the Mongo side that has the
// "Deprovision" name; the Redis side gets the same treatment in its own tests.
func TestDeprovisionSparesATenantWhoseIDExtendsIt(t *testing.T) {
	t.Parallel()
	mc, rc := testenv.MongoClient(t), testenv.RedisClient(t)
	mstore, rstore := tenantmongo.New(mc), tenantredis.New(rc)
	a := testenv.TenantID("acme")
	b := a + "2"
	dropAfter(t, mc, a, b)
	t.Cleanup(func() {
		for _, id := range []string{a, b} {
			_, _ = rstore.Purge(tenant.WithID(context.Background(), id), tenantredis.PurgeProgress{}, 0, nil)
		}
	})

	docs := map[string]map[string]int{
		a: {tenantmongo.Conversations: 2, tenantmongo.Messages: 3, tenantmongo.AuditEvents: 4},
		b: {tenantmongo.Conversations: 5, tenantmongo.Messages: 6, tenantmongo.AuditEvents: 7},
	}
	for _, id := range []string{a, b} {
		ctx := tenant.WithID(context.Background(), id)
		_, err := mstore.Provision(ctx)
		require.NoError(t, err)
		for coll, n := range docs[id] {
			c, err := mstore.Collection(ctx, coll)
			require.NoError(t, err)
			for i := range n {
				_, err := c.InsertOne(ctx, bson.M{"seq": i, "owner": id, "at": time.Now()})
				require.NoError(t, err)
			}
		}
		sc, err := rstore.Scope(ctx)
		require.NoError(t, err)
		for i := range 50 {
			require.NoError(t, sc.Set(ctx, tenantredis.KindSession, fmt.Sprint("s", i), id, time.Hour))
			require.NoError(t, sc.Set(ctx, "cache", fmt.Sprint("c", i), id, 0))
		}
		require.NoError(t, rstore.WriteContext(ctx, tenantredis.ContextRecord{Status: "active", Type: "standard"}))
	}
	bLayout := snapshot(t, mc, b)
	bKeys := keysOf(t, rc, b)
	require.Len(t, bKeys, 102) // 100 keys, the context record and the key index

	ctxA := tenant.WithID(context.Background(), a)
	rep, err := mstore.Deprovision(ctxA)
	require.NoError(t, err)
	require.Equal(t, tenantmongo.DeprovisionReport{Database: "tenant_" + a, Dropped: true, Collections: 3, Documents: 9}, rep)
	prog, err := rstore.Purge(ctxA, tenantredis.PurgeProgress{}, 0, nil)
	require.NoError(t, err)
	require.Equal(t, tenantredis.PurgeProgress{Deleted: 101, Done: true}, prog)

	// A is gone from both stores.
	exists, err := mstore.Exists(ctxA)
	require.NoError(t, err)
	require.False(t, exists)
	require.Empty(t, keysOf(t, rc, a))

	// B is whole: database, indexes, every document, every key with its value.
	ctxB := tenant.WithID(context.Background(), b)
	exists, err = mstore.Exists(ctxB)
	require.NoError(t, err)
	require.True(t, exists)
	require.Equal(t, bLayout, snapshot(t, mc, b))
	for coll, n := range docs[b] {
		c, err := mstore.Collection(ctxB, coll)
		require.NoError(t, err)
		got, err := c.CountDocuments(ctxB, bson.M{"owner": b})
		require.NoError(t, err)
		require.EqualValues(t, n, got, coll)
	}
	require.Equal(t, bKeys, keysOf(t, rc, b))
	for _, k := range bKeys {
		if strings.Contains(k, ":context:") || strings.HasSuffix(k, ":_keys") {
			continue // the record is a hash, the key index a sorted set
		}
		v, err := rc.Get(ctxB, k).Result()
		require.NoError(t, err)
		require.Equal(t, b, v)
	}
	rec, err := rstore.ReadContext(ctxB)
	require.NoError(t, err)
	require.Equal(t, "active", rec.Status)

	// Again: nothing to drop, nothing to purge, both succeed.
	rep, err = mstore.Deprovision(ctxA)
	require.NoError(t, err)
	require.Equal(t, tenantmongo.DeprovisionReport{Database: "tenant_" + a}, rep)
	prog, err = rstore.Purge(ctxA, tenantredis.PurgeProgress{}, 0, nil)
	require.NoError(t, err)
	require.Equal(t, tenantredis.PurgeProgress{Done: true}, prog)
}

// keysOf lists a tenant's Redis keys, sorted, with a plain SCAN, independent of the code
// under test.
func keysOf(t *testing.T, rc *redis.Client, id string) []string {
	t.Helper()
	keys, err := scanAll(rc, "tenant:{"+id+"}:*")
	require.NoError(t, err)
	slices.Sort(keys)
	return keys
}

func scanAll(rc *redis.Client, match string) ([]string, error) {
	var out []string
	iter := rc.Scan(context.Background(), 0, match, 1000).Iterator()
	for iter.Next(context.Background()) {
		out = append(out, iter.Val())
	}
	return out, iter.Err()
}

// A fresh database costs seven commands: listCollections, then per collection createCollection
// and one createIndexes for all its indexes. The command count is what FerretDB charges.
func TestProvisionOfAFreshDatabaseSendsSevenCommands(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var sent []string
	monitor := &event.CommandMonitor{Started: func(_ context.Context, e *event.CommandStartedEvent) {
		if e.DatabaseName != "admin" {
			mu.Lock()
			sent = append(sent, e.CommandName)
			mu.Unlock()
		}
	}}
	client, err := mongo.Connect(context.Background(), options.Client().ApplyURI(testenv.MongoURI).SetMonitor(monitor))
	require.NoError(t, err)
	t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	testenv.MongoClient(t)
	id := testenv.TenantID("seven")
	dropAfter(t, client, id)

	mu.Lock()
	sent = nil
	mu.Unlock()
	_, err = tenantmongo.New(client).Provision(tenant.WithID(context.Background(), id))
	require.NoError(t, err)
	mu.Lock()
	got := slices.Clone(sent)
	mu.Unlock()
	require.Equal(t, []string{"listCollections", "create", "createIndexes", "create", "createIndexes", "create", "createIndexes"}, got)
	require.Equal(t, wantLayout, snapshot(t, client, id))
}

// Two of audit_events' indexes appear between this run's createCollection and its createIndexes
// (another attempt racing it): the batch is not trusted (FerretDB v1 mis-handles a batch in
// which two or more exist), and the one-by-one path completes and checks the layout.
func TestProvisionCompletesWhenIndexesAppearUnderItsBatch(t *testing.T) {
	t.Parallel()
	other := testenv.MongoClient(t)
	id := testenv.TenantID("batch")
	dropAfter(t, other, id)
	dbName, err := tenantmongo.DatabaseName(id)
	require.NoError(t, err)

	var raced atomic.Bool
	monitor := &event.CommandMonitor{Started: func(ctx context.Context, e *event.CommandStartedEvent) {
		if e.CommandName != "createIndexes" || e.Command.Lookup("createIndexes").StringValue() != tenantmongo.AuditEvents || raced.Swap(true) {
			return
		}
		coll := other.Database(dbName).Collection(tenantmongo.AuditEvents)
		_, err := coll.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "seq", Value: 1}}, Options: options.Index().SetName("seq_1").SetUnique(true)})
		require.NoError(t, err)
		_, err = coll.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "at", Value: 1}}, Options: options.Index().SetName("at_1")})
		require.NoError(t, err)
	}}
	client, err := mongo.Connect(context.Background(), options.Client().ApplyURI(testenv.MongoURI).SetMonitor(monitor))
	require.NoError(t, err)
	t.Cleanup(func() { _ = client.Disconnect(context.Background()) })

	rep, err := tenantmongo.New(client).Provision(tenant.WithID(context.Background(), id))
	require.NoError(t, err)
	require.True(t, raced.Load(), "the race was staged")
	require.Equal(t, wantLayout, snapshot(t, other, id))
	require.NotContains(t, rep.IndexesCreated, "audit_events.seq_1", "made by the other attempt")
	require.Contains(t, rep.CollectionsCreated, tenantmongo.AuditEvents)
}
