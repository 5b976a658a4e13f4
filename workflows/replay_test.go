package workflows_test

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/worker"

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
		"onboard-four-eyes.json", "profile-change.json", "rotate-master-key.json", "reconcile.json"} {
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
