package workflows_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/misybot/tenancy/activities"
	"github.com/misybot/tenancy/internal/domain/registry"
	"github.com/misybot/tenancy/internal/keys/keyring"
	"github.com/misybot/tenancy/internal/keys/seal"
	"github.com/misybot/tenancy/internal/model/tenant"
	"github.com/misybot/tenancy/internal/platform/clients"
	"github.com/misybot/tenancy/internal/testkit/testenv"
	"github.com/misybot/tenancy/wiring"
	"github.com/misybot/tenancy/workflows"
)

// A master key rotation re-wraps a tenant's data keys and re-seals its secret under the new
// version, through the real workflow, worker and stores: afterwards a process holding only the
// new key opens everything, and data encrypted before the rotation still decrypts (the data
// keys did not change).
func TestRotateMasterKeyRewrapsEverything(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	k1, k2 := bytes.Repeat([]byte{21}, 32), bytes.Repeat([]byte{22}, 32)
	old, err := seal.New(k1)
	require.NoError(t, err)
	both, err := seal.NewKeyring(2, map[int][]byte{1: k1, 2: k2})
	require.NoError(t, err)
	onlyNew, err := seal.NewKeyring(2, map[int][]byte{2: k2})
	require.NoError(t, err)
	pool := testenv.AppPool(t)

	// A tenant set up under version 1: sealed secret, a data key, data encrypted with it.
	id := testenv.TenantID("mkr")
	tctx := tenant.WithID(ctx, id)
	sealed, err := old.Seal(id, registry.SecretField, []byte("tenant-secret-value"))
	require.NoError(t, err)
	_, err = registry.New(pool).Create(ctx, registry.NewTenant{
		Tenant:       tenant.Tenant{ID: id, SiteID: "s", Name: "n", ContactEmail: "a@b.co", Type: tenant.TypeTrial},
		SealedSecret: sealed, SecretKeyVersion: 1,
	})
	require.NoError(t, err)
	_, err = keyring.New(pool, old).Ensure(tctx)
	require.NoError(t, err)
	ciphertext, err := keyring.New(pool, old).Encrypt(tctx, "messages.text", []byte("hello from before"))
	require.NoError(t, err)

	platformDB := strings.ReplaceAll(testenv.TenantID("platform_mk"), "-", "_")
	mc := testenv.MongoClient(t)
	t.Cleanup(func() { _ = mc.Database(platformDB).Drop(context.Background()) })
	cl := &clients.Clients{Postgres: pool, Mongo: mc, Redis: testenv.RedisClient(t), Temporal: testenv.TemporalClient(t), AuditPlatformDatabase: platformDB}
	acts := activities.New(activities.Deps{Clients: cl, Sealer: both, ExportDir: t.TempDir(), Logger: testenv.Logger(t)})
	// No cell router: the re-seal step re-seals every cell of the database, and the cells other
	// tests commit in the shared one are sealed under testenv.MasterKey, which this worker does
	// not hold and must not replace. The step still runs (and finds nothing to re-seal); the
	// re-seal itself is tested in internal/domain/cells, inside a transaction.
	acts.Cells = nil
	queue := "test-" + testenv.TenantID("q")
	w := wiring.Worker(cl, acts, queue)
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)

	run, err := cl.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: workflows.MasterKeyRotationID + "-" + id, TaskQueue: queue},
		workflows.RotateMasterKey, workflows.RotateMasterKeyInput{RequestedBy: "ops", Tenants: []string{id}})
	require.NoError(t, err)
	var res workflows.RotateMasterKeyResult
	require.NoError(t, run.Get(ctx, &res))
	require.Equal(t, workflows.RotateMasterKeyResult{Version: 2, Tenants: 1, DataKeys: 1, Secrets: 1}, res)

	plain, err := keyring.New(pool, onlyNew).Decrypt(tctx, "messages.text", ciphertext)
	require.NoError(t, err, "the data key, re-wrapped, opens with the new master key alone")
	require.Equal(t, "hello from before", string(plain))
	secrets, err := registry.New(pool).Secrets(ctx, id)
	require.NoError(t, err)
	v, _ := seal.SealedVersion(secrets.Current)
	require.Equal(t, 2, v)
	secret, err := onlyNew.Open(id, registry.SecretField, secrets.Current)
	require.NoError(t, err)
	require.Equal(t, "tenant-secret-value", string(secret))
	_, err = keyring.New(pool, old).Decrypt(tctx, "messages.text", ciphertext)
	require.Error(t, err, "the old key alone no longer opens the re-wrapped data key")

	// Running it again changes nothing.
	run, err = cl.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: workflows.MasterKeyRotationID + "-" + id + "-again", TaskQueue: queue},
		workflows.RotateMasterKey, workflows.RotateMasterKeyInput{RequestedBy: "ops", Tenants: []string{id}})
	require.NoError(t, err)
	require.NoError(t, run.Get(ctx, &res))
	require.Equal(t, workflows.RotateMasterKeyResult{Version: 2, Tenants: 1}, res)
}
