package workflows_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/bson"
	"go.temporal.io/sdk/client"

	"github.com/misybot/tenancy/activities"
	"github.com/misybot/tenancy/internal/control/lifecycle"
	"github.com/misybot/tenancy/internal/domain/decision"
	"github.com/misybot/tenancy/internal/domain/reconcile"
	"github.com/misybot/tenancy/internal/domain/registry"
	"github.com/misybot/tenancy/internal/keys/keyring"
	"github.com/misybot/tenancy/internal/keys/seal"
	"github.com/misybot/tenancy/internal/model/tenant"
	"github.com/misybot/tenancy/internal/platform/clients"
	"github.com/misybot/tenancy/internal/stores/rls"
	"github.com/misybot/tenancy/internal/stores/tenantdb"
	"github.com/misybot/tenancy/internal/stores/tenantmongo"
	"github.com/misybot/tenancy/internal/stores/tenantredis"
	"github.com/misybot/tenancy/internal/testkit/testenv"
	"github.com/misybot/tenancy/wiring"
	"github.com/misybot/tenancy/workflows"
)

// reconcileStack is a worker on a queue of its own over the real stores, and the tools a
// reconciliation test needs.
type reconcileStack struct {
	cl      *clients.Clients
	acts    *activities.Activities
	queue   string
	reports *reconcile.Reports
	rec     *lifecycle.Reconciler
}

func newReconcileStack(t testing.TB) *reconcileStack {
	t.Helper()
	pool := testenv.AppPool(t)
	mc := testenv.MongoClient(t)
	platformDB := strings.ReplaceAll(testenv.TenantID("platform_rc"), "-", "_")
	t.Cleanup(func() { _ = mc.Database(platformDB).Drop(context.Background()) })
	cl := &clients.Clients{Postgres: pool, Mongo: mc, Redis: testenv.RedisClient(t), Temporal: testenv.TemporalClient(t), AuditPlatformDatabase: platformDB}
	sealer, err := seal.New(bytes.Repeat([]byte{7}, 32))
	require.NoError(t, err)
	// The stores as the worker wires them, built here field by field.
	acts := &activities.Activities{
		Registry: registry.New(pool), Tenants: tenantdb.New(pool), Keys: keyring.New(pool, sealer),
		Mongo: tenantmongo.New(mc), Redis: tenantredis.New(cl.Redis), Audit: cl.AuditWriter(sealer), Sealer: sealer,
		ExportDir: t.TempDir(), Reports: reconcile.NewReports(pool), Decisions: decision.New(pool), Logger: testenv.Logger(t),
	}
	queue := "test-" + testenv.TenantID("rcq")
	w := wiring.Worker(cl, acts, queue)
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)
	return &reconcileStack{cl: cl, acts: acts, queue: queue, reports: reconcile.NewReports(pool), rec: lifecycle.NewReconciler(cl.Temporal, queue, decision.New(pool))}
}

// provision registers id and provisions it in every store, as onboarding does, then sets its
// status.
func (s *reconcileStack) provision(t testing.TB, ctx context.Context, id string, status tenant.Status) {
	t.Helper()
	reg := s.acts.Registry
	_, err := reg.Create(ctx, registry.NewTenant{
		Tenant: tenant.Tenant{ID: id, SiteID: "s", Name: "n", ContactEmail: "a@b.co", Type: tenant.TypeStandard,
			AllowedOrigins: []string{"https://" + id + ".test"}, Permissions: []tenant.Permission{"settings:read"}},
		SealedSecret: []byte{1}, SecretKeyVersion: 1,
	})
	require.NoError(t, err)
	_, _, err = reg.SetStatus(ctx, id, tenant.StatusActive, "test", tenant.StatusPending)
	require.NoError(t, err)
	ref := activities.TenantRef{TenantID: id}
	_, err = s.acts.EnsureKeys(ctx, ref)
	require.NoError(t, err)
	_, err = s.acts.ProvisionPostgres(ctx, ref)
	require.NoError(t, err)
	_, err = s.acts.ProvisionMongo(ctx, ref)
	require.NoError(t, err)
	_, err = s.acts.ProvisionRedis(ctx, ref)
	require.NoError(t, err)
	if status != tenant.StatusActive { // moved as TransitionStatus does: registry, then the record
		tn, _, err := reg.SetStatus(ctx, id, status, "test", tenant.StatusActive)
		require.NoError(t, err)
		_, err = s.acts.Redis.SetStatus(tenant.WithID(ctx, id), string(status), tn.UpdatedAt.UnixNano())
		require.NoError(t, err)
	}
	t.Cleanup(func() { _ = s.cl.Mongo.Database(tenantmongo.DatabasePrefix + id).Drop(context.Background()) })
}

// run starts a reconciliation of the tenants under prefix and waits for its report.
func (s *reconcileStack) run(t testing.TB, ctx context.Context, id, prefix string) (client.WorkflowRun, reconcile.Run, []reconcile.Drift) {
	t.Helper()
	wr, err := s.cl.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: s.queue}, workflows.ReconcileTenants,
		workflows.ReconcileInput{RequestedBy: "test", IDPrefix: prefix, DecisionWindow: 10 * time.Minute, PageSize: 3, TenantsPerRun: 4})
	require.NoError(t, err)
	var run reconcile.Run
	require.Eventually(t, func() bool {
		run, err = s.reports.Get(ctx, id)
		return err == nil && run.Status != reconcile.RunRunning
	}, time.Minute, 100*time.Millisecond, "report of %s", id)
	drifts, more, err := s.reports.Drifts(ctx, id, "", 1000)
	require.NoError(t, err)
	require.False(t, more)
	return wr, run, drifts
}

func driftIDs(ds []reconcile.Drift) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.ID
	}
	slices.Sort(out)
	return out
}

func driftByID(ds []reconcile.Drift, id string) reconcile.Drift {
	for _, d := range ds {
		if d.ID == id {
			return d
		}
	}
	return reconcile.Drift{}
}

// Every kind of drift injected into the real stores is reported, exactly; nothing is repaired
// before the approval; the approval repairs the safe ones and nothing else; each orphan goes
// only once a decision names it, through offboarding's purge activities, audited; and a second
// run finds nothing.
func TestReconcileFindsAndRepairsDrift(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s := newReconcileStack(t)
	p := testenv.TenantID("rc") + "-"
	ok, idx, noctx, stale, nokey, gone, ghost := p+"ok", p+"idx", p+"noctx", p+"stale", p+"nokey", p+"gone", p+"ghost"
	for _, id := range []string{ok, idx, noctx, stale, nokey} {
		s.provision(t, ctx, id, tenant.StatusActive)
	}
	s.provision(t, ctx, p+"susp", tenant.StatusSuspended)
	s.provision(t, ctx, gone, tenant.StatusOffboarded) // offboarded, but nothing was purged

	// Drift: an index dropped, a context record deleted, one whose status says suspended, a
	// data key gone; an unknown tenant's database and keys.
	mc, rdb := s.cl.Mongo, s.cl.Redis
	_, err := mc.Database(tenantmongo.DatabasePrefix+idx).Collection(tenantmongo.Messages).Indexes().DropOne(ctx, "conversationId_1_createdAt_1")
	require.NoError(t, err)
	require.NoError(t, rdb.Del(ctx, tenantredis.Key(noctx, "context", "record")).Err())
	require.NoError(t, rdb.HSet(ctx, tenantredis.Key(stale, "context", "record"), "status", "suspended").Err())
	_, err = s.acts.Keys.Destroy(tenant.WithID(ctx, nokey))
	require.NoError(t, err)
	_, err = mc.Database(tenantmongo.DatabasePrefix+ghost).Collection("conversations").InsertOne(ctx, bson.D{{Key: "_id", Value: "c1"}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = mc.Database(tenantmongo.DatabasePrefix + ghost).Drop(context.Background()) })
	require.NoError(t, rdb.Set(ctx, tenantredis.Key(ghost, "cache", "x"), "v", 0).Err())
	require.NoError(t, rdb.Set(ctx, tenantredis.Key(gone, "session", "s1"), "v", 0).Err())

	runID := "reconcile-test-" + p + "1"
	wr, run, drifts := s.run(t, ctx, runID, p)
	want := []string{
		"context_missing:" + noctx,
		"context_stale:" + stale,
		"data_key_missing:" + nokey,
		"index_missing:" + idx + ":messages.conversationId_1_createdAt_1",
		"orphan_database:" + ghost,
		"orphan_database:" + gone,
		"orphan_keys:" + ghost,
		"orphan_keys:" + gone,
		"orphan_rows:" + gone,
	}
	slices.Sort(want)
	require.Equal(t, want, driftIDs(drifts), "exactly the injected drift")
	require.Equal(t, 7, run.TenantsChecked)
	require.Equal(t, reconcile.RunReported, run.Status)
	require.Equal(t, 2+1, run.Summary.SafeOpen)
	require.Equal(t, 6, run.Summary.DecisionsOpen)
	st := driftByID(drifts, "context_stale:"+stale)
	require.Equal(t, reconcile.Critical, st.Severity, "a suspended status where the registry says active")
	require.Equal(t, "status=active", st.Expected)
	require.Equal(t, "status=suspended", st.Found)
	require.Contains(t, driftByID(drifts, "orphan_rows:"+gone).Found, "tenant_keys")
	for _, d := range drifts {
		require.Equal(t, reconcile.StateOpen, d.State, d.ID)
	}

	// Nothing is repaired before the approval.
	time.Sleep(500 * time.Millisecond)
	n, err := rdb.Exists(ctx, tenantredis.Key(noctx, "context", "record")).Result()
	require.NoError(t, err)
	require.Zero(t, n)

	// The approval repairs the safe drifts, and only those.
	require.NoError(t, s.rec.Approve(ctx, runID, lifecycle.Decider{Name: "alice", Role: "platform-admin"}))
	require.Eventually(t, func() bool {
		r, err := s.reports.Get(ctx, runID)
		return err == nil && r.Summary.SafeOpen == 0
	}, time.Minute, 100*time.Millisecond)
	drifts, _, err = s.reports.Drifts(ctx, runID, "", 1000)
	require.NoError(t, err)
	for _, d := range drifts {
		if d.Repair == reconcile.RepairSafe {
			require.Equal(t, reconcile.StateRepaired, d.State, "%s: %s", d.ID, d.Note)
			require.Equal(t, "alice", d.ResolvedBy)
		} else {
			require.Equal(t, reconcile.StateOpen, d.State, "%s is not repaired without a decision", d.ID)
		}
	}
	in, err := s.acts.Mongo.Inspect(tenant.WithID(ctx, idx))
	require.NoError(t, err)
	require.Empty(t, in.MissingIndexes)
	rec, err := s.acts.Redis.ReadContext(tenant.WithID(ctx, stale))
	require.NoError(t, err)
	require.Equal(t, "active", rec.Status)
	rec, err = s.acts.Redis.ReadContext(tenant.WithID(ctx, noctx))
	require.NoError(t, err)
	require.Equal(t, []string{"https://" + noctx + ".test"}, rec.AllowedOrigins)
	names, err := mc.ListDatabaseNames(ctx, bson.D{{Key: "name", Value: tenantmongo.DatabasePrefix + ghost}})
	require.NoError(t, err)
	require.Len(t, names, 1, "an orphan stays until a decision names it")

	// One decision per orphan (and for the lost data key).
	for _, d := range drifts {
		if d.Repair == reconcile.RepairDecision {
			require.NoError(t, s.rec.Decide(ctx, runID, d.ID, lifecycle.Decider{Name: "bob", Role: "platform-admin"}))
		}
	}
	var res workflows.ReconcileResult
	require.NoError(t, wr.Get(ctx, &res), "the run closes once nothing is left to do")
	require.Equal(t, "nothing left to do", res.ClosedBy)
	require.Equal(t, 6, res.Decided)
	drifts, _, err = s.reports.Drifts(ctx, runID, "", 1000)
	require.NoError(t, err)
	for _, d := range drifts {
		require.Equal(t, reconcile.StateRepaired, d.State, "%s: %s", d.ID, d.Note)
	}
	names, err = mc.ListDatabaseNames(ctx, bson.D{{Key: "name", Value: bson.D{{Key: "$in", Value: bson.A{tenantmongo.DatabasePrefix + ghost, tenantmongo.DatabasePrefix + gone}}}}})
	require.NoError(t, err)
	require.Empty(t, names)
	keys, _, err := rdb.Scan(ctx, 0, "tenant:{"+p+"g*", 10000).Result()
	require.NoError(t, err)
	require.Empty(t, keys)
	with, err := s.acts.Tenants.TablesWithRows(tenant.WithID(ctx, gone), mustTables(t, ctx, s))
	require.NoError(t, err)
	require.Empty(t, with)
	r, err := s.reports.Get(ctx, runID)
	require.NoError(t, err)
	require.Equal(t, reconcile.RunClosed, r.Status)
	require.Equal(t, "alice", r.ApprovedBy)

	// Every repair is audited: the orphans' in the platform chain, the others in their tenant's.
	var platformRepairs int
	require.NoError(t, testenv.OwnerPool(t).QueryRow(ctx, `SELECT count(*) FROM platform_audit_outbox WHERE event_id LIKE $1`,
		runID+"/%/repair/%").Scan(&platformRepairs))
	require.Equal(t, 5, platformRepairs)
	for _, id := range []string{idx, noctx, stale, nokey} {
		var n int
		require.NoError(t, rls.Tx(tenant.WithID(ctx, id), s.cl.Postgres, func(tx pgx.Tx) error {
			return tx.QueryRow(ctx, `SELECT count(*) FROM audit_outbox WHERE event_id LIKE $1`, runID+"/%/repair/%").Scan(&n)
		}))
		require.Equal(t, 1, n, "repair of %s audited in its chain", id)
	}

	// A second run finds nothing, and closes at once.
	wr, run, drifts = s.run(t, ctx, "reconcile-test-"+p+"2", p)
	require.Empty(t, drifts, "%v", driftIDs(drifts))
	require.NoError(t, wr.Get(ctx, &res))
	require.Equal(t, "nothing left to do", res.ClosedBy)
	require.Equal(t, 7, run.TenantsChecked)
}

func mustTables(t *testing.T, ctx context.Context, s *reconcileStack) []pgx.Identifier {
	t.Helper()
	tables, err := s.acts.Tenants.PurgedTables(ctx)
	require.NoError(t, err)
	return tables
}

// TestReconcileMeasure measures a reconciliation run over RECONCILE_MEASURE tenants (for
// example 1000), provisioned in every store without drift, on the dev server and the real
// stores. A measurement, not a test: it asserts only that the run finds nothing, and logs the
// figures (go test -run TestReconcileMeasure -v ./workflows/ with RECONCILE_MEASURE set).
func TestReconcileMeasure(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("RECONCILE_MEASURE"))
	if n <= 0 {
		t.Skip("set RECONCILE_MEASURE=<tenants> to measure a reconciliation run")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	s := newReconcileStack(t)
	p := testenv.TenantID("rm") + "-"
	start := time.Now()
	ids := make(chan string)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for id := range ids {
				s.provision(t, ctx, id, tenant.StatusActive)
			}
		})
	}
	for i := range n {
		ids <- fmt.Sprintf("%s%05d", p, i)
	}
	close(ids)
	wg.Wait()
	t.Logf("provisioned %d tenants in %s", n, time.Since(start).Round(time.Millisecond))

	for _, parallel := range []int{1, 4, 8} {
		runID := fmt.Sprintf("reconcile-measure-%s-p%d", p, parallel)
		began := time.Now()
		wr, err := s.cl.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: runID, TaskQueue: s.queue}, workflows.ReconcileTenants,
			workflows.ReconcileInput{RequestedBy: "measure", IDPrefix: p, Parallel: parallel})
		require.NoError(t, err)
		var res workflows.ReconcileResult
		require.NoError(t, wr.Get(ctx, &res))
		took := time.Since(began)
		require.Equal(t, n, res.Checked)
		require.Zero(t, res.Summary.Total)
		t.Logf("parallel %d: %d tenants reconciled in %s (%.1f tenants/s, %.2f ms/tenant); projected for 10,000: %s",
			parallel, n, took.Round(time.Millisecond), float64(n)/took.Seconds(), float64(took.Milliseconds())/float64(n),
			(took * time.Duration(10000) / time.Duration(n)).Round(time.Second))
	}
}
