package api_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/jackc/pgx/v5"

	"github.com/misybot/tenancy/api"
	"github.com/misybot/tenancy/internal/model/tenant"
	"github.com/misybot/tenancy/internal/stores/rls"
	"github.com/misybot/tenancy/internal/testkit/testenv"
)

// Settings are reached through the tenant in the path, under row-level security: tenant B's
// path never shows or deletes A's keys, and bad input changes nothing.
func TestSettingsThroughTenantScope(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a, other := testenv.TenantID("sa"), testenv.TenantID("sb")
	for _, id := range []string{a, other} {
		require.Equal(t, http.StatusCreated, b.do(t, http.MethodPost, api.TenantsPath, registerBody(id)).Code)
		r := b.do(t, http.MethodGet, api.TenantsPath+"/"+id+"/settings", "")
		requireProblem(t, r, http.StatusConflict)
		require.Equal(t, "pending", r.Body["currentStatus"], "no tenant data before provisioning")
		_, err := b.owner.Exec(context.Background(), `UPDATE tenants SET status = 'active' WHERE tenant_id = $1`, id)
		require.NoError(t, err)
	}
	pa, pb := api.TenantsPath+"/"+a+"/settings", api.TenantsPath+"/"+other+"/settings"

	r := b.do(t, http.MethodPut, pa+"/theme", `{"value":{"dark":true}}`)
	require.Equal(t, http.StatusOK, r.Code, r.Raw)
	require.Equal(t, map[string]any{"dark": true}, r.Body["value"])

	require.Equal(t, http.StatusOK, b.do(t, http.MethodGet, pa+"/theme", "").Code)
	requireProblem(t, b.do(t, http.MethodGet, pb+"/theme", ""), http.StatusNotFound)
	requireProblem(t, b.do(t, http.MethodDelete, pb+"/theme", ""), http.StatusNotFound)
	list := b.do(t, http.MethodGet, pb, "")
	require.Equal(t, http.StatusOK, list.Code)
	require.Equal(t, []any{}, list.Body["items"])

	for _, tc := range []struct {
		method, path, body string
		status             int
	}{
		{http.MethodPut, pa + "/Bad%20Key", `{"value":1}`, 400},
		{http.MethodPut, pa + "/theme", `{}`, 400},
		{http.MethodPut, pa + "/theme", `{"value":1,"tenantId":"` + other + `"}`, 400},
		{http.MethodPut, pa + "/theme", `{"value":`, 400},
		{http.MethodGet, api.TenantsPath + "/no-such-tenant/settings", "", 404},
		{http.MethodPut, api.TenantsPath + "/no-such-tenant/settings/theme", `{"value":1}`, 404},
		{http.MethodGet, api.TenantsPath + "/BAD/settings", "", 400},
	} {
		requireProblem(t, b.do(t, tc.method, tc.path, tc.body), tc.status)
	}
	got := b.do(t, http.MethodGet, pa+"/theme", "")
	require.Equal(t, map[string]any{"dark": true}, got.Body["value"], "refused requests left the setting alone")

	require.Equal(t, http.StatusNoContent, b.do(t, http.MethodDelete, pa+"/theme", "").Code)
	requireProblem(t, b.do(t, http.MethodGet, pa+"/theme", ""), http.StatusNotFound)
}

// From offboarding on, the settings endpoints refuse: a write would recreate data the purge
// removes.
func TestSettingsRefusedOnceOffboarding(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := testenv.TenantID("sgone")
	require.Equal(t, http.StatusCreated, b.do(t, http.MethodPost, api.TenantsPath, registerBody(id)).Code)
	for _, status := range []string{"offboarding", "offboarded"} {
		_, err := b.owner.Exec(context.Background(), `UPDATE tenants SET status = $2 WHERE tenant_id = $1`, id, status)
		require.NoError(t, err)
		r := b.do(t, http.MethodPut, api.TenantsPath+"/"+id+"/settings/k", `{"value":1}`)
		requireProblem(t, r, http.StatusConflict)
		require.Equal(t, status, r.Body["currentStatus"])
	}
	var n int
	ctx := tenant.WithID(context.Background(), id)
	require.NoError(t, rls.Tx(ctx, b.owner, func(tx pgx.Tx) error { // the owner is under FORCE RLS too
		return tx.QueryRow(ctx, `SELECT count(*) FROM tenant_settings WHERE tenant_id = $1`, id).Scan(&n)
	}))
	require.Zero(t, n)
}
