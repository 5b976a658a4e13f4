package workflows_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo/options"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/worker"

	"github.com/misybot/tenancy/activities"
	"github.com/misybot/tenancy/internal/domain/audit"
	"github.com/misybot/tenancy/internal/domain/registry"
	"github.com/misybot/tenancy/internal/keys/seal"
	"github.com/misybot/tenancy/internal/model/tenant"
	"github.com/misybot/tenancy/internal/platform/clients"
	"github.com/misybot/tenancy/internal/stores/tenantmongo"
	"github.com/misybot/tenancy/internal/testkit/testenv"
	"github.com/misybot/tenancy/workflows"
)

// loseFirstCompletion wraps the audit interceptor and throws away the first attempt's result
// of every activity after it finished (its work and its audit event done), as if the worker
// died before reporting it: Temporal runs the activity again.
type loseFirstCompletion struct {
	interceptor.WorkerInterceptorBase
	mu       sync.Mutex
	attempts map[string]int
}

func (l *loseFirstCompletion) InterceptActivity(ctx context.Context, next interceptor.ActivityInboundInterceptor) interceptor.ActivityInboundInterceptor {
	i := &loseFirstInbound{l: l}
	i.Next = next
	return i
}

type loseFirstInbound struct {
	interceptor.ActivityInboundInterceptorBase
	l *loseFirstCompletion
}

func (i *loseFirstInbound) ExecuteActivity(ctx context.Context, in *interceptor.ExecuteActivityInput) (any, error) {
	res, err := i.Next.ExecuteActivity(ctx, in)
	info := activity.GetInfo(ctx)
	i.l.mu.Lock()
	i.l.attempts[info.ActivityType.Name]++
	i.l.mu.Unlock()
	if err == nil && info.Attempt == 1 {
		return nil, errors.New("completion lost")
	}
	return res, err
}

// Every workflow step leaves exactly one event even when each step runs twice (the first
// attempt's completion lost after its event was written), and the chain verifies.
func TestStepEventsExactlyOnceUnderRetry(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := testenv.TemporalClient(t)
	mc := testenv.MongoClient(t)
	platformDB := strings.ReplaceAll(testenv.TenantID("platform_wf"), "-", "_")
	t.Cleanup(func() { _ = mc.Database(platformDB).Drop(context.Background()) })
	cl := &clients.Clients{Postgres: testenv.AppPool(t), Mongo: mc, Redis: testenv.RedisClient(t), AuditPlatformDatabase: platformDB}
	sealer, err := seal.New(bytes.Repeat([]byte{3}, 32))
	require.NoError(t, err)
	acts := activities.New(activities.Deps{Clients: cl, Sealer: sealer, ExportDir: t.TempDir(), Logger: testenv.Logger(t)})
	lose := &loseFirstCompletion{attempts: map[string]int{}}
	queue := "test-" + testenv.TenantID("q")
	w := worker.New(c, queue, worker.Options{Interceptors: []interceptor.WorkerInterceptor{lose, activities.NewAuditInterceptor(acts)}})
	workflows.Register(w)
	w.RegisterActivity(acts)
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)

	id := testenv.TenantID("steps")
	reg := registry.New(testenv.AppPool(t))
	_, err = reg.Create(ctx, registry.NewTenant{
		Tenant:       tenant.Tenant{ID: id, SiteID: "s", Name: "n", ContactEmail: "a@b.co", Type: tenant.TypeTrial},
		SealedSecret: []byte{1}, SecretKeyVersion: 1,
	})
	require.NoError(t, err)
	_, err = testenv.OwnerPool(t).Exec(ctx, `UPDATE tenants SET status = 'active' WHERE tenant_id = $1`, id)
	require.NoError(t, err)
	_, err = tenantmongo.New(mc).Provision(tenant.WithID(ctx, id))
	require.NoError(t, err)
	t.Cleanup(func() { _ = mc.Database("tenant_" + id).Drop(context.Background()) })

	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: workflows.WorkflowID(id), TaskQueue: queue}, workflows.SuspendTenant,
		workflows.StatusChangeInput{TenantID: id, RequestedBy: "ops"})
	require.NoError(t, err)
	require.NoError(t, run.Get(ctx, nil))

	lose.mu.Lock()
	require.Equal(t, map[string]int{"TransitionStatus": 2, "RevokeSessions": 2, "RecordAudit": 2}, lose.attempts, "every step ran twice")
	lose.mu.Unlock()

	chain, err := acts.Audit.TenantChain(tenant.WithID(ctx, id))
	require.NoError(t, err)
	_, err = chain.Ship(ctx) // as the worker's shipper would
	require.NoError(t, err)
	cur, err := mc.Database("tenant_"+id).Collection(audit.Collection).Find(ctx, bson.D{}, options.Find().SetSort(bson.D{{Key: "seq", Value: 1}}))
	require.NoError(t, err)
	var events []audit.Event
	require.NoError(t, cur.All(ctx, &events))
	var actions []string
	for _, e := range events {
		actions = append(actions, e.Action)
	}
	require.Equal(t, []string{"workflow.step.TransitionStatus", "workflow.step.RevokeSessions", "tenant.suspend"}, actions, "one event per step")
	step := events[0]
	require.Equal(t, audit.Actor{Type: audit.ActorSystem, ID: workflows.SuspendWorkflow}, step.Actor)
	require.Equal(t, "1", step.Details["attempt"], "written by the first attempt, found by the second")
	require.Equal(t, run.GetID(), step.WorkflowID)
	require.Equal(t, audit.OutcomeSuccess, step.Outcome)

	rep, err := chain.Verify(ctx)
	require.NoError(t, err)
	require.True(t, rep.OK, "%+v", rep.FirstBroken)
	n, err := mc.Database(platformDB).Collection(audit.Collection).CountDocuments(ctx, bson.D{{Key: "tenantId", Value: id}})
	require.NoError(t, err)
	require.Zero(t, n, "an active tenant's steps are in its own chain")
}
