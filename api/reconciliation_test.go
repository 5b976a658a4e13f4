package api_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/misybot/tenancy/api"
	"github.com/misybot/tenancy/internal/domain/reconcile"
	"github.com/misybot/tenancy/internal/testkit/testenv"
)

// The drift metric counts the latest reported run's drifts by kind (every kind exported, 0
// when absent), and the reports are readable without a workflow service.
func TestReconciliationMetricAndReport(t *testing.T) {
	ctx := context.Background()
	reports := reconcile.NewReports(testenv.AppPool(t))
	b := setup(t, func(c *api.Config) { c.Reconciliation = &api.Reconciliation{Reports: reports} })
	runID := "reconcile-metric-" + testenv.TenantID("m")
	owner := testenv.OwnerPool(t)
	t.Cleanup(func() {
		_, _ = owner.Exec(context.Background(), `DELETE FROM reconciliation_runs WHERE run_id = $1`, runID)
	})
	// Dated ahead of every other run of the test database, so it is the latest.
	at := time.Now().AddDate(100, 0, 0)
	require.NoError(t, reports.Begin(ctx, reconcile.Run{ID: runID, RequestedBy: "test", StartedAt: at}))
	require.NoError(t, reports.Record(ctx, runID, []reconcile.Drift{
		{ID: "orphan_keys:a", TenantID: "a", Store: reconcile.StoreRedis, Kind: reconcile.OrphanKeys, Severity: reconcile.Medium, Expected: "nothing", Found: "keys", Repair: reconcile.RepairDecision},
		{ID: "orphan_keys:b", TenantID: "b", Store: reconcile.StoreRedis, Kind: reconcile.OrphanKeys, Severity: reconcile.Medium, Expected: "nothing", Found: "keys", Repair: reconcile.RepairDecision},
		{ID: "index_missing:c:x.y", TenantID: "c", Store: reconcile.StoreMongo, Kind: reconcile.IndexMissing, Severity: reconcile.Medium, Expected: "index x.y", Found: "none", Repair: reconcile.RepairSafe},
	}))
	_, err := reports.Finish(ctx, runID, at, 3, 0)
	require.NoError(t, err)
	_, err = reports.Resolve(ctx, runID, "orphan_keys:a", reconcile.Outcome{State: reconcile.StateRepaired}, "ops", at)
	require.NoError(t, err)

	rec := httptest.NewRecorder()
	b.ops.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body := rec.Body.String()
	require.Contains(t, body, `tenancy_reconciliation_drifts{kind="orphan_keys"} 2`)
	require.Contains(t, body, `tenancy_reconciliation_open_drifts{kind="orphan_keys"} 1`)
	require.Contains(t, body, `tenancy_reconciliation_open_drifts{kind="index_missing"} 1`)
	require.Contains(t, body, `tenancy_reconciliation_drifts{kind="context_stale"} 0`)

	res := b.do(t, http.MethodGet, api.ReconciliationPath, "")
	require.Equal(t, http.StatusOK, res.Code, res.Raw)
	require.Equal(t, runID, res.Body["runId"])
	require.Len(t, res.Body["drifts"], 3)
	res = b.do(t, http.MethodGet, api.ReconciliationPath+"/"+runID+"?limit=2", "")
	require.Equal(t, http.StatusOK, res.Code, res.Raw)
	require.Len(t, res.Body["drifts"], 2)
	require.NotEmpty(t, res.Body["nextCursor"])
	requireProblem(t, b.do(t, http.MethodGet, api.ReconciliationPath+"?limit=0", ""), http.StatusBadRequest)
	// Without a workflow service, nothing can be started or signalled.
	requireProblem(t, b.do(t, http.MethodPost, api.ReconciliationPath, ""), http.StatusMethodNotAllowed)
}
