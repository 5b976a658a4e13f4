package workflows_test

import (
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/misybot/tenancy/workflows"
)

// TestReplayCommittedHistories replays histories recorded from real runs (see
// e2e/histories_test.go) against today's workflow code. A change that would break runs in
// flight (a reordered, added or removed step without workflow.GetVersion) fails here with a
// non-determinism error, before it reaches a worker.
func TestReplayCommittedHistories(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("testdata/histories/*.json")
	require.NoError(t, err)
	require.NotEmpty(t, files, "no committed histories: record them with RECORD_HISTORIES=1 go test -run TestRecordHistories ./e2e/")
	names := map[string]bool{}
	for _, f := range files {
		names[filepath.Base(f)] = true
	}
	for _, want := range []string{"onboard-with-approval.json", "provision.json", "suspend.json", "restore.json", "offboard.json", "offboard-cancelled.json",
		"onboard-four-eyes.json", "profile-change.json", "rotate-master-key.json", "rotate-master-key-reseal-cells.json",
		"rotate-tenant-key.json", "audit-retention-continue-as-new.json", "offboard-parked-retry.json", "offboard-parked-abort.json", "reconcile.json",
		"onboard-operator-decisions.json", "profile-change-operator-decisions.json", "offboard-operator-decisions.json"} {
		require.True(t, names[want], "missing history %s", want)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			replayer := worker.NewWorkflowReplayer()
			workflows.Register(replayer)
			require.NoError(t, replayer.ReplayWorkflowHistoryFromJSONFile(nil, f))
		})
	}
}

// Every workflow the worker registers has at least one recorded history, so none can change
// incompatibly unnoticed. Record a new workflow's history with the e2e recorders
// (e2e/histories_test.go) when you add it.
func TestEveryRegisteredWorkflowHasAHistory(t *testing.T) {
	t.Parallel()
	var reg registered
	workflows.Register(&reg)
	require.NotEmpty(t, reg)

	recorded := map[string]bool{}
	files, err := filepath.Glob("testdata/histories/*.json")
	require.NoError(t, err)
	for _, f := range files {
		r, err := os.Open(f)
		require.NoError(t, err)
		h, err := client.HistoryFromJSON(r, client.HistoryJSONOptions{})
		_ = r.Close()
		require.NoError(t, err, f)
		require.NotEmpty(t, h.GetEvents(), f)
		recorded[h.GetEvents()[0].GetWorkflowExecutionStartedEventAttributes().GetWorkflowType().GetName()] = true
	}
	for _, name := range reg {
		require.True(t, recorded[name], "workflow %s has no recorded history in testdata/histories", name)
	}
}

// registered collects the names of the workflows registered on it.
type registered []string

func (r *registered) RegisterWorkflow(w any) {
	name := runtime.FuncForPC(reflect.ValueOf(w).Pointer()).Name()
	*r = append(*r, name[strings.LastIndex(name, ".")+1:])
}

func (r *registered) RegisterWorkflowWithOptions(w any, o workflow.RegisterOptions) {
	if o.Name != "" {
		*r = append(*r, o.Name)
		return
	}
	r.RegisterWorkflow(w)
}

func (r *registered) RegisterDynamicWorkflow(any, workflow.DynamicRegisterOptions) {}
