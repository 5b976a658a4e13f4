package workflows_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"

	"github.com/misybot/tenancy/activities"
	"github.com/misybot/tenancy/internal/domain/registry"
	"github.com/misybot/tenancy/internal/keys/seal"
	"github.com/misybot/tenancy/internal/model/tenant"
	"github.com/misybot/tenancy/internal/platform/clients"
	"github.com/misybot/tenancy/internal/testkit/testenv"
	"github.com/misybot/tenancy/workflows"
)

// startWorker runs a real worker on the dev server with its own task queue, so parallel test
// binaries never steal each other's tasks.
func startWorker(t *testing.T, c client.Client) string {
	t.Helper()
	queue := "test-" + testenv.TenantID("q")
	w := worker.New(c, queue, worker.Options{})
	workflows.Register(w)
	mc := testenv.MongoClient(t)
	// A platform audit chain of its own: the shared one must hold events of one key only.
	platformDB := strings.ReplaceAll(testenv.TenantID("platform_wf"), "-", "_")
	t.Cleanup(func() { _ = mc.Database(platformDB).Drop(context.Background()) })
	cl := &clients.Clients{Postgres: testenv.AppPool(t), Mongo: mc, Redis: testenv.RedisClient(t), AuditPlatformDatabase: platformDB}
	sealer, err := seal.New(bytes.Repeat([]byte{3}, 32))
	require.NoError(t, err)
	w.RegisterActivity(activities.New(activities.Deps{Clients: cl, Sealer: sealer, ExportDir: t.TempDir(), Logger: testenv.Logger(t)}))
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)
	return queue
}

// Suspend and restore on the dev server against the real registry: the status moves in
// PostgreSQL, a second suspend is a no-op success, and restoring a pending tenant fails
// permanently without touching it.
func TestSuspendRestoreOnDevServer(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := testenv.TemporalClient(t)
	reg := registry.New(testenv.AppPool(t))
	owner := testenv.OwnerPool(t)
	queue := startWorker(t, c)

	id := testenv.TenantID("life")
	_, err := reg.Create(ctx, registry.NewTenant{
		Tenant:       tenant.Tenant{ID: id, SiteID: "s", Name: "n", ContactEmail: "a@b.co", Type: tenant.TypeTrial},
		SealedSecret: []byte{1}, SecretKeyVersion: 1,
	})
	require.NoError(t, err)

	run := func(wf any) (workflows.StatusChangeResult, error) {
		r, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: workflows.WorkflowID(id), TaskQueue: queue}, wf,
			workflows.StatusChangeInput{TenantID: id})
		require.NoError(t, err)
		var res workflows.StatusChangeResult
		return res, r.Get(ctx, &res)
	}

	_, err = run(workflows.RestoreTenant)
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(err, &appErr), "%v", err)
	require.Equal(t, activities.ErrTypeIllegalTransition, appErr.Type())
	got, err := reg.Get(ctx, id)
	require.NoError(t, err)
	require.Equal(t, tenant.StatusPending, got.Status)

	_, err = owner.Exec(ctx, `UPDATE tenants SET status = 'active' WHERE tenant_id = $1`, id)
	require.NoError(t, err)

	res, err := run(workflows.SuspendTenant)
	require.NoError(t, err)
	require.Equal(t, tenant.StatusSuspended, res.Status)
	require.True(t, res.Changed)
	res, err = run(workflows.SuspendTenant)
	require.NoError(t, err)
	require.Equal(t, tenant.StatusSuspended, res.Status)
	require.False(t, res.Changed, "second suspend is a no-op")

	res, err = run(workflows.RestoreTenant)
	require.NoError(t, err)
	require.True(t, res.Changed)
	got, err = reg.Get(ctx, id)
	require.NoError(t, err)
	require.Equal(t, tenant.StatusActive, got.Status)
	require.True(t, got.IsActive)
}
