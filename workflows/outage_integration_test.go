package workflows_test

import (
	"bytes"
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"
	"go.temporal.io/sdk/client"

	"github.com/misybot/tenancy/activities"
	"github.com/misybot/tenancy/internal/domain/audit"
	"github.com/misybot/tenancy/internal/domain/registry"
	"github.com/misybot/tenancy/internal/keys/seal"
	"github.com/misybot/tenancy/internal/model/tenant"
	"github.com/misybot/tenancy/internal/platform/clients"
	"github.com/misybot/tenancy/internal/stores/tenantmongo"
	"github.com/misybot/tenancy/internal/testkit/testenv"
	"github.com/misybot/tenancy/wiring"
	"github.com/misybot/tenancy/workflows"
)

// With MongoDB cut off (a proxy in front of FerretDB, so the shared server keeps running),
// suspend and restore complete; their audit events wait in the outbox; once MongoDB is back the
// shipper moves them, each exactly once, and the chain verifies.
func TestSuspendAndRestoreWhileMongoDBIsDown(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	direct := testenv.MongoClient(t)
	u, err := url.Parse(testenv.MongoURI)
	require.NoError(t, err)
	proxy := testenv.StartProxy(t, u.Host)
	viaProxy, err := mongo.Connect(ctx, options.Client().ApplyURI("mongodb://"+proxy.Addr+"/").
		SetServerSelectionTimeout(time.Second).SetConnectTimeout(time.Second))
	require.NoError(t, err)
	t.Cleanup(func() { _ = viaProxy.Disconnect(context.Background()) })

	platformDB := strings.ReplaceAll(testenv.TenantID("platform_out"), "-", "_")
	t.Cleanup(func() { _ = direct.Database(platformDB).Drop(context.Background()) })
	c := testenv.TemporalClient(t)
	cl := &clients.Clients{Postgres: testenv.AppPool(t), Mongo: viaProxy, Redis: testenv.RedisClient(t), Temporal: c, AuditPlatformDatabase: platformDB}
	sealer, err := seal.New(bytes.Repeat([]byte{4}, 32))
	require.NoError(t, err)
	acts := activities.New(activities.Deps{Clients: cl, Sealer: sealer, ExportDir: t.TempDir(), Logger: testenv.Logger(t)})
	queue := "test-" + testenv.TenantID("q")
	w := wiring.Worker(cl, acts, queue) // the worker as production wires it, step audit included
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)
	shipper := acts.Audit.NewShipper(testenv.Logger(t))
	shipper.Interval = 200 * time.Millisecond
	shipCtx, stopShipper := context.WithCancel(context.Background())
	go shipper.Run(shipCtx)
	t.Cleanup(stopShipper)

	id := testenv.TenantID("outage")
	_, err = registry.New(testenv.AppPool(t)).Create(ctx, registry.NewTenant{
		Tenant:       tenant.Tenant{ID: id, SiteID: "s", Name: "n", ContactEmail: "a@b.co", Type: tenant.TypeTrial},
		SealedSecret: []byte{1}, SecretKeyVersion: 1,
	})
	require.NoError(t, err)
	_, err = testenv.OwnerPool(t).Exec(ctx, `UPDATE tenants SET status = 'active' WHERE tenant_id = $1`, id)
	require.NoError(t, err)
	_, err = tenantmongo.New(direct).Provision(tenant.WithID(ctx, id))
	require.NoError(t, err)
	t.Cleanup(func() { _ = direct.Database("tenant_" + id).Drop(context.Background()) })
	chain, err := acts.Audit.TenantChain(tenant.WithID(ctx, id))
	require.NoError(t, err)

	proxy.Cut()
	for _, op := range []struct {
		wf   any
		want tenant.Status
	}{{workflows.SuspendTenant, tenant.StatusSuspended}, {workflows.RestoreTenant, tenant.StatusActive}} {
		run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: workflows.WorkflowID(id), TaskQueue: queue}, op.wf,
			workflows.StatusChangeInput{TenantID: id, RequestedBy: "ops", StepTimeout: 5 * time.Second})
		require.NoError(t, err)
		require.NoError(t, run.Get(ctx, nil), "the lifecycle change completes without MongoDB")
		got, err := registry.New(testenv.AppPool(t)).Get(ctx, id)
		require.NoError(t, err)
		require.Equal(t, op.want, got.Status)
	}
	waiting, _, err := chain.Pending(ctx)
	require.NoError(t, err)
	require.GreaterOrEqual(t, waiting, int64(4), "the steps' events wait in the outbox")
	events := direct.Database("tenant_" + id).Collection(audit.Collection)
	n, err := events.CountDocuments(ctx, bson.D{})
	require.NoError(t, err)
	require.Zero(t, n, "nothing reached MongoDB while it was cut off")

	proxy.Restore()
	require.Eventually(t, func() bool {
		left, _, err := chain.Pending(ctx)
		return err == nil && left == 0
	}, time.Minute, 100*time.Millisecond, "the backlog ships once MongoDB is back")

	cur, err := events.Find(ctx, bson.D{}, options.Find().SetSort(bson.D{{Key: "seq", Value: 1}}))
	require.NoError(t, err)
	var stored []audit.Event
	require.NoError(t, cur.All(ctx, &stored))
	require.EqualValues(t, waiting, len(stored), "every waiting event, once")
	seen := map[string]bool{}
	actions := map[string]int{}
	for i, e := range stored {
		require.EqualValues(t, i+1, e.Seq, "no gap")
		require.False(t, seen[e.ID], "duplicate %s", e.ID)
		seen[e.ID] = true
		actions[e.Action]++
	}
	require.Equal(t, 1, actions["tenant.suspend"])
	require.Equal(t, 1, actions["tenant.restore"])
	require.Equal(t, 2, actions["workflow.step.TransitionStatus"])
	rep, err := chain.Verify(ctx)
	require.NoError(t, err)
	require.True(t, rep.OK, "%+v", rep.FirstBroken)
	require.EqualValues(t, len(stored), rep.Checked)
}
