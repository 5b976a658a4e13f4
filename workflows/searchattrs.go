package workflows

import (
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/misybot/tenancy/internal/model/tenant"
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
	// CellIDAttribute is the tenant's cell: set at the start of a run whose tenant is placed,
	// and by an onboarding in the same upsert as its final status, so it costs no extra write.
	CellIDAttribute = temporal.NewSearchAttributeKeyKeyword("CellId")
)

// SearchAttributeKeys are every custom search attribute lifecycle runs use, for whoever
// registers them on a server.
var SearchAttributeKeys = []temporal.SearchAttributeKeyKeyword{
	TenantIDAttribute, LifecycleOperationAttribute, TenantTypeAttribute, TenantStatusAttribute, CellIDAttribute,
}

// StartSearchAttributes are the attributes a lifecycle run starts with (StartWorkflowOptions.
// TypedSearchAttributes): the tenant, the operation (the name the run's progress reports), and
// the tenant's type and status at the start. Empty values are left out (the master key
// rotation concerns no tenant).
func StartSearchAttributes(tenantID, operation string, typ tenant.Type, status tenant.Status, cell string) temporal.SearchAttributes {
	var updates []temporal.SearchAttributeUpdate
	for _, kv := range []struct {
		key   temporal.SearchAttributeKeyKeyword
		value string
	}{{TenantIDAttribute, tenantID}, {LifecycleOperationAttribute, operation}, {TenantTypeAttribute, string(typ)}, {TenantStatusAttribute, string(status)}, {CellIDAttribute, cell}} {
		if kv.value != "" {
			updates = append(updates, kv.key.ValueSet(kv.value))
		}
	}
	return temporal.NewSearchAttributes(updates...)
}

// searchAttributesChange is the GetVersion change id of the search attribute upserts:
//   - DefaultVersion: runs recorded before them upsert nothing;
//   - 1: every status the run sets is upserted at once;
//   - 2: a status the run only passes through (onboarding, on the way to active) is upserted
//     only if the run waits for a person in it (an approval, a parked step; see passStatus).
//     Each upsert is one more write to Temporal's visibility store: an onboarding that waits
//     for nobody makes one fewer.
const searchAttributesChange = "search-attributes"

// SearchAttributesVersion is the version of searchAttributesChange a lifecycle run started now
// follows. Starters put it in the run's input (OnboardInput.SearchAttributes and the others'),
// and the run reads it there rather than record a GetVersion marker: the SDK upserts the
// TemporalChangeVersion search attribute with every marker, one more visibility write per run,
// measured at 4-5% of an onboarding's Temporal cost (bench -noop-onboarding). A run whose input
// has none (started before inputs carried it) decides by its marker, as it did.
const SearchAttributesVersion = 2

type searchAttributesVersionKey struct{}

// withSearchAttributesVersion returns ctx carrying the version from the run's input, if any. A
// version above the newest this code knows (a newer starter during a rolling deploy) runs as
// the newest.
func withSearchAttributesVersion(ctx workflow.Context, fromInput int) workflow.Context {
	if fromInput <= 0 {
		return ctx
	}
	return workflow.WithValue(ctx, searchAttributesVersionKey{}, workflow.Version(min(fromInput, SearchAttributesVersion)))
}

// searchAttributesVersion is the run's version of searchAttributesChange: the one its input
// carries, or else the one recorded by its first call to GetVersion.
func searchAttributesVersion(ctx workflow.Context) workflow.Version {
	if v, ok := ctx.Value(searchAttributesVersionKey{}).(workflow.Version); ok {
		return v
	}
	return workflow.GetVersion(ctx, searchAttributesChange, workflow.DefaultVersion, SearchAttributesVersion)
}

// setTenantSearchAttributes records on the run the tenant's status (and type, when not empty)
// as the run has just set them, so that a search by TenantStatus finds the run in its current
// state. Called once after each status transition of a lifecycle workflow that the run stays
// in (passStatus for one it passes through).
func setTenantSearchAttributes(ctx workflow.Context, status tenant.Status, typ tenant.Type) {
	setTenantSearchAttributesIn(ctx, status, typ, "")
}

// setTenantSearchAttributesIn is setTenantSearchAttributes that also records the tenant's cell
// (when not empty) in the same upsert.
func setTenantSearchAttributesIn(ctx workflow.Context, status tenant.Status, typ tenant.Type, cell string) {
	if searchAttributesVersion(ctx) < 1 {
		return
	}
	upsertTenantSearchAttributes(ctx, status, typ, cell)
}

// passStatus records a status the run passes through on its way to another. From version 2 it
// is only noted, and upserted by flushStatus when the run waits for a person in it; the run's
// next status replaces it otherwise. At version 1 it is upserted at once, as it was.
func (r *run) passStatus(ctx workflow.Context, status tenant.Status) {
	switch searchAttributesVersion(ctx) {
	case workflow.DefaultVersion:
	case 1:
		upsertTenantSearchAttributes(ctx, status, "", "")
	default:
		r.passing = status
	}
}

// flushStatus upserts the status noted by passStatus, when the run is about to wait for a
// person: a run waiting for hours is found in the status it waits in.
func (r *run) flushStatus() {
	if r.passing == "" {
		return
	}
	upsertTenantSearchAttributes(r.ctx, r.passing, "", "")
	r.passing = ""
}

// upsertTenantSearchAttributes upserts the status and type given (empty ones are left as they
// are). A failed upsert is logged, never fatal: searching is a convenience, the registry holds
// the truth.
func upsertTenantSearchAttributes(ctx workflow.Context, status tenant.Status, typ tenant.Type, cell string) {
	var updates []temporal.SearchAttributeUpdate
	if cell != "" {
		updates = append(updates, CellIDAttribute.ValueSet(cell))
	}
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
