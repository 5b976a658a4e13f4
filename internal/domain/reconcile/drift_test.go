package reconcile

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/misybot/tenancy/internal/model/tenant"
	"github.com/misybot/tenancy/internal/stores/tenantredis"
)

// An id found in a store that is not a tenant id is reported quoted, under a short hashed
// reference, and only for manual repair: the purge activities cannot name it.
func TestOrphanWithInvalidIDIsManual(t *testing.T) {
	t.Parallel()
	d := orphan(OrphanKeys, "Bad}\x00Id*"+strings.Repeat("x", 200), "keys", "unknown to the registry")
	require.Equal(t, RepairManual, d.Repair)
	require.True(t, strings.HasPrefix(d.ID, "orphan_keys:invalid-"), d.ID)
	require.LessOrEqual(t, len(d.TenantID), 80)
	require.NotContains(t, d.TenantID, "\x00")

	ok := orphan(OrphanDatabase, "acme", "database tenant_acme exists", "offboarded")
	require.Equal(t, "orphan_database:acme", ok.ID)
	require.Equal(t, RepairDecision, ok.Repair)
	require.Equal(t, StoreMongo, ok.Store)
	require.Equal(t, "", objectOf(ok))
	require.Equal(t, "messages.x_1", objectOf(Drift{ID: driftID(IndexMissing, "acme", "messages.x_1")}))
}

// The context record is compared with the registry as sets; a different status is critical.
func TestCompareContext(t *testing.T) {
	t.Parallel()
	reg := tenant.Tenant{Status: tenant.StatusSuspended, Type: tenant.TypeStandard,
		Permissions: []tenant.Permission{"b", "a"}, AllowedOrigins: []string{"https://y", "https://x"}}
	same := tenantredis.ContextRecord{Status: "suspended", Type: "standard", Permissions: []string{"a", "b"}, AllowedOrigins: []string{"https://x", "https://y"}}
	want, _, _ := compareContext(reg, same)
	require.Empty(t, want, "order does not matter")

	rec := same
	rec.Status = "active"
	want, got, sev := compareContext(reg, rec)
	require.Equal(t, "status=suspended", want)
	require.Equal(t, "status=active", got)
	require.Equal(t, Critical, sev, "a suspended tenant let in")

	rec = same
	rec.AllowedOrigins = []string{"https://x"}
	want, got, sev = compareContext(reg, rec)
	require.Equal(t, "origins=[https://x https://y]", want)
	require.Equal(t, "origins=[https://x]", got)
	require.Equal(t, High, sev)
}
