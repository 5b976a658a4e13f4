package workflows_test

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/workflow"

	"github.com/misybot/tenancy/workflows"
)

// The rule for changing workflow code with runs in flight (docs/lifecycle.md, "Changing workflow code"),
// applied once: the four-eyes rule of approvals came in behind workflow.GetVersion with the
// change id "approver-differs-from-requester". These tests hold the two halves of the rule.

// A run started before the change records no marker, and on replay GetVersion answers
// DefaultVersion for it, so it keeps the old rule to its end: an approval from the requester is
// accepted, as it was when the run started.
func TestARunStartedBeforeAChangeKeepsTheOldBehaviour(t *testing.T) {
	t.Parallel()
	env, _ := lifecycleEnv(t, nil)
	env.OnGetVersion("approver-differs-from-requester", workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
	env.OnGetVersion("operator-decisions", workflow.DefaultVersion, 1).Return(workflow.DefaultVersion) // it predates that too
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(workflows.ApproveSignal, "alice") }, time.Hour)
	env.ExecuteWorkflow(workflows.OnboardTenant, workflows.OnboardInput{TenantID: "acme", NeedsApproval: true, RequestedBy: "alice"})
	require.NoError(t, env.GetWorkflowError())
	var res workflows.OnboardResult
	require.NoError(t, env.GetWorkflowResult(&res))
	require.Equal(t, "alice", res.ApprovedBy, "the old rule: the requester's approval counted")
}

// The committed histories hold both sides of the change: one recorded before it (no marker),
// one after (its marker), and the replay test replays both against today's code. Deleting the
// GetVersion call, or its old branch, would make the first one fail to replay.
func TestCommittedHistoriesCoverBothSidesOfTheChange(t *testing.T) {
	t.Parallel()
	require.Empty(t, markers(t, "testdata/histories/onboard-with-approval.json"), "recorded before the change")
	require.Equal(t, []string{"approver-differs-from-requester"}, markers(t, "testdata/histories/onboard-four-eyes.json"))
}

// markers lists the GetVersion change ids recorded in a history file.
func markers(t *testing.T, path string) []string {
	t.Helper()
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	var h struct {
		Events []struct {
			EventType string `json:"eventType"`
			Marker    struct {
				Details map[string]struct {
					Payloads []struct {
						Data string `json:"data"`
					} `json:"payloads"`
				} `json:"details"`
			} `json:"markerRecordedEventAttributes"`
		} `json:"events"`
	}
	require.NoError(t, json.Unmarshal(raw, &h))
	var ids []string
	for _, e := range h.Events {
		if e.EventType != "EVENT_TYPE_MARKER_RECORDED" {
			continue
		}
		for _, p := range e.Marker.Details["change-id"].Payloads {
			data, err := base64.StdEncoding.DecodeString(p.Data)
			require.NoError(t, err)
			var id string
			require.NoError(t, json.Unmarshal(data, &id))
			ids = append(ids, id)
		}
	}
	return ids
}

// Both sides of the "search-attributes" change to version 2 are committed, so the replay test
// holds version 1 runs (every status upserted at once) against today's code.
func TestCommittedHistoriesCoverBothSearchAttributeVersions(t *testing.T) {
	t.Parallel()
	for _, v := range []string{"v1", "v2"} {
		for _, name := range []string{"onboard-search-attributes-", "onboard-approval-search-attributes-"} {
			require.Contains(t, markers(t, "testdata/histories/"+name+v+".json"), "search-attributes", name+v)
		}
	}
}

// Runs started since the version travels in the input are committed too: their histories carry
// it in the input and record no search-attributes marker, and the replay test replays them with
// the marked ones.
func TestCommittedHistoriesCoverRunsVersionedByTheirInput(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"onboard-search-attributes-input", "onboard-approval-search-attributes-input"} {
		path := "testdata/histories/" + name + ".json"
		require.NotContains(t, markers(t, path), "search-attributes", name)
		raw, err := os.ReadFile(path)
		require.NoError(t, err)
		var h struct {
			Events []struct {
				Started struct {
					Input struct {
						Payloads []struct {
							Data string `json:"data"`
						} `json:"payloads"`
					} `json:"input"`
				} `json:"workflowExecutionStartedEventAttributes"`
			} `json:"events"`
		}
		require.NoError(t, json.Unmarshal(raw, &h))
		data, err := base64.StdEncoding.DecodeString(h.Events[0].Started.Input.Payloads[0].Data)
		require.NoError(t, err)
		var in workflows.OnboardInput
		require.NoError(t, json.Unmarshal(data, &in))
		require.Equal(t, workflows.SearchAttributesVersion, in.SearchAttributesVersion, name)
	}
	// An onboarding that waits for nobody records no marker at all.
	raw, err := os.ReadFile("testdata/histories/onboard-search-attributes-input.json")
	require.NoError(t, err)
	require.NotContains(t, string(raw), "TemporalChangeVersion")
}

// The operator-decisions change (workflows/decisions.go) has histories on both sides: runs
// recorded before it took a signal's value as a name, runs recorded after it record its marker
// and acted on recorded decisions after refusing a forged signal; the replay test replays both.
func TestCommittedHistoriesCoverBothSidesOfOperatorDecisions(t *testing.T) {
	t.Parallel()
	for _, old := range []string{"onboard-four-eyes.json", "profile-change.json", "offboard-cancelled.json", "offboard-parked-retry.json"} {
		require.NotContains(t, markers(t, "testdata/histories/"+old), "operator-decisions", old)
	}
	for _, recorded := range []string{"onboard-operator-decisions.json", "profile-change-operator-decisions.json", "offboard-operator-decisions.json"} {
		require.Contains(t, markers(t, "testdata/histories/"+recorded), "operator-decisions", recorded)
	}
}

// The "reseal-cell-stores" change (workflows/masterkey.go) has histories on both sides: a
// rotation recorded before it went from the tenants to the audit and records no marker; one
// recorded after records the marker and re-seals the cells before the audit. The replay test
// replays both, so deleting the GetVersion call, or running the step unconditionally, fails.
func TestCommittedHistoriesCoverBothSidesOfTheCellReseal(t *testing.T) {
	t.Parallel()
	require.NotContains(t, markers(t, "testdata/histories/rotate-master-key.json"), "reseal-cell-stores", "recorded before the change")
	require.Equal(t, []string{"reseal-cell-stores"}, markers(t, "testdata/histories/rotate-master-key-reseal-cells.json"))
	raw, err := os.ReadFile("testdata/histories/rotate-master-key-reseal-cells.json")
	require.NoError(t, err)
	require.Contains(t, string(raw), `"ResealCellStores"`, "the step ran")
}
