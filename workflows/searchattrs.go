package workflows

import (
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/misybot/tenancy/internal/tenant"
)

// Custom search attributes of lifecycle runs, so that runs can be found by tenant:
// `temporal workflow list --query 'TenantId="acme"'` and the Web UI's filter. All Keyword
// (exact match). They must be registered in the namespace first: `make services` does it on
// the dev server, deploy/temporal/setup-namespace.sh on a cluster (docs/operations.md).
var (
	TenantIDAttribute           = temporal.NewSearchAttributeKeyKeyword("TenantId")
	LifecycleOperationAttribute = temporal.NewSearchAttributeKeyKeyword("LifecycleOperation")
	TenantTypeAttribute         = temporal.NewSearchAttributeKeyKeyword("TenantType")
	TenantStatusAttribute       = temporal.NewSearchAttributeKeyKeyword("TenantStatus")
)

// StartSearchAttributes are the attributes a lifecycle run starts with (StartWorkflowOptions.
// TypedSearchAttributes): the tenant, the operation (the name the run's progress reports), and
// the tenant's type and status at the start. Empty values are left out (the master key
// rotation concerns no tenant).
func StartSearchAttributes(tenantID, operation string, typ tenant.Type, status tenant.Status) temporal.SearchAttributes {
	var updates []temporal.SearchAttributeUpdate
	for _, kv := range []struct {
		key   temporal.SearchAttributeKeyKeyword
		value string
	}{{TenantIDAttribute, tenantID}, {LifecycleOperationAttribute, operation}, {TenantTypeAttribute, string(typ)}, {TenantStatusAttribute, string(status)}} {
		if kv.value != "" {
			updates = append(updates, kv.key.ValueSet(kv.value))
		}
	}
	return temporal.NewSearchAttributes(updates...)
}

// searchAttributesChange is the GetVersion change id of the search attribute upserts: runs
// recorded before them (workflows/testdata/histories) replay without the new commands.
const searchAttributesChange = "search-attributes"

// setTenantSearchAttributes records on the run the tenant's status (and type, when not empty)
// as the run has just set them, so that a search by TenantStatus finds the run in its current
// state. Called once after each status transition of a lifecycle workflow. A failed upsert is
// logged, never fatal: searching is a convenience, the registry holds the truth.
func setTenantSearchAttributes(ctx workflow.Context, status tenant.Status, typ tenant.Type) {
	if workflow.GetVersion(ctx, searchAttributesChange, workflow.DefaultVersion, 1) < 1 {
		return
	}
	var updates []temporal.SearchAttributeUpdate
	if status != "" {
		updates = append(updates, TenantStatusAttribute.ValueSet(string(status)))
	}
	if typ != "" {
		updates = append(updates, TenantTypeAttribute.ValueSet(string(typ)))
	}
	if len(updates) == 0 {
		return
	}
	if err := workflow.UpsertTypedSearchAttributes(ctx, updates...); err != nil {
		workflow.GetLogger(ctx).Warn("search attributes not updated", "status", status, "err", err)
	}
}
