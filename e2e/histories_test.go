package e2e

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/misybot/tenancy/api"
	"github.com/misybot/tenancy/internal/testkit/testenv"
	"github.com/misybot/tenancy/workflows"
)

// historiesDir holds the committed histories workflows/replay_test.go replays.
const historiesDir = "../workflows/testdata/histories"

// TestRecordHistories re-records the committed workflow histories from real runs. It runs only
// with RECORD_HISTORIES=1: recording is a deliberate act, done when a workflow changes in a
// way that is meant to be incompatible (see workflows/replay_test.go).
func TestRecordHistories(t *testing.T) {
	if os.Getenv("RECORD_HISTORIES") != "1" {
		t.Skip("set RECORD_HISTORIES=1 to re-record workflows/testdata/histories")
	}
	s := newStack(t, true)
	recordLifecycle(t, s, s.historySaver(t))
}

// TestRecordApprovalHistories records the histories of the workflows added with the hardening
// (an onboarding whose requester's own approval is ignored, a profile change approved by a
// second admin, a master key rotation), beside the older ones, which it leaves as they are. It runs only
// with RECORD_HISTORIES=approvals.
func TestRecordApprovalHistories(t *testing.T) {
	if os.Getenv("RECORD_HISTORIES") != "approvals" {
		t.Skip("set RECORD_HISTORIES=approvals to record the approval histories")
	}
	s := newStack(t, true)
	ctx := context.Background()
	save := s.historySaver(t)
	id := testenv.TenantID("hist")
	code, body := s.do(http.MethodPost, api.TenantsPath+"/onboard", onboardBody(id, "owner"))
	require.Equal(t, http.StatusAccepted, code, body)
	wid := body["workflowId"].(string)
	require.Eventually(t, func() bool {
		return s.temporal.SignalWorkflow(ctx, wid, "", workflows.ApproveSignal, "bootstrap") == nil // the requester: ignored
	}, 10*time.Second, 100*time.Millisecond)
	require.NoError(t, s.temporal.SignalWorkflow(ctx, wid, "", workflows.ApproveSignal, "second-admin"))
	save("onboard-four-eyes", body)

	code, body = s.do(http.MethodPut, api.TenantsPath+"/"+id, `{"tenantName":"T","contactEmail":"ops@hist.test","tenantType":"owner","permissions":["settings:read","audit:read"]}`)
	require.Equal(t, http.StatusOK, code, body) // lowering: at once
	code, body = s.do(http.MethodPut, api.TenantsPath+"/"+id, `{"tenantName":"T","contactEmail":"ops@hist.test","tenantType":"owner","permissions":["settings:read","audit:read","settings:write"]}`)
	require.Equal(t, http.StatusAccepted, code, body)
	require.Eventually(t, func() bool {
		return s.temporal.SignalWorkflow(ctx, body["workflowId"].(string), "", workflows.ApproveSignal, "second-admin") == nil
	}, 10*time.Second, 100*time.Millisecond)
	save("profile-change", body)

	run, err := s.temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: workflows.MasterKeyRotationID + "-" + id, TaskQueue: s.queue},
		workflows.RotateMasterKey, workflows.RotateMasterKeyInput{RequestedBy: "recorder", Tenants: []string{id}})
	require.NoError(t, err)
	save("rotate-master-key", map[string]any{"workflowId": run.GetID(), "runId": run.GetRunID()})
}

// TestRecordMoreHistories records the histories the first recordings lacked: a data key
// rotation, an audit retention run that continues as new, and offboardings parked in
// awaiting_operator, one resumed by retry and one given up by abort. It runs only with
// RECORD_HISTORIES=more, best against a database of its own (TEST_DATABASE_URL), so that the
// retention run pages through this test's three tenants only.
func TestRecordMoreHistories(t *testing.T) {
	if os.Getenv("RECORD_HISTORIES") != "more" {
		t.Skip("set RECORD_HISTORIES=more to record the rotation, retention and parked-run histories")
	}
	s := newStack(t, true)
	ctx := context.Background()
	save := s.historySaver(t)
	ids := make([]string, 3)
	for i := range ids {
		ids[i] = testenv.TenantID("hist")
		code, body := s.do(http.MethodPost, api.TenantsPath+"/onboard", onboardBody(ids[i], "standard"))
		require.Equal(t, http.StatusAccepted, code, body)
		require.NoError(t, s.wait(body))
	}

	run, err := s.temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "hist-rotate-" + ids[0], TaskQueue: s.queue},
		workflows.RotateTenantKey, workflows.RotateKeyInput{TenantID: ids[0], RequestedBy: "recorder", SettleDelay: time.Second})
	require.NoError(t, err)
	save("rotate-tenant-key", map[string]any{"workflowId": run.GetID(), "runId": run.GetRunID()})

	// One tenant per run: the first run's history ends in continue-as-new.
	run, err = s.temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "hist-retention-" + ids[0], TaskQueue: s.queue},
		workflows.ApplyAuditRetention, workflows.AuditRetentionInput{PageSize: 1, TenantsPerRun: 1})
	require.NoError(t, err)
	save("audit-retention-continue-as-new", map[string]any{"workflowId": run.GetID(), "runId": run.GetRunID()})

	// The export step fails while the export directory is a file, and parks after one attempt.
	require.NoError(t, os.RemoveAll(s.exports))
	require.NoError(t, os.WriteFile(s.exports, nil, 0o600))
	parked := func(id string) client.WorkflowRun {
		run, err := s.temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: workflows.WorkflowID(id), TaskQueue: s.queue},
			workflows.OffboardTenant, workflows.OffboardInput{TenantID: id, RequestedBy: "recorder", StepAttempts: 1, StepTimeout: 5 * time.Second})
		require.NoError(t, err)
		require.Eventually(t, func() bool {
			v, err := s.temporal.QueryWorkflow(ctx, run.GetID(), run.GetRunID(), workflows.ProgressQuery)
			var p workflows.Progress
			return err == nil && v.Get(&p) == nil && p.State == workflows.StateAwaitingOperator
		}, 30*time.Second, 100*time.Millisecond)
		return run
	}
	aborted := parked(ids[1])
	require.NoError(t, s.temporal.SignalWorkflow(ctx, aborted.GetID(), aborted.GetRunID(), workflows.AbortSignal, "recorder"))
	require.Error(t, aborted.Get(ctx, nil), "an aborted offboarding fails")
	s.writeHistory(t, "offboard-parked-abort", aborted.GetID(), aborted.GetRunID())

	retried := parked(ids[2])
	require.NoError(t, os.Remove(s.exports))
	require.NoError(t, os.Mkdir(s.exports, 0o700))
	require.NoError(t, s.temporal.SignalWorkflow(ctx, retried.GetID(), retried.GetRunID(), workflows.RetrySignal, "recorder"))
	save("offboard-parked-retry", map[string]any{"workflowId": retried.GetID(), "runId": retried.GetRunID()})
}

// TestRecordSearchAttributeHistories records onboardings on either side of a change of the
// "search-attributes" version: an onboarding with nothing to wait for, and one that waits for
// approval. It runs only with RECORD_HISTORIES=search-attributes-v<N>, which names the files.
func TestRecordSearchAttributeHistories(t *testing.T) {
	suffix, ok := strings.CutPrefix(os.Getenv("RECORD_HISTORIES"), "search-attributes-")
	if !ok {
		t.Skip("set RECORD_HISTORIES=search-attributes-v<N> to record onboardings at that search-attributes version")
	}
	s := newStack(t, true)
	save := s.historySaver(t)
	id := testenv.TenantID("hist")
	code, body := s.do(http.MethodPost, api.TenantsPath+"/onboard", onboardBody(id, "standard"))
	require.Equal(t, http.StatusAccepted, code, body)
	save("onboard-search-attributes-"+suffix, body)

	id = testenv.TenantID("hist")
	code, body = s.do(http.MethodPost, api.TenantsPath+"/onboard", onboardBody(id, "owner"))
	require.Equal(t, http.StatusAccepted, code, body)
	require.Eventually(t, func() bool {
		return s.temporal.SignalWorkflow(context.Background(), body["workflowId"].(string), "", workflows.ApproveSignal, "second-admin") == nil
	}, 10*time.Second, 100*time.Millisecond)
	save("onboard-approval-search-attributes-"+suffix, body)
}

// historySaver returns a function that waits for a run to succeed and writes its history to
// historiesDir.
func (s *stack) historySaver(t *testing.T) func(name string, body map[string]any) {
	return func(name string, body map[string]any) {
		t.Helper()
		require.NoError(t, s.wait(body))
		s.writeHistory(t, name, body["workflowId"].(string), body["runId"].(string))
	}
}

// writeHistory writes the history of a finished run to historiesDir.
func (s *stack) writeHistory(t *testing.T, name, workflowID, runID string) {
	t.Helper()
	iter := s.temporal.GetWorkflowHistory(context.Background(), workflowID, runID, false, 0)
	h := &historypb.History{}
	for iter.HasNext() {
		ev, err := iter.Next()
		require.NoError(t, err)
		h.Events = append(h.Events, ev)
	}
	b, err := protojson.MarshalOptions{Indent: "  "}.Marshal(h)
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(historiesDir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(historiesDir, name+".json"), b, 0o644))
}

// recordLifecycle records the lifecycle workflows' histories.
func recordLifecycle(t *testing.T, s *stack, save func(string, map[string]any)) {
	ctx := context.Background()

	id := testenv.TenantID("hist")
	code, body := s.do(http.MethodPost, api.TenantsPath+"/onboard", onboardBody(id, "enterprise"))
	require.Equal(t, http.StatusAccepted, code, body)
	require.Eventually(t, func() bool {
		err := s.temporal.SignalWorkflow(ctx, body["workflowId"].(string), "", workflows.ApproveSignal, "recorder")
		return err == nil
	}, 10*time.Second, 100*time.Millisecond)
	save("onboard-with-approval", body)
	child := map[string]any{"workflowId": workflows.ProvisionWorkflowID(id), "runId": ""}
	desc, err := s.temporal.DescribeWorkflow(ctx, workflows.ProvisionWorkflowID(id), "")
	require.NoError(t, err)
	child["runId"] = desc.RawResponse.GetWorkflowExecutionInfo().GetExecution().GetRunId()
	save("provision", child)

	for _, op := range []string{"suspend", "restore"} {
		code, body = s.do(http.MethodPost, api.TenantsPath+"/"+id+"/"+op, "")
		require.Equal(t, http.StatusAccepted, code, body)
		save(op, body)
	}

	// Offboarding with a grace period, cancelled by an operator.
	run, err := s.temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: workflows.WorkflowID(id), TaskQueue: s.queue},
		workflows.OffboardTenant, workflows.OffboardInput{TenantID: id, RequestedBy: "recorder", GracePeriod: time.Hour})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		v, err := s.temporal.QueryWorkflow(ctx, run.GetID(), run.GetRunID(), workflows.ProgressQuery)
		var p workflows.Progress
		return err == nil && v.Get(&p) == nil && len(p.Signals) > 0
	}, 30*time.Second, 50*time.Millisecond)
	require.NoError(t, s.temporal.SignalWorkflow(ctx, run.GetID(), run.GetRunID(), workflows.CancelOffboardSignal, "recorder"))
	save("offboard-cancelled", map[string]any{"workflowId": run.GetID(), "runId": run.GetRunID()})

	code, body = s.do(http.MethodPost, api.TenantsPath+"/"+id+"/offboard", "")
	require.Equal(t, http.StatusAccepted, code, body)
	save("offboard", body)
}

// TestRecordCellPlacementHistory records an onboarding that places its tenant on a cell (the
// input carries the placement: no marker). It runs only with RECORD_HISTORIES=cell-placement.
func TestRecordCellPlacementHistory(t *testing.T) {
	if os.Getenv("RECORD_HISTORIES") != "cell-placement" {
		t.Skip("set RECORD_HISTORIES=cell-placement to record an onboarding that places its tenant")
	}
	s := newStack(t, true)
	save := s.historySaver(t)
	id := testenv.TenantID("hist")
	code, body := s.do(http.MethodPost, api.TenantsPath+"/onboard", onboardBody(id, "standard"))
	require.Equal(t, http.StatusAccepted, code, body)
	save("onboard-cell-placement", body)
}
