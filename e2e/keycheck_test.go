package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/misybot/tenancy/internal/domain/registry"
	"github.com/misybot/tenancy/internal/keys/keycheck"
	"github.com/misybot/tenancy/internal/keys/seal"
	"github.com/misybot/tenancy/internal/testkit/testenv"
)

// A worker started with another master key than the one the database was set up with refuses
// to start, in one line naming TENANT_MASTER_KEY, instead of failing every tenant request.
func TestWorkerRefusesAWrongMasterKey(t *testing.T) {
	t.Parallel()
	sealer, err := seal.New(masterKey)
	require.NoError(t, err)
	require.NoError(t, keycheck.Verify(context.Background(), testenv.AppPool(t), sealer.PurposeKey(keycheck.Purpose), 1),
		"the test database is set up with the e2e key")

	bin := buildWorker(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin)
	cmd.Env = append(os.Environ(), "APP_ENV=dev",
		"DATABASE_URL="+testenv.AppDatabaseURL, "MONGODB_URI="+testenv.MongoURI, "REDIS_URL="+testenv.RedisURL,
		"TEMPORAL_ADDRESS="+testenv.TemporalAddress, "TASK_QUEUE=e2e-"+testenv.TenantID("wrongkey"), "WORKER_METRICS_ADDR=127.0.0.1:0",
		"TENANT_MASTER_KEY="+base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0x5a}, 32)))
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit, "the worker must not start: %s", out)
	require.NotZero(t, exit.ExitCode())
	require.Contains(t, string(out), "TENANT_MASTER_KEY does not match")
	require.Equal(t, 1, strings.Count(string(out), "TENANT_MASTER_KEY does not match"), "one line")
}

// `starter register` seals the new tenant's secret under its master key: with another key than
// the database's, it refuses, and registers nothing the API could never open.
func TestRegisterCommandRefusesAWrongMasterKey(t *testing.T) {
	t.Parallel()
	sealer, err := seal.New(masterKey)
	require.NoError(t, err)
	require.NoError(t, keycheck.Verify(context.Background(), testenv.AppPool(t), sealer.PurposeKey(keycheck.Purpose), 1))

	bin := filepath.Join(t.TempDir(), "starter")
	build, err := exec.Command("go", "build", "-o", bin, "github.com/misybot/tenancy/starter").CombinedOutput()
	require.NoError(t, err, string(build))
	id := testenv.TenantID("clireg")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	run := func(key []byte) ([]byte, error) {
		cmd := exec.CommandContext(ctx, bin, "register", id, "standard", "CLI "+id, "ops@"+id+".test")
		cmd.Env = append(os.Environ(), "APP_ENV=dev",
			"DATABASE_URL="+testenv.AppDatabaseURL, "MONGODB_URI="+testenv.MongoURI, "REDIS_URL="+testenv.RedisURL,
			"TEMPORAL_ADDRESS="+testenv.TemporalAddress, "TENANT_MASTER_KEY="+base64.StdEncoding.EncodeToString(key))
		return cmd.CombinedOutput()
	}
	out, err := run(bytes.Repeat([]byte{0x5a}, 32))
	require.Error(t, err, "%s", out)
	require.Contains(t, string(out), "TENANT_MASTER_KEY does not match")
	_, err = registry.New(testenv.AppPool(t)).Get(context.Background(), id)
	require.ErrorIs(t, err, registry.ErrNotFound, "nothing registered")

	out, err = run(masterKey)
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), `"tenantSecret"`)
	got, err := registry.New(testenv.AppPool(t)).Get(context.Background(), id)
	require.NoError(t, err)
	require.Equal(t, "CLI "+id, got.Name)
}
