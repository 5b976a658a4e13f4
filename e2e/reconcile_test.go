package e2e

import (
	"context"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/misybot/tenancy/api"
	"github.com/misybot/tenancy/internal/platform/operators"
	"github.com/misybot/tenancy/internal/stores/tenantredis"
	"github.com/misybot/tenancy/internal/testkit/testenv"
)

// reconcileDrift onboards a tenant through the API, then deletes its context record (a safe
// repair) and leaves keys of an unknown tenant under its id (an orphan, for a decision).
func reconcileDrift(t *testing.T, s *stack) (id, ghost string) {
	t.Helper()
	ctx := context.Background()
	id = testenv.TenantID("rce")
	code, body := s.do(http.MethodPost, api.TenantsPath+"/onboard", onboardBody(id, "standard"))
	require.Equal(t, http.StatusAccepted, code, body)
	require.NoError(t, s.wait(body))
	ghost = id + "-ghost"
	require.NoError(t, s.redis.Del(ctx, tenantredis.Key(id, "context", "record")).Err())
	require.NoError(t, s.redis.Set(ctx, tenantredis.Key(ghost, "cache", "x"), "v", 0).Err())
	return id, ghost
}

// waitReport polls the report until its checks are done.
func (s *stack) waitReport(tok, runID string) map[string]any {
	s.t.Helper()
	var body map[string]any
	require.Eventually(s.t, func() bool {
		var code int
		code, body = s.doAs(tok, http.MethodGet, api.ReconciliationPath+"/"+runID, "")
		return code == http.StatusOK && body["status"] != "running"
	}, time.Minute, 100*time.Millisecond)
	return body
}

func driftsOf(body map[string]any) map[string]map[string]any {
	out := map[string]map[string]any{}
	for _, d := range body["drifts"].([]any) {
		m := d.(map[string]any)
		out[m["id"].(string)] = m
	}
	return out
}

// The reconciliation API: platform admins start runs, approve and decide; auditors read the
// reports; operators do neither; errors are problem documents.
func TestReconciliationAPI(t *testing.T) {
	t.Parallel()
	s := newStack(t, true)
	ctx := context.Background()
	ops := operators.New(testenv.AppPool(t), "")
	auditor, err := ops.Create(ctx, "auditor-"+testenv.TenantID("a"), operators.RoleAuditor)
	require.NoError(t, err)
	operator, err := ops.Create(ctx, "operator-"+testenv.TenantID("o"), operators.RoleOperator)
	require.NoError(t, err)
	id, ghost := reconcileDrift(t, s)

	code, body := s.doAs(operator, http.MethodPost, api.ReconciliationPath, `{"idPrefix":"`+id+`"}`)
	require.Equal(t, http.StatusForbidden, code, body)
	code, body = s.doAs(auditor, http.MethodPost, api.ReconciliationPath, `{"idPrefix":"`+id+`"}`)
	require.Equal(t, http.StatusForbidden, code, body)
	code, body = s.do(http.MethodPost, api.ReconciliationPath, `{"idPrefix":"BAD*"}`)
	require.Equal(t, http.StatusBadRequest, code, body)
	require.Equal(t, api.ProblemValidation, body["type"])

	code, body = s.do(http.MethodPost, api.ReconciliationPath, `{"idPrefix":"`+id+`"}`)
	require.Equal(t, http.StatusAccepted, code, body)
	runID := body["runId"].(string)
	require.NotEmpty(t, runID)

	report := s.waitReport(auditor, runID)
	drifts := driftsOf(report)
	require.Len(t, drifts, 2, "%v", drifts)
	require.Equal(t, "safe", drifts["context_missing:"+id]["repair"])
	require.Equal(t, "decision", drifts["orphan_keys:"+ghost]["repair"])
	code, body = s.doAs(operator, http.MethodGet, api.ReconciliationPath+"/"+runID, "")
	require.Equal(t, http.StatusForbidden, code, body)
	code, body = s.doAs(auditor, http.MethodGet, api.ReconciliationPath, "")
	require.Equal(t, http.StatusOK, code, body)
	code, body = s.doAs(auditor, http.MethodGet, api.ReconciliationPath+"/no-such-run", "")
	require.Equal(t, http.StatusNotFound, code, body)
	require.Equal(t, api.ProblemNotFound, body["type"])

	// Decisions name a drift of the run that a decision repairs.
	code, body = s.doAs(auditor, http.MethodPost, api.ReconciliationPath+"/"+runID+"/decisions", `{"driftId":"orphan_keys:`+ghost+`"}`)
	require.Equal(t, http.StatusForbidden, code, body)
	code, body = s.do(http.MethodPost, api.ReconciliationPath+"/"+runID+"/decisions", `{"driftId":"orphan_keys:nobody"}`)
	require.Equal(t, http.StatusNotFound, code, body)
	code, body = s.do(http.MethodPost, api.ReconciliationPath+"/"+runID+"/decisions", `{"driftId":"context_missing:`+id+`"}`)
	require.Equal(t, http.StatusConflict, code, body)

	code, body = s.do(http.MethodPost, api.ReconciliationPath+"/"+runID+"/repair", "")
	require.Equal(t, http.StatusAccepted, code, body)
	require.Eventually(t, func() bool {
		_, body = s.doAs(auditor, http.MethodGet, api.ReconciliationPath+"/"+runID, "")
		return driftsOf(body)["context_missing:"+id]["state"] == "repaired"
	}, time.Minute, 100*time.Millisecond)
	require.Equal(t, "open", driftsOf(body)["orphan_keys:"+ghost]["state"], "an orphan waits for its decision")

	code, body = s.do(http.MethodPost, api.ReconciliationPath+"/"+runID+"/decisions", `{"driftId":"orphan_keys:`+ghost+`"}`)
	require.Equal(t, http.StatusAccepted, code, body)
	require.Eventually(t, func() bool {
		_, body = s.doAs(auditor, http.MethodGet, api.ReconciliationPath+"/"+runID, "")
		return body["status"] == "closed"
	}, time.Minute, 100*time.Millisecond, "the run closes once nothing is left")
	require.Equal(t, "repaired", driftsOf(body)["orphan_keys:"+ghost]["state"])
	n, err := s.redis.Exists(ctx, tenantredis.Key(ghost, "cache", "x")).Result()
	require.NoError(t, err)
	require.Zero(t, n)

	code, body = s.do(http.MethodPost, api.ReconciliationPath+"/"+runID+"/repair", "")
	require.Equal(t, http.StatusConflict, code, body, "a closed run takes no more repairs")
	require.Equal(t, api.ProblemConflict, body["type"])
}

// TestRecordReconcileHistory records the history of a reconciliation run that reports drift,
// is approved, and gets a decision, beside the other committed histories. It runs only with
// RECORD_HISTORIES=reconcile.
func TestRecordReconcileHistory(t *testing.T) {
	if os.Getenv("RECORD_HISTORIES") != "reconcile" {
		t.Skip("set RECORD_HISTORIES=reconcile to record the reconciliation history")
	}
	s := newStack(t, true)
	id, ghost := reconcileDrift(t, s)
	code, body := s.do(http.MethodPost, api.ReconciliationPath, `{"idPrefix":"`+id+`"}`)
	require.Equal(t, http.StatusAccepted, code, body)
	runID := body["runId"].(string)
	s.waitReport(token, runID)
	code, _ = s.do(http.MethodPost, api.ReconciliationPath+"/"+runID+"/repair", "")
	require.Equal(t, http.StatusAccepted, code)
	code, _ = s.do(http.MethodPost, api.ReconciliationPath+"/"+runID+"/decisions", `{"driftId":"orphan_keys:`+ghost+`"}`)
	require.Equal(t, http.StatusAccepted, code)
	s.historySaver(t)("reconcile", map[string]any{"workflowId": body["workflowId"], "runId": body["temporalRunId"]})
}
