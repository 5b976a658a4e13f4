package activities_test

import (
	"bytes"
	"context"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"

	"github.com/misybot/tenancy/activities"
	"github.com/misybot/tenancy/internal/domain/registry"
	"github.com/misybot/tenancy/internal/keys/seal"
	"github.com/misybot/tenancy/internal/model/tenant"
	"github.com/misybot/tenancy/internal/platform/clients"
	"github.com/misybot/tenancy/internal/testkit/testenv"
)

// enqueueCounter counts the statements that write an audit event into the outbox.
type enqueueCounter struct{ n atomic.Int32 }

func (c *enqueueCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	if strings.Contains(data.SQL, "audit_enqueue") {
		c.n.Add(1)
	}
	return ctx
}

func (c *enqueueCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// countedActivities returns the activities over a pool whose audit enqueues are counted, with
// the platform audit chain in the given database.
func countedActivities(t *testing.T, platformDatabase string) (*activities.Activities, *enqueueCounter) {
	t.Helper()
	counter := &enqueueCounter{}
	pool := testenv.TracedAppPool(t, counter)
	cl := &clients.Clients{Postgres: pool, Mongo: testenv.MongoClient(t), Redis: testenv.RedisClient(t), AuditPlatformDatabase: platformDatabase}
	sealer, err := seal.New(bytes.Repeat([]byte{4}, 32))
	require.NoError(t, err)
	return activities.New(activities.Deps{Clients: cl, Sealer: sealer, ExportDir: t.TempDir(), Logger: testenv.Logger(t)}), counter
}

// A step that commits its event with its change (a status transition, the data key, the
// tenant's default rows, destroying the keys) does not have the step audit send it a second
// time: one enqueue per step, and one event.
func TestAStepThatCommitsItsEventWritesItOnce(t *testing.T) {
	t.Parallel()
	acts, counter := countedActivities(t, "platform_unused")

	steps := []struct {
		name string
		run  func(env *testsuite.TestActivityEnvironment, id string) error
	}{
		{"TransitionStatus", func(env *testsuite.TestActivityEnvironment, id string) error {
			_, err := env.ExecuteActivity(acts.TransitionStatus, activities.TransitionInput{TenantID: id, To: tenant.StatusOnboarding, From: []tenant.Status{tenant.StatusPending}})
			return err
		}},
		{"EnsureKeys", func(env *testsuite.TestActivityEnvironment, id string) error {
			_, err := env.ExecuteActivity(acts.EnsureKeys, activities.TenantRef{TenantID: id})
			return err
		}},
		{"ProvisionPostgres", func(env *testsuite.TestActivityEnvironment, id string) error {
			_, err := env.ExecuteActivity(acts.ProvisionPostgres, activities.TenantRef{TenantID: id})
			return err
		}},
		{"DestroyKeys", func(env *testsuite.TestActivityEnvironment, id string) error {
			_, err := env.ExecuteActivity(acts.DestroyKeys, activities.TenantRef{TenantID: id})
			return err
		}},
	}
	for _, step := range steps {
		t.Run(step.name, func(t *testing.T) {
			var s testsuite.WorkflowTestSuite
			env := s.NewTestActivityEnvironment()
			env.SetWorkerOptions(worker.Options{Interceptors: []interceptor.WorkerInterceptor{activities.NewAuditInterceptor(acts)}})
			env.RegisterActivity(acts)
			id := testenv.TenantID("once")
			_, err := acts.Registry.Create(context.Background(), registry.NewTenant{
				Tenant:       tenant.Tenant{ID: id, SiteID: "s", Name: "n", ContactEmail: "a@b.co", Type: tenant.TypeStandard},
				SealedSecret: []byte{1}, SecretKeyVersion: 1,
			})
			require.NoError(t, err)
			counter.n.Store(0)
			require.NoError(t, step.run(env, id))
			require.EqualValues(t, 1, counter.n.Load(), "the event is written once, in the step's transaction")

			var events int
			require.NoError(t, pgx.BeginFunc(tenant.WithID(context.Background(), id), testenv.OwnerPool(t), func(tx pgx.Tx) error {
				if _, err := tx.Exec(context.Background(), `SELECT set_config('app.tenant_id', $1, true)`, id); err != nil {
					return err
				}
				return tx.QueryRow(context.Background(), `SELECT count(*) FROM audit_outbox WHERE tenant_id = $1 AND event_id LIKE '%/activity/%' AND convert_from(payload, 'UTF8')::jsonb->>'action' = $2`, id, activities.StepActionPrefix+step.name).Scan(&events)
			}))
			require.Equal(t, 1, events, "and it is there")
		})
	}
}

// Only the lifecycle's own activities are steps: an activity of another package on the same
// worker (the bench's no-op floor) leaves no event, so a no-op stays a no-op.
func TestAForeignActivityLeavesNoStepEvent(t *testing.T) {
	t.Parallel()
	// A platform chain of its own: the unknown tenant's step event below goes there, and the
	// test environment's step ids (the same in every test) must not meet another test's events.
	acts, counter := countedActivities(t, strings.ReplaceAll(testenv.TenantID("platform_foreign"), "-", "_"))

	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.SetWorkerOptions(worker.Options{Interceptors: []interceptor.WorkerInterceptor{activities.NewAuditInterceptor(acts)}})
	env.RegisterActivityWithOptions(func(context.Context, activities.TenantRef) error { return nil }, activity.RegisterOptions{Name: "ForeignNoop"})
	env.RegisterActivity(acts)
	_, err := env.ExecuteActivity("ForeignNoop", activities.TenantRef{TenantID: testenv.TenantID("foreign")})
	require.NoError(t, err)
	require.Zero(t, counter.n.Load(), "no event for a foreign activity")

	// The same worker still audits its own (an unknown tenant's step goes to the platform chain).
	_, err = env.ExecuteActivity(acts.ProvisionRedis, activities.TenantRef{TenantID: testenv.TenantID("foreign")})
	require.Error(t, err) // no such tenant: a final failure, which is audited too
	require.EqualValues(t, 1, counter.n.Load(), "its own activity's step is audited")
}
