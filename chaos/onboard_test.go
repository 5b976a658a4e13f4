package chaos

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/bson"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/misybot/tenancy/api"
	"github.com/misybot/tenancy/internal/domain/audit"
	"github.com/misybot/tenancy/internal/testkit/testenv"
	"github.com/misybot/tenancy/workflows"
)

// Twenty identical onboard requests for a new tenant, sent at once: exactly one registration
// (one secret handed out) and one run; every other request gets that same run (202) or a 409.
func TestIdenticalOnboardRequests(t *testing.T) {
	t.Parallel()
	needsServers(t)
	const n = 20
	s := newStack(t, "")
	s.startWorker("worker")
	id := testenv.TenantID("same")
	body := registrationBody(id)

	type answer struct {
		code int
		body map[string]any
	}
	answers := make([]answer, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			code, b, err := s.do(http.MethodPost, api.TenantsPath+"/onboard", body)
			require.NoError(t, err)
			answers[i] = answer{code, b}
		})
	}
	close(start)
	wg.Wait()

	codes := map[int]int{}
	runIDs := map[string]bool{}
	secrets := 0
	var r run
	for _, a := range answers {
		codes[a.code]++
		switch a.code {
		case http.StatusAccepted:
			r = runOf(id, a.body)
			runIDs[r.runID] = true
			if r.secret != "" {
				secrets++
			}
		case http.StatusConflict:
		default:
			t.Fatalf("answer %d: %v (want 202 with the run, or 409)", a.code, a.body)
		}
	}
	require.Len(t, runIDs, 1, "every 202 names the same run")
	require.Equal(t, 1, secrets, "one registration, one secret")
	require.NoError(t, s.wait(r))

	// Temporal knows one lifecycle run and one provisioning child for the tenant.
	count := func(workflowID string) int {
		var execs int
		require.Eventually(t, func() bool {
			res, err := s.temporal.ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{
				Query: "WorkflowId = '" + workflowID + "'",
			})
			if err != nil {
				return false
			}
			execs = len(res.GetExecutions())
			for _, e := range res.GetExecutions() {
				if e.GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED {
					return true
				}
			}
			return false
		}, time.Minute, 200*time.Millisecond, "the completed run of %s is visible", workflowID)
		return execs
	}
	require.Equal(t, 1, count(workflows.WorkflowID(id)), "one lifecycle run")
	require.Equal(t, 1, count(workflows.ProvisionWorkflowID(id)), "one provisioning run")
	c := s.checkOnboarded([]string{id})
	_, err := s.auditWriter().PlatformChain().Ship(context.Background())
	require.NoError(t, err)
	requests, err := s.mongo.Database(s.platformDB).Collection(audit.Collection).CountDocuments(context.Background(),
		bson.D{{Key: "tenantId", Value: id}, {Key: "action", Value: "tenant.onboard.request"}})
	require.NoError(t, err)
	require.EqualValues(t, n, requests, "one audit event per request")
	s.logf("%d identical onboard requests: answers %v, %d secret, %d request events, 1 run (%s) and 1 provisioning child in Temporal; %s", n, codes, secrets, requests, r.runID, c)
}
