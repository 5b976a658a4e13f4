package activities_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/bson"
	"go.temporal.io/sdk/testsuite"

	"github.com/misybot/tenancy/activities"
	"github.com/misybot/tenancy/internal/domain/audit"
	"github.com/misybot/tenancy/internal/domain/registry"
	"github.com/misybot/tenancy/internal/keys/seal"
	"github.com/misybot/tenancy/internal/model/tenant"
	"github.com/misybot/tenancy/internal/platform/clients"
	"github.com/misybot/tenancy/internal/testkit/testenv"
)

const day = 24 * time.Hour

func setupRetention(t *testing.T) (*activities.Activities, *testsuite.TestActivityEnvironment) {
	t.Helper()
	mc := testenv.MongoClient(t)
	platformDB := strings.ReplaceAll(testenv.TenantID("platform_act"), "-", "_")
	t.Cleanup(func() { _ = mc.Database(platformDB).Drop(context.Background()) })
	cl := &clients.Clients{Postgres: testenv.AppPool(t), Mongo: mc, Redis: testenv.RedisClient(t), AuditPlatformDatabase: platformDB}
	sealer, err := seal.New(bytes.Repeat([]byte{4}, 32))
	require.NoError(t, err)
	acts := activities.New(activities.Deps{Clients: cl, Sealer: sealer, ExportDir: t.TempDir(), Logger: testenv.Logger(t)})
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(acts)
	return acts, env
}

// tenantWithEvents registers a tenant in status, provisions its database and writes events at
// the given ages before now.
func tenantWithEvents(t *testing.T, acts *activities.Activities, status tenant.Status, now time.Time, ages ...time.Duration) string {
	t.Helper()
	ctx := context.Background()
	id := testenv.TenantID("prune")
	_, err := acts.Registry.Create(ctx, registry.NewTenant{
		Tenant:       tenant.Tenant{ID: id, SiteID: "s", Name: "n", ContactEmail: "a@b.co", Type: tenant.TypeStandard},
		SealedSecret: []byte{1}, SecretKeyVersion: 1,
	})
	require.NoError(t, err)
	_, err = testenv.OwnerPool(t).Exec(ctx, `UPDATE tenants SET status = $2 WHERE tenant_id = $1`, id, status)
	require.NoError(t, err)
	tctx := tenant.WithID(ctx, id)
	_, err = acts.Mongo.Provision(tctx)
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = acts.Mongo.Deprovision(tctx) })
	for i, age := range ages {
		_, err := acts.Audit.Tenant(tctx, audit.Event{ID: fmt.Sprintf("e%d", i+1), Action: "tenant.update", Outcome: audit.OutcomeSuccess,
			Actor: audit.Actor{Type: audit.ActorOperator, ID: "ops"}, At: now.Add(-age)})
		require.NoError(t, err)
	}
	chain, err := acts.Audit.TenantChain(tctx)
	require.NoError(t, err)
	_, err = chain.Ship(ctx) // as the worker's shipper would
	require.NoError(t, err)
	return id
}

func storedIDs(t *testing.T, acts *activities.Activities, id string) []string {
	t.Helper()
	chain, err := acts.Audit.TenantChain(tenant.WithID(context.Background(), id))
	require.NoError(t, err)
	events, _, err := chain.List(context.Background(), audit.Query{Limit: audit.MaxPage})
	require.NoError(t, err)
	out := []string{}
	for _, e := range events {
		out = append(out, e.ID)
	}
	return out
}

func prune(t *testing.T, env *testsuite.TestActivityEnvironment, in activities.PruneAuditInput) activities.PruneAuditResult {
	t.Helper()
	v, err := env.ExecuteActivity("PruneAudit", in)
	require.NoError(t, err)
	var res activities.PruneAuditResult
	require.NoError(t, v.Get(&res))
	return res
}

// Retention removes what is older than the period and keeps everything inside it; the chain
// verifies afterwards; running it again removes nothing more.
func TestPruneAuditKeepsThePeriod(t *testing.T) {
	t.Parallel()
	acts, env := setupRetention(t)
	now := time.Now().UTC()
	id := tenantWithEvents(t, acts, tenant.StatusActive, now, 400*day, 366*day, 364*day, day)

	res := prune(t, env, activities.PruneAuditInput{TenantID: id, Cutoff: now.Add(-365 * day), At: now})
	require.EqualValues(t, 2, res.Removed)
	require.EqualValues(t, 2, res.CheckpointSeq)
	require.Equal(t, []string{"e3", "e4"}, storedIDs(t, acts, id), "364 days old is inside a 365-day period")
	chain, err := acts.Audit.TenantChain(tenant.WithID(context.Background(), id))
	require.NoError(t, err)
	rep, err := chain.Verify(context.Background())
	require.NoError(t, err)
	require.True(t, rep.OK, "%+v", rep.FirstBroken)

	res = prune(t, env, activities.PruneAuditInput{TenantID: id, Cutoff: now.Add(-365 * day), At: now})
	require.Zero(t, res.Removed)
	require.Equal(t, map[string]string{"removed": "0", "checkpointSeq": "2"}, res.AuditDetails())
}

// A legal hold stops deletion, even one set after the workflow listed the tenant; a longer
// retention set meanwhile wins over the workflow's cutoff; a tenant no longer open is left
// alone.
func TestPruneAuditReadsThePolicyAgain(t *testing.T) {
	t.Parallel()
	acts, env := setupRetention(t)
	ctx := context.Background()
	now := time.Now().UTC()

	held := tenantWithEvents(t, acts, tenant.StatusActive, now, 900*day, 800*day, day)
	_, err := acts.Registry.SetAuditPolicy(ctx, held, registry.AuditPolicy{RetentionDays: 30, LegalHold: true})
	require.NoError(t, err)
	res := prune(t, env, activities.PruneAuditInput{TenantID: held, Cutoff: now.Add(-30 * day), At: now})
	require.Equal(t, "legal hold", res.Skipped)
	require.Equal(t, []string{"e1", "e2", "e3"}, storedIDs(t, acts, held), "nothing deleted under legal hold")

	longer := tenantWithEvents(t, acts, tenant.StatusSuspended, now, 400*day, 100*day, day)
	res = prune(t, env, activities.PruneAuditInput{TenantID: longer, Cutoff: now.Add(-30 * day), At: now}) // listed with 30 days; now 365
	require.EqualValues(t, 1, res.Removed)
	require.Equal(t, []string{"e2", "e3"}, storedIDs(t, acts, longer), "the current, longer retention keeps the 100-day-old event")

	leaving := tenantWithEvents(t, acts, tenant.StatusOffboarding, now, 900*day, day)
	res = prune(t, env, activities.PruneAuditInput{TenantID: leaving, Cutoff: now.Add(-365 * day), At: now})
	require.Equal(t, "tenant is offboarding", res.Skipped)
	require.Equal(t, []string{"e1", "e2"}, storedIDs(t, acts, leaving))

	_, err = env.ExecuteActivity("PruneAudit", activities.PruneAuditInput{TenantID: "no-such-tenant", Cutoff: now, At: now})
	require.ErrorContains(t, err, "not found")
}

// A chain edited in the part retention would cut is reported and left as it is.
func TestPruneAuditReportsABrokenChain(t *testing.T) {
	t.Parallel()
	acts, env := setupRetention(t)
	now := time.Now().UTC()
	id := tenantWithEvents(t, acts, tenant.StatusActive, now, 400*day, 399*day, day)
	_, err := testenv.MongoClient(t).Database("tenant_"+id).Collection(audit.Collection).
		UpdateOne(context.Background(), bson.D{{Key: "_id", Value: "e1"}}, bson.D{{Key: "$set", Value: bson.D{{Key: "action", Value: "covered"}}}})
	require.NoError(t, err)
	res := prune(t, env, activities.PruneAuditInput{TenantID: id, Cutoff: now.Add(-365 * day), At: now})
	require.NotNil(t, res.Broken)
	require.Equal(t, audit.ProblemEdited, res.Broken.Problem)
	require.Zero(t, res.Removed)
	require.Equal(t, []string{"e1", "e2", "e3"}, storedIDs(t, acts, id))
	require.Equal(t, "edited", res.AuditDetails()["brokenProblem"])
}

func TestListRetentionTargets(t *testing.T) {
	t.Parallel()
	acts, env := setupRetention(t)
	now := time.Now().UTC()
	id := tenantWithEvents(t, acts, tenant.StatusActive, now)
	v, err := env.ExecuteActivity("ListRetentionTargets", activities.RetentionTargetsInput{After: strings.TrimSuffix(id, id[len(id)-1:]), Limit: 5})
	require.NoError(t, err)
	var page activities.RetentionTargetsPage
	require.NoError(t, v.Get(&page))
	found := false
	for _, tg := range page.Targets {
		found = found || tg.TenantID == id
	}
	require.True(t, found, "%+v", page)
}
