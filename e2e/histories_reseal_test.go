package e2e

import (
	"context"
	"net/http"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/misybot/tenancy/api"
	"github.com/misybot/tenancy/internal/testkit/testenv"
	"github.com/misybot/tenancy/workflows"
)

// TestRecordMasterKeyResealHistory records a master key rotation since the "reseal-cell-stores"
// change: its marker, then the step that re-seals the cells' store addresses before the final
// audit. rotate-master-key.json, recorded before, holds the other side. It runs only with
// RECORD_HISTORIES=reseal-cells. The stack's worker holds testenv.MasterKey alone (version 1),
// the key every cell of the test database is sealed under, so the re-seal writes nothing.
func TestRecordMasterKeyResealHistory(t *testing.T) {
	if os.Getenv("RECORD_HISTORIES") != "reseal-cells" {
		t.Skip("set RECORD_HISTORIES=reseal-cells to record a master key rotation that re-seals the cells")
	}
	s := newStack(t, true)
	id := testenv.TenantID("hist")
	code, body := s.do(http.MethodPost, api.TenantsPath+"/onboard", onboardBody(id, "standard"))
	require.Equal(t, http.StatusAccepted, code, body)
	require.NoError(t, s.wait(body))

	run, err := s.temporal.ExecuteWorkflow(context.Background(), client.StartWorkflowOptions{ID: workflows.MasterKeyRotationID + "-" + id, TaskQueue: s.queue},
		workflows.RotateMasterKey, workflows.RotateMasterKeyInput{RequestedBy: "recorder", Tenants: []string{id}})
	require.NoError(t, err)
	s.historySaver(t)("rotate-master-key-reseal-cells", map[string]any{"workflowId": run.GetID(), "runId": run.GetRunID()})
}
