package tenant_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/misybot/tenancy/internal/model/tenant"
)

func TestValidateID(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"acme", "acme2", "a-b", "abc", "x" + strings.Repeat("1", 39)} {
		require.NoError(t, tenant.ValidateID(ok), ok)
	}
	for _, bad := range []string{"", "ab", "Acme", "1acme", "acme-", "-acme", "ac_me", "ac.me", "ac/me",
		"acme*", "ac?me", "ac[m]e", "ac\\me", "ac me", "acmé", strings.Repeat("a", 41), "acme\n"} {
		require.ErrorIs(t, tenant.ValidateID(bad), tenant.ErrInvalidID, "%q", bad)
	}
}

// FuzzValidateID: whatever is accepted is safe to embed in a MongoDB database name, a Redis
// MATCH pattern and a URL path segment.
func FuzzValidateID(f *testing.F) {
	for _, s := range []string{"acme", "acme2", "a-b-c", "Acme", "a*", "ab[c]", "\x00abc", "ab\\c", strings.Repeat("z", 41)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		if tenant.ValidateID(id) != nil {
			return
		}
		if len(id) < tenant.IDMinLen || len(id) > tenant.IDMaxLen {
			t.Fatalf("accepted %q of length %d", id, len(id))
		}
		if strings.ContainsAny(id, "*?[]\\{}/.$ \x00:") || strings.ToLower(id) != id {
			t.Fatalf("accepted unsafe id %q", id)
		}
	})
}

func TestPermissionCeilingByType(t *testing.T) {
	t.Parallel()
	require.NoError(t, tenant.CheckPermissions(tenant.TypeEnterprise, tenant.Permissions))
	require.ErrorContains(t, tenant.CheckPermissions(tenant.TypeTrial, []tenant.Permission{tenant.PermSettingsWrite}), "not allowed")
	require.ErrorContains(t, tenant.CheckPermissions(tenant.TypeStandard, []tenant.Permission{tenant.PermAuditRead}), "not allowed")
	require.ErrorContains(t, tenant.CheckPermissions(tenant.TypeOwner, []tenant.Permission{"root"}), "unknown")
	for _, typ := range tenant.Types {
		require.NoError(t, tenant.CheckPermissions(typ, tenant.DefaultPermissions(typ)), typ)
	}
}

// A change raises a ceiling when the new type allows what the old did not, or a permission is
// added; keeping or lowering raises nothing.
func TestRaises(t *testing.T) {
	t.Parallel()
	std := []tenant.Permission{tenant.PermSettingsRead, tenant.PermConversationsRead}
	require.Empty(t, tenant.Raises(tenant.TypeStandard, std, tenant.TypeStandard, std))
	require.Empty(t, tenant.Raises(tenant.TypeStandard, std, tenant.TypeTrial, []tenant.Permission{tenant.PermSettingsRead}), "lower type, fewer permissions")
	require.Empty(t, tenant.Raises(tenant.TypeOwner, tenant.Permissions, tenant.TypeEnterprise, tenant.Permissions), "same ceiling")
	require.Equal(t, []string{"type standard to enterprise"}, tenant.Raises(tenant.TypeStandard, std, tenant.TypeEnterprise, std))
	require.Equal(t, []string{"permission settings:write"}, tenant.Raises(tenant.TypeStandard, std, tenant.TypeStandard, append(std, tenant.PermSettingsWrite)))
	require.Len(t, tenant.Raises(tenant.TypeTrial, std, tenant.TypeOwner, append(std, tenant.PermAuditRead)), 2)
	require.True(t, tenant.TypeOwner.NeedsApproval())
	require.True(t, tenant.TypeEnterprise.NeedsApproval())
	require.False(t, tenant.TypeStandard.NeedsApproval())
}
