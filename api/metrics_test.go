package api_test

import (
	"fmt"
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
	b.ops.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	body := rec.Body.String()
	require.Contains(t, body, `tenancy_http_requests_total{method="GET",route="/api/meta-agent/tenants/:tenantId",status="404"} 1`)
	require.NotContains(t, body, "no-such-tenant")
	require.True(t, strings.Contains(body, "tenancy_http_request_duration_seconds_bucket"))
}

// Made-up methods are counted under one label, so a client cannot grow the series without
// bound; /metrics and readiness details are on the operators' listener only.
func TestMetricsAreBoundedAndPrivate(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for i := range 40 {
		rec := httptest.NewRecorder()
		b.e.ServeHTTP(rec, httptest.NewRequest(fmt.Sprintf("MADEUP%d", i), api.TenantsPath, nil))
	}
	rec := httptest.NewRecorder()
	b.ops.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body := rec.Body.String()
	require.NotContains(t, body, "MADEUP")
	require.Contains(t, body, `method="other"`)
	series := 0
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, "tenancy_http_requests_total{") {
			series++
		}
	}
	require.LessOrEqual(t, series, 3, "forty made-up methods, a handful of series")

	rec = httptest.NewRecorder()
	b.e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	require.NotEqual(t, http.StatusOK, rec.Code, "no /metrics on the public listener")
	rec = httptest.NewRecorder()
	b.e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	require.NotContains(t, rec.Body.String(), "checks", "the public readiness answer has no details")
}

// A client's X-Request-Id is kept only when short and plain; otherwise the server draws one.
func TestRequestIDIsSanitized(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for id, kept := range map[string]bool{
		"abc-123_x.y":           true,
		strings.Repeat("a", 65): false,
		"bad id\nX-Forged: 1":   false,
		"<script>":              false,
	} {
		req := httptest.NewRequest(http.MethodGet, "/healthz", nil)
		req.Header.Set("X-Request-Id", id)
		rec := httptest.NewRecorder()
		b.e.ServeHTTP(rec, req)
		got := rec.Header().Get("X-Request-Id")
		require.NotEmpty(t, got)
		require.Equal(t, kept, got == id, "%q", id)
	}
}
