package workflows

import (
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/misybot/tenancy/activities"
)

// ProvisionInput names the tenant to provision.
type ProvisionInput struct {
	TenantID     string
	StepAttempts int32
	// StepTimeout bounds each activity attempt (0: DefaultStepTimeout).
	StepTimeout time.Duration
}

// ProvisionResult reports what each store created.
type ProvisionResult struct {
	Postgres activities.PostgresReport
	Mongo    activities.MongoReport
	Redis    activities.RedisReport
}

// ProvisionTenant provisions PostgreSQL, MongoDB and Redis for a tenant in parallel. Each
// store's activity is idempotent, so the whole child can be run again (an operator's retry)
// without duplicating anything. It waits for all three before answering, and reports the
// first permanent error if any (so the parent compensates), else the first error.
func ProvisionTenant(ctx workflow.Context, in ProvisionInput) (ProvisionResult, error) {
	ctx = stepOptions(ctx, in.StepAttempts, in.StepTimeout)
	ref := activities.TenantRef{TenantID: in.TenantID}
	pg := workflow.ExecuteActivity(ctx, a.ProvisionPostgres, ref)
	mg := workflow.ExecuteActivity(ctx, a.ProvisionMongo, ref)
	rd := workflow.ExecuteActivity(ctx, a.ProvisionRedis, ref)

	var res ProvisionResult
	errs := []error{pg.Get(ctx, &res.Postgres), mg.Get(ctx, &res.Mongo), rd.Get(ctx, &res.Redis)}
	return res, pickError(errs)
}

// pickError prefers a permanent error, so one store's permanent failure is not hidden behind
// another's exhausted retries.
func pickError(errs []error) error {
	var first error
	for _, err := range errs {
		if err == nil {
			continue
		}
		if Permanent(err) {
			return err
		}
		if first == nil {
			first = err
		}
	}
	return first
}

// deprovisionStores undoes provisioning in all three stores, in parallel; each activity treats
// "already gone" as success.
// ctx carries the step options.
func deprovisionStores(ctx workflow.Context, tenantID string) error {
	ref := activities.TenantRef{TenantID: tenantID}
	pg := workflow.ExecuteActivity(ctx, a.DeprovisionPostgres, ref)
	// The audit trail stays: the tenant stays registered (failed), and its trail says why.
	mg := workflow.ExecuteActivity(ctx, a.DeprovisionMongo, activities.DeprovisionInput{TenantID: tenantID, KeepAudit: true})
	rd := workflow.ExecuteActivity(longStep(ctx), a.PurgeRedis, ref)
	return pickError([]error{pg.Get(ctx, nil), mg.Get(ctx, nil), rd.Get(ctx, nil)})
}
