package e2e

import (
	"context"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/bson"
	"go.temporal.io/sdk/client"

	"github.com/misybot/tenancy/api"
	"github.com/misybot/tenancy/internal/domain/audit"
	"github.com/misybot/tenancy/internal/platform/operators"
	"github.com/misybot/tenancy/internal/testkit/testenv"
	"github.com/misybot/tenancy/workflows"
)

// secondAdmin issues a platform-admin token other than the stack's (bootstrap) one: the
// requester of an approval cannot approve it.
func (s *stack) secondAdmin() string {
	s.t.Helper()
	tok, err := operators.New(s.app, "").Create(context.Background(), "second-admin-"+testenv.TenantID("a"), operators.RoleAdmin)
	require.NoError(s.t, err)
	return tok
}

// approve approves the tenant's run waiting for approval as a second platform-admin, through
// the API (which records the decision the run acts on), retrying until the run waits.
func (s *stack) approve(id string) {
	s.t.Helper()
	tok := s.secondAdmin()
	require.Eventually(s.t, func() bool {
		code, _ := s.doAs(tok, http.MethodPost, api.TenantsPath+"/"+id+"/approve", "")
		return code == http.StatusAccepted
	}, 30*time.Second, 100*time.Millisecond)
}

// progressOf is the tenant's current run's progress, through the API.
func (s *stack) progressOf(id string) map[string]any {
	s.t.Helper()
	_, op := s.do(http.MethodGet, api.TenantsPath+"/"+id+"/operations/current", "")
	p, _ := op["progress"].(map[string]any)
	return p
}

// waitProgress waits until the tenant's run is in state with at least refusals refusals.
func (s *stack) waitProgress(id, state string, refusals int) map[string]any {
	s.t.Helper()
	var p map[string]any
	require.Eventually(s.t, func() bool {
		p = s.progressOf(id)
		n, _ := p["refusals"].(float64)
		return p != nil && p["state"] == state && int(n) >= refusals
	}, time.Minute, 100*time.Millisecond, "state %s with %d refusals", state, refusals)
	return p
}

// Issue 32: anyone who reaches the Temporal frontend approved a raise with
// `temporal workflow signal --name approve --input '"anyone"'`. Against the real servers: raw
// signals to a run waiting for approval, to a parked offboarding and to one in its grace period
// change nothing; each is refused, visible in the progress and in the audit trail; the same
// decisions made through the API (recorded, then signalled) are acted on.
func TestForgedSignalsChangeNothing(t *testing.T) {
	t.Parallel()
	s := newStack(t, true)
	ctx := context.Background()
	second := s.secondAdmin()

	// An owner's onboarding waits for a second platform-admin.
	id := testenv.TenantID("forge")
	code, body := s.do(http.MethodPost, api.TenantsPath+"/onboard", onboardBody(id, "owner"))
	require.Equal(t, http.StatusAccepted, code, body)
	s.waitProgress(id, workflows.StateAwaitingApproval, 0)
	wid := body["workflowId"].(string)
	require.NoError(t, s.temporal.SignalWorkflow(ctx, wid, "", workflows.ApproveSignal, "anyone"))
	require.NoError(t, s.temporal.SignalWorkflow(ctx, wid, "", workflows.ApproveSignal, "second-admin"))
	require.NoError(t, s.temporal.SignalWorkflow(ctx, wid, "", workflows.AbortSignal, "anyone"))
	p := s.waitProgress(id, workflows.StateAwaitingApproval, 3)
	require.Contains(t, p["lastRefusal"], "abort signal refused")
	require.Contains(t, p["lastRefusal"], `"anyone"`)
	_, got := s.do(http.MethodGet, api.TenantsPath+"/"+id, "")
	require.Equal(t, "onboarding", got["status"], "neither approved nor rejected")
	require.Eventually(t, func() bool { return s.refusalsAudited(id, wid) == 3 }, 30*time.Second, 200*time.Millisecond, "every refusal audited")

	code, _ = s.doAs(second, http.MethodPost, api.TenantsPath+"/"+id+"/approve", "")
	require.Equal(t, http.StatusAccepted, code)
	require.NoError(t, s.wait(body))
	var res workflows.OnboardResult
	require.NoError(t, s.temporal.GetWorkflow(ctx, wid, body["runId"].(string)).Get(ctx, &res))
	require.Contains(t, res.ApprovedBy, "second-admin-", "the approver is the API's authenticated operator")

	// Bad requests are problems, never 500s.
	requireStatus := func(want int, path string) {
		t.Helper()
		code, body := s.do(http.MethodPost, path, "")
		require.Equal(t, want, code, body)
		require.NotEmpty(t, body["title"], "a problem document")
	}
	requireStatus(http.StatusBadRequest, api.TenantsPath+"/NOT_A_TENANT!/operations/current/retry")
	requireStatus(http.StatusNotFound, api.TenantsPath+"/"+testenv.TenantID("none")+"/operations/current/retry")
	requireStatus(http.StatusConflict, api.TenantsPath+"/"+id+"/operations/current/abort") // nothing runs
	requireStatus(http.StatusConflict, api.TenantsPath+"/"+id+"/offboard/cancel")

	// An offboarding parked in export (the export directory is a file) is not retried by a
	// raw signal; the API's retry, once the cause is fixed, runs the step again.
	require.NoError(t, os.RemoveAll(s.exports))
	require.NoError(t, os.WriteFile(s.exports, nil, 0o600))
	run, err := s.temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: workflows.WorkflowID(id), TaskQueue: s.queue},
		workflows.OffboardTenant, workflows.OffboardInput{TenantID: id, RequestedBy: "e2e", GracePeriod: time.Hour, StepAttempts: 1, StepTimeout: 5 * time.Second})
	require.NoError(t, err)
	s.waitProgress(id, workflows.StateAwaitingOperator, 0)
	require.NoError(t, s.temporal.SignalWorkflow(ctx, run.GetID(), "", workflows.RetrySignal, "anyone"))
	p = s.waitProgress(id, workflows.StateAwaitingOperator, 1)
	require.Contains(t, p["lastRefusal"], "retry signal refused")
	requireStatus(http.StatusConflict, api.TenantsPath+"/"+id+"/offboard/cancel") // not in its grace period yet
	require.NoError(t, os.Remove(s.exports))
	require.NoError(t, os.Mkdir(s.exports, 0o700))
	code, _ = s.doAs(second, http.MethodPost, api.TenantsPath+"/"+id+"/operations/current/retry", "")
	require.Equal(t, http.StatusAccepted, code)

	// In its grace period, a raw cancel-offboard is refused; the API's cancels it.
	require.Eventually(t, func() bool {
		p := s.progressOf(id)
		sig, _ := p["signals"].([]any)
		return len(sig) == 1 && sig[0] == workflows.CancelOffboardSignal
	}, time.Minute, 100*time.Millisecond)
	require.NoError(t, s.temporal.SignalWorkflow(ctx, run.GetID(), "", workflows.CancelOffboardSignal, "anyone"))
	require.Eventually(t, func() bool {
		n, _ := s.progressOf(id)["refusals"].(float64)
		return n == 2
	}, 30*time.Second, 100*time.Millisecond)
	code, _ = s.doAs(second, http.MethodPost, api.TenantsPath+"/"+id+"/offboard/cancel", "")
	require.Equal(t, http.StatusAccepted, code)
	var off workflows.OffboardResult
	require.NoError(t, run.Get(ctx, &off))
	require.True(t, off.Cancelled)
	require.Contains(t, off.CancelledBy, "second-admin-")
	_, got = s.do(http.MethodGet, api.TenantsPath+"/"+id, "")
	require.Equal(t, "active", got["status"], "restored, nothing deleted")
	require.Equal(t, 3+2, s.refusalsAudited(id, run.GetID()), "the offboarding's two refusals audited beside the onboarding's three (one workflow id)")
}

// refusalsAudited counts the refused-signal events of workflow wid in the tenant's chain and
// the platform's (a refusal is routed: the tenant's chain while it is open), shipped first.
func (s *stack) refusalsAudited(id, wid string) int {
	s.t.Helper()
	ctx := context.Background()
	filter := bson.D{{Key: "action", Value: "workflow.signal.refused"}, {Key: "workflowId", Value: wid}}
	_, err := s.tenantChain(id).Ship(ctx)
	require.NoError(s.t, err)
	own, err := s.mongo.Database("tenant_"+id).Collection(audit.Collection).CountDocuments(ctx, filter)
	require.NoError(s.t, err)
	platform, err := s.platform().CountDocuments(ctx, filter)
	require.NoError(s.t, err)
	return int(own + platform)
}

// TestRecordOperatorDecisionHistories records runs of the operator-decisions version: an
// onboarding approved through the API after a forged approval, a profile change likewise, a
// parked offboarding retried through the API after a forged retry, and an offboarding
// cancelled through the API after a forged cancel. It runs only with
// RECORD_HISTORIES=operator-decisions, beside the older histories, which it leaves as they are.
func TestRecordOperatorDecisionHistories(t *testing.T) {
	if os.Getenv("RECORD_HISTORIES") != "operator-decisions" {
		t.Skip("set RECORD_HISTORIES=operator-decisions to record the operator-decision histories")
	}
	s := newStack(t, true)
	ctx := context.Background()
	save := s.historySaver(t)
	second := s.secondAdmin()

	id := testenv.TenantID("hist")
	code, body := s.do(http.MethodPost, api.TenantsPath+"/onboard", onboardBody(id, "owner"))
	require.Equal(t, http.StatusAccepted, code, body)
	s.waitProgress(id, workflows.StateAwaitingApproval, 0)
	require.NoError(t, s.temporal.SignalWorkflow(ctx, body["workflowId"].(string), "", workflows.ApproveSignal, "anyone"))
	s.waitProgress(id, workflows.StateAwaitingApproval, 1)
	code, _ = s.doAs(second, http.MethodPost, api.TenantsPath+"/"+id+"/approve", "")
	require.Equal(t, http.StatusAccepted, code)
	save("onboard-operator-decisions", body)

	code, body = s.do(http.MethodPut, api.TenantsPath+"/"+id, `{"tenantName":"T","contactEmail":"ops@hist.test","tenantType":"owner","permissions":["settings:read","audit:read"]}`)
	require.Equal(t, http.StatusOK, code, body) // lowering: at once
	code, body = s.do(http.MethodPut, api.TenantsPath+"/"+id, `{"tenantName":"T","contactEmail":"ops@hist.test","tenantType":"owner","permissions":["settings:read","audit:read","settings:write"]}`)
	require.Equal(t, http.StatusAccepted, code, body)
	pid := body["workflowId"].(string)
	require.Eventually(t, func() bool {
		return s.temporal.SignalWorkflow(ctx, pid, "", workflows.ApproveSignal, "anyone") == nil
	}, 10*time.Second, 100*time.Millisecond)
	code, _ = s.doAs(second, http.MethodPost, api.TenantsPath+"/"+id+"/approve", "")
	require.Equal(t, http.StatusAccepted, code)
	save("profile-change-operator-decisions", body)

	require.NoError(t, os.RemoveAll(s.exports))
	require.NoError(t, os.WriteFile(s.exports, nil, 0o600))
	run, err := s.temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: workflows.WorkflowID(id), TaskQueue: s.queue},
		workflows.OffboardTenant, workflows.OffboardInput{TenantID: id, RequestedBy: "recorder", GracePeriod: time.Hour, StepAttempts: 1, StepTimeout: 5 * time.Second})
	require.NoError(t, err)
	s.waitProgress(id, workflows.StateAwaitingOperator, 0)
	require.NoError(t, s.temporal.SignalWorkflow(ctx, run.GetID(), "", workflows.RetrySignal, "anyone"))
	s.waitProgress(id, workflows.StateAwaitingOperator, 1)
	require.NoError(t, os.Remove(s.exports))
	require.NoError(t, os.Mkdir(s.exports, 0o700))
	code, _ = s.doAs(second, http.MethodPost, api.TenantsPath+"/"+id+"/operations/current/retry", "")
	require.Equal(t, http.StatusAccepted, code)
	require.Eventually(t, func() bool {
		sig, _ := s.progressOf(id)["signals"].([]any)
		return len(sig) == 1 && sig[0] == workflows.CancelOffboardSignal
	}, time.Minute, 100*time.Millisecond)
	require.NoError(t, s.temporal.SignalWorkflow(ctx, run.GetID(), "", workflows.CancelOffboardSignal, "anyone"))
	require.Eventually(t, func() bool {
		n, _ := s.progressOf(id)["refusals"].(float64)
		return n == 2
	}, 30*time.Second, 100*time.Millisecond)
	code, _ = s.doAs(second, http.MethodPost, api.TenantsPath+"/"+id+"/offboard/cancel", "")
	require.Equal(t, http.StatusAccepted, code)
	save("offboard-operator-decisions", map[string]any{"workflowId": run.GetID(), "runId": run.GetRunID()})
}
