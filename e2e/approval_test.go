package e2e

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/misybot/tenancy/api"
	"github.com/misybot/tenancy/internal/platform/operators"
	"github.com/misybot/tenancy/internal/testkit/testenv"
	"github.com/misybot/tenancy/workflows"
)

// Raising a tenant's ceiling (a higher type, an added permission) waits for a platform-admin
// other than the requester; a rejection changes nothing; lowering takes effect at once; and an
// owner tenant's onboarding waits for approval too.
func TestRaisingACeilingNeedsAnotherAdmin(t *testing.T) {
	t.Parallel()
	s := newStack(t, true)
	ctx := context.Background()
	second, err := operators.New(testenv.AppPool(t), "").Create(ctx, "second-admin-"+testenv.TenantID("a"), operators.RoleAdmin)
	require.NoError(t, err)

	id := testenv.TenantID("raise")
	code, body := s.do(http.MethodPost, api.TenantsPath+"/onboard", onboardBody(id, "standard"))
	require.Equal(t, http.StatusAccepted, code, body)
	require.NoError(t, s.wait(body))
	path := api.TenantsPath + "/" + id
	raise := `{"tenantName":"T","contactEmail":"ops@raise.test","tenantType":"enterprise","permissions":["settings:read","audit:read"]}`

	code, body = s.do(http.MethodPut, path, raise)
	require.Equal(t, http.StatusAccepted, code, body)
	require.Equal(t, true, body["awaitingApproval"])
	require.Equal(t, workflows.ProfileWorkflowID(id), body["workflowId"])
	_, got := s.do(http.MethodGet, path, "")
	require.Equal(t, "standard", got["tenantType"], "nothing changes before the approval")
	code, _ = s.do(http.MethodPut, path, raise)
	require.Equal(t, http.StatusConflict, code, "one pending change at a time")

	code, _ = s.do(http.MethodPost, path+"/approve", "")
	require.Equal(t, http.StatusForbidden, code, "the requester cannot approve their own change")
	code, _ = s.doAs(second, http.MethodPost, path+"/approve", "")
	require.Equal(t, http.StatusAccepted, code)
	require.NoError(t, s.temporal.GetWorkflow(ctx, workflows.ProfileWorkflowID(id), "").Get(ctx, nil))
	_, got = s.do(http.MethodGet, path, "")
	require.Equal(t, "enterprise", got["tenantType"])
	require.Equal(t, []any{"settings:read", "audit:read"}, got["permissions"])

	// A rejected raise changes nothing.
	code, _ = s.do(http.MethodPut, path, `{"tenantName":"T","contactEmail":"ops@raise.test","tenantType":"enterprise","permissions":["settings:read","audit:read","settings:write"]}`)
	require.Equal(t, http.StatusAccepted, code)
	code, _ = s.doAs(second, http.MethodPost, path+"/reject", "")
	require.Equal(t, http.StatusAccepted, code)
	err = s.temporal.GetWorkflow(ctx, workflows.ProfileWorkflowID(id), "").Get(ctx, nil)
	require.ErrorContains(t, err, "rejected by")
	_, got = s.do(http.MethodGet, path, "")
	require.Equal(t, []any{"settings:read", "audit:read"}, got["permissions"])

	// Lowering takes effect at once.
	code, body = s.do(http.MethodPut, path, `{"tenantName":"T","contactEmail":"ops@raise.test","tenantType":"standard","permissions":["settings:read"]}`)
	require.Equal(t, http.StatusOK, code, body)
	require.Equal(t, "standard", body["tenantType"])

	// An owner's onboarding waits for an approval, from someone else than who asked.
	owner := testenv.TenantID("owner")
	code, body = s.do(http.MethodPost, api.TenantsPath+"/onboard", onboardBody(owner, "owner"))
	require.Equal(t, http.StatusAccepted, code, body)
	require.Eventually(t, func() bool {
		_, op := s.do(http.MethodGet, api.TenantsPath+"/"+owner+"/operations/current", "")
		p, _ := op["progress"].(map[string]any)
		return p != nil && p["state"] == workflows.StateAwaitingApproval
	}, 30*time.Second, 50*time.Millisecond)
	code, _ = s.do(http.MethodPost, api.TenantsPath+"/"+owner+"/approve", "")
	require.Equal(t, http.StatusForbidden, code)
	code, _ = s.doAs(second, http.MethodPost, api.TenantsPath+"/"+owner+"/approve", "")
	require.Equal(t, http.StatusAccepted, code)
	require.NoError(t, s.wait(body))
	_, got = s.do(http.MethodGet, api.TenantsPath+"/"+owner, "")
	require.Equal(t, "active", got["status"])
}
