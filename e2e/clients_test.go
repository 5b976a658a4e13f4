package e2e

import (
	"context"
	"net/http"
	"testing"
	"time"

	openapitypes "github.com/oapi-codegen/runtime/types"
	"github.com/stretchr/testify/require"

	"github.com/misybot/tenancy/clients/go/oapi"
	"github.com/misybot/tenancy/internal/testkit/testenv"
	"github.com/misybot/tenancy/workflows"
)

// A Go team's onboarding through the client generated from the OpenAPI document (oapi-codegen,
// clients/go/oapi): register a tenant, onboard it, poll it until active, against the real
// workers and stores. Every request and answer also passes the stack's OpenAPI check, so the
// generated types and the document agree on the wire.
func TestOnboardingThroughTheGeneratedClient(t *testing.T) {
	t.Parallel()
	s := newStack(t, true)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := oapi.NewClientWithResponses(s.url, oapi.WithRequestEditorFn(func(_ context.Context, req *http.Request) error {
		req.Header.Set("Authorization", "Bearer "+token)
		return nil
	}))
	require.NoError(t, err)

	id := testenv.TenantID("client")
	origins := []oapi.AllowedOrigin{"https://" + id + ".test"}
	req := oapi.RegisterRequest{
		TenantId: id, TenantName: "T " + id, ContactEmail: openapitypes.Email("ops@" + id + ".test"),
		TenantType: oapi.Standard, AllowedOrigins: &origins,
	}

	registered, err := c.RegisterTenantWithResponse(ctx, req)
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, registered.StatusCode(), string(registered.Body))
	require.NotNil(t, registered.JSON201, "the 201 decodes as RegisteredTenant")
	require.Equal(t, oapi.TenantStatusPending, registered.JSON201.Status)
	secret := registered.JSON201.TenantSecret
	require.Len(t, secret, 64, "the secret comes once, with the 201")

	onboarded, err := c.OnboardTenantWithResponse(ctx, oapi.OnboardRequest{
		TenantId: req.TenantId, TenantName: req.TenantName, ContactEmail: req.ContactEmail,
		TenantType: req.TenantType, AllowedOrigins: req.AllowedOrigins,
	})
	require.NoError(t, err)
	require.Equal(t, http.StatusAccepted, onboarded.StatusCode(), string(onboarded.Body))
	require.NotNil(t, onboarded.JSON202, "the 202 decodes as OperationAccepted")
	require.Equal(t, workflows.WorkflowID(id), onboarded.JSON202.WorkflowId)
	require.Nil(t, onboarded.JSON202.TenantSecret, "an already registered tenant's secret is not handed out again")

	var status oapi.TenantStatus
	for status != oapi.TenantStatusActive {
		select {
		case <-ctx.Done():
			t.Fatalf("tenant %s still %q after 2 minutes", id, status)
		case <-time.After(200 * time.Millisecond):
		}
		got, err := c.GetTenantWithResponse(ctx, id)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, got.StatusCode(), string(got.Body))
		require.NotNil(t, got.JSON200, "the 200 decodes as Tenant")
		status = got.JSON200.Status
		require.NotEqual(t, oapi.TenantStatusFailed, status, "onboarding failed: %v", got.JSON200.StatusReason)
	}

	op, err := c.CurrentOperationWithResponse(ctx, id)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, op.StatusCode(), string(op.Body))
	require.Equal(t, http.StatusOK, s.signedGet(id, secret, "/me"), "the secret the client was given signs the tenant's requests")
}
