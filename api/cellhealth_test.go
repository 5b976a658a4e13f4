package api_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/misybot/tenancy/api"
	"github.com/misybot/tenancy/internal/domain/cells"
	"github.com/misybot/tenancy/internal/keys/seal"
	"github.com/misybot/tenancy/internal/platform/clients"
	"github.com/misybot/tenancy/internal/testkit/testenv"
)

// A cell whose stores do not answer makes readiness degraded (soft: the API keeps serving the
// other cells' tenants), naming the cell; a healthy one does not.
func TestCellsCheckNamesTheCellThatDoesNotAnswer(t *testing.T) {
	ctx := context.Background()
	sealer, err := seal.New(testenv.MasterKey)
	require.NoError(t, err)
	router := (&clients.Clients{Postgres: testenv.AppPool(t), Mongo: testenv.MongoClient(t), Redis: testenv.RedisClient(t)}).Cells(sealer, testenv.Logger(t))
	t.Cleanup(func() { _ = router.Close(context.Background()) })
	reg := router.Registry()
	region := "r" + testenv.TenantID("h")[1:8]
	good, bad := "t-"+testenv.TenantID("g")[2:10], "t-"+testenv.TenantID("b")[2:10]
	for id, redisURL := range map[string]string{good: testenv.Cell2RedisURL, bad: "redis://127.0.0.1:1/0"} {
		_, err := reg.Create(ctx, cells.Cell{ID: id, Region: region, Kind: cells.KindPooled, Capacity: 1},
			cells.Stores{PostgresURL: testenv.CellPostgresOf(t, 2).AppURL, MongoURL: testenv.Cell2MongoURI, RedisURL: redisURL})
		require.NoError(t, err)
		// Draining: no other test's onboarding is placed there, and it is still checked.
		_, err = reg.SetState(ctx, id, cells.StateDraining)
		require.NoError(t, err)
		t.Cleanup(func() { _ = reg.Delete(context.Background(), id) })
	}
	check := api.CellsCheck(router)
	require.True(t, check.Soft)
	err = check.Probe(ctx)
	require.Error(t, err)
	require.Contains(t, err.Error(), bad)
	require.NotContains(t, err.Error(), good)
	require.NotContains(t, err.Error(), "127.0.0.1", "no connection details")

	require.NoError(t, reg.Delete(ctx, bad))
	router.Drop(ctx, bad)
	// Other tests' cells may be down at this moment: only this test's cells are asserted.
	if err := check.Probe(ctx); err != nil {
		require.NotContains(t, err.Error(), bad, "a deleted cell is not checked")
		require.NotContains(t, err.Error(), good)
	}
}
