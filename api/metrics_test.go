package api_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/misybot/tenancy/api"
)

// Requests are counted under their route template, never their raw path (tenant ids would
// make the label set unbounded), with the status the client got.
func TestMetricsCountRequestsByRoute(t *testing.T) {
	t.Parallel()
	b := setup(t)
	requireProblem(t, b.do(t, http.MethodGet, api.TenantsPath+"/no-such-tenant", ""), http.StatusNotFound)
	rec := httptest.NewRecorder()
	b.e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	body := rec.Body.String()
	require.Contains(t, body, `tenancy_http_requests_total{method="GET",route="/api/meta-agent/tenants/:tenantId",status="404"} 1`)
	require.NotContains(t, body, "no-such-tenant")
	require.True(t, strings.Contains(body, "tenancy_http_request_duration_seconds_bucket"))
}
